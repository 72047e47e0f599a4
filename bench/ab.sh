#!/bin/bash
# `make bench-ab BASE=DIR`: den against den. The release binaries in DIR (an older build, kept
# with `cp target/release/den* DIR` before a change) against this tree's, side by side, as the
# den-test user: run --rm, ps -a over 100 containers, images, inspect, run -d + rm -f. For
# changes that must not cost speed (a restructuring); `make bench` compares den with podman.
# Needs the busybox image `make bench` caches ($DEN_BENCH_CACHE, default /var/tmp/den-bench).
set -euo pipefail
base=${1:?usage: bench/ab.sh DIR-WITH-OLDER-den-BINARIES}
cd "$(dirname "$0")/.."
cache=${DEN_BENCH_CACHE:-/var/tmp/den-bench}
[ -f "$cache/busybox/index.json" ] || { echo "bench-ab: run 'make bench' once to cache busybox in $cache" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench-ab: run as root (it runs den as the den-test user)" >&2; exit 1; }
ab=$(mktemp -d /tmp/den-ab.XXXXXX); trap 'rm -rf "$ab"' EXIT; mkdir -p $ab/base $ab/new
for b in den den-build den-image den-net den-run; do cp "$base/$b" $ab/base/; cp target/release/$b $ab/new/; done
tar -cf $ab/bb.tar -C "$cache/busybox" .
chmod -R a+rX $ab; chmod 0755 $ab; chown den-test: $ab
cat > $ab/inner.sh <<'IN'
set -e
cd "$(dirname "$0")"
ab=$(pwd)
for v in base new; do
  export DEN_ROOT=$ab/store-$v
  ./$v/den load -i bb.tar >/dev/null
  ./$v/den tag $(./$v/den images -q | head -1) bb:latest
  for i in $(seq 100); do ./$v/den create --name c$i bb:latest true >/dev/null; done
done
hf() { hyperfine -N -w 3 -r ${RUNS:-20} -n base "$2" -n new "$3" 2>&1 | grep -E "Time|±|faster|slower" ; }
echo "== run --rm true"; hf run "env DEN_ROOT=$ab/store-base ./base/den run --rm bb:latest true" "env DEN_ROOT=$ab/store-new ./new/den run --rm bb:latest true"
echo "== ps -a (100 containers)"; hf ps "env DEN_ROOT=$ab/store-base ./base/den ps -a" "env DEN_ROOT=$ab/store-new ./new/den ps -a"
echo "== images"; hf images "env DEN_ROOT=$ab/store-base ./base/den images" "env DEN_ROOT=$ab/store-new ./new/den images"
echo "== inspect"; hf inspect "env DEN_ROOT=$ab/store-base ./base/den inspect c1" "env DEN_ROOT=$ab/store-new ./new/den inspect c1"
echo "== run -d + rm -f"; hf rd "sh -c 'env DEN_ROOT=$ab/store-base ./base/den rm -f \$(env DEN_ROOT=$ab/store-base ./base/den run -d bb:latest sleep 60)'" "sh -c 'env DEN_ROOT=$ab/store-new ./new/den rm -f \$(env DEN_ROOT=$ab/store-new ./new/den run -d bb:latest sleep 60)'"
IN
home=$(getent passwd den-test | cut -d: -f6)
cd /tmp; runuser -u den-test -- env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$home" USER=den-test RUNS=${RUNS:-20} bash $ab/inner.sh
