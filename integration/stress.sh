#!/bin/bash
# `make stress`: den killed at random moments, and many den processes on one store, with figures.
#
#   crash trials      100 SIGKILLs at random moments of pull, load, build, rm -f and rmi
#                     (integration/crash.rs, DEN_CRASH_TRIALS): after each kill only leftovers,
#                     no half image listed; the command succeeds again; `den system check` clean
#                     after it; the image's files match their checksums inside a container
#   32 x run --rm     in parallel: all finish; wall time vs serial time / cores (goal <= 2x)
#   8 x pull          of one image into an empty store, at once
#   build + rmi       5 builds while another process runs pull, rmi and image prune in a loop
#   16 x run -d       in parallel, then 16 x rm -f in parallel
#   Slurm job array   32 tasks `den run` one image into one store: each blob downloaded once
#
# Each part must succeed and leave `den system check --full` clean; the script stops at the first
# that does not. The ratio of the parallel runs is reported against its goal, not enforced:
# wall times on shared machines drift.
#
# As root it sets the machine up (integration/setup.sh), builds release binaries, stages them as
# run.sh does and runs as the den-test user. DEN_CRASH_TRIALS sets the number of crash trials.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
    ./integration/setup.sh
    echo "== building"
    cargo build --release --quiet --bins
    test_bin=$(cargo test --release --no-run --message-format=json --test integration 2>/dev/null |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "integration" and m.get("executable"):
        print(m["executable"])')
    stage=$(mktemp -d /tmp/den-stress.XXXXXX)
    trap 'rm -rf "$stage"' EXIT
    mkdir -p "$stage/bin" "$stage/fixtures"
    cp target/release/den target/release/den-image target/release/den-run target/release/den-net target/release/den-build "$stage/bin/"
    cp "$test_bin" "$stage/bin/integration"
    cp integration/fixtures/*.py integration/stress.sh "$stage/fixtures/"
    chmod -R a+rX "$stage"
    chmod 0755 "$stage"
    home=$(getent passwd den-test | cut -d: -f6)
    (cd /tmp && runuser -u den-test -- env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
        HOME="$home" USER=den-test DEN_STRESS_STAGE="$stage" DEN_CRASH_TRIALS="${DEN_CRASH_TRIALS:-100}" \
        bash "$stage/fixtures/stress.sh")
    exit
fi

stage=${DEN_STRESS_STAGE:?run make stress as root, or set DEN_STRESS_STAGE to a staged build}
bin=$stage/bin
fixtures=$stage/fixtures
for t in docker-registry skopeo python3; do
    command -v "$t" >/dev/null || { echo "stress: $t is missing; run 'make stress' as root once to install it" >&2; exit 1; }
done

echo "== crash trials as $(id -un)"
(cd /tmp && DEN_TEST_BIN="$bin" DEN_TEST_FIXTURES="$fixtures" DEN_TEST_TMP=/tmp \
    "$bin/integration" --exact crash::killed_commands_leave_a_store_den_can_use --nocapture)

work=$(mktemp -d /tmp/den-stress-work.XXXXXX)
export PATH="$bin:$PATH" HOME=$work/home XDG_CONFIG_HOME=$work/home/.config
unset XDG_RUNTIME_DIR
mkdir -p "$HOME"
registry_pid=
cleanup() {
    [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null
    for r in "$work"/root-*; do [ -d "$r" ] && { den --root "$r" system reset --force >/dev/null 2>&1 || true; }; done
    rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
registry=127.0.0.1:$(free_port)
cat > "$work/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: $registry}
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do python3 -c "import urllib.request; urllib.request.urlopen('http://$registry/v2/')" 2>/dev/null && break; sleep 0.1; done
python3 "$fixtures/mkimage.py" "$work/busybox" busybox
python3 "$fixtures/mkimage.py" "$work/big" big --mb 24
for img in busybox big; do
    HOME=$work skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$work/$img:latest" "docker://$registry/stress/$img:latest"
done
busybox=$registry/stress/busybox:latest
big=$registry/stress/big:latest

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
# check ROOT WHAT: the store must be clean.
check() {
    if ! den --root "$1" system check --full >"$work/check.out" 2>&1; then
        echo "stress: $2 left the store unclean:" >&2
        cat "$work/check.out" >&2
        exit 1
    fi
}
# wait_all WHAT PID...: every process must succeed.
wait_all() {
    local what=$1 failed=0 p
    shift
    for p in "$@"; do wait "$p" || failed=$((failed + 1)); done
    if [ "$failed" != 0 ]; then
        echo "stress: $failed of $# $what failed:" >&2
        cat "$work"/log.* >&2 2>/dev/null || true
        exit 1
    fi
    rm -f "$work"/log.*
}

echo "== 32 x run --rm"
root=$work/root-run
den --root "$root" pull -q "$busybox" >/dev/null
den --root "$root" run --rm "$busybox" true
t0=$(now)
for i in $(seq 32); do den --root "$root" run --rm "$busybox" true; done
serial=$(secs "$t0" "$(now)")
t0=$(now)
pids=()
for i in $(seq 32); do den --root "$root" run --rm "$busybox" true >"$work/log.$i" 2>&1 & pids+=($!); done
wait_all "parallel run --rm" "${pids[@]}"
parallel=$(secs "$t0" "$(now)")
cores=$(nproc)
[ -z "$(den --root "$root" ps -aq)" ] || { echo "stress: run --rm left containers" >&2; exit 1; }
check "$root" "32 parallel run --rm"
python3 - "$serial" "$parallel" "$cores" <<'EOF'
import sys
serial, parallel, cores = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
ratio = parallel / (serial / cores)
print(f"  serial {serial:.2f} s ({serial / 32 * 1000:.0f} ms each), parallel {parallel:.2f} s on {cores} cores: "
      f"{ratio:.2f}x serial/cores (goal <= 2x: {'met' if ratio <= 2 else 'NOT MET'})")
EOF

echo "== 8 x pull of one image into an empty store"
root=$work/root-pull
t0=$(now)
den --root "$root" pull -q "$big" >/dev/null
one=$(secs "$t0" "$(now)")
den --root "$root" rmi "$big" >/dev/null
t0=$(now)
pids=()
for i in $(seq 8); do den --root "$root" pull -q "$big" >"$work/log.$i" 2>&1 & pids+=($!); done
wait_all "concurrent pulls" "${pids[@]}"
eight=$(secs "$t0" "$(now)")
[ "$(den --root "$root" images -q | wc -l)" = 1 ] || { echo "stress: 8 pulls did not make one image" >&2; exit 1; }
den --root "$root" run --rm "$big" sha256sum -c -s /data/SHA256SUMS
check "$root" "8 concurrent pulls"
echo "  one pull ${one} s; 8 at once ${eight} s; one image, files match their checksums"

echo "== builds while another process runs rmi, pull and image prune"
root=$work/root-build
den --root "$root" pull -q "$busybox" >/dev/null
ctx=$work/ctx
mkdir -p "$ctx/files"
for i in 1 2 3 4; do head -c 4000000 /dev/urandom >"$ctx/files/f$i"; done
(cd "$ctx/files" && sha256sum f1 f2 f3 f4 | sed 's| f| /ctx/f|' >SUMS)
cat >"$ctx/Dockerfile" <<EOF
FROM $busybox
COPY files/ /ctx/
RUN head -c 8000000 /dev/urandom >/a && sha256sum /a >/a.sum
RUN cp /ctx/f1 /b && sha256sum /b >/b.sum
COPY Dockerfile /Dockerfile
RUN sha256sum -c -s /a.sum && sha256sum -c -s /b.sum
EOF
t0=$(now)
den --root "$root" build -q --no-cache -t stress-alone "$ctx" >/dev/null
alone=$(secs "$t0" "$(now)")
den --root "$root" rmi stress-alone >/dev/null
# The other process: pulls run beside a build; rmi and prune wait for it (a build pins what it
# uses with the content lock held shared); the build's base goes too, and the next build pulls
# it again.
: >"$work/ops"
(
    op() { den --root "$root" "$@" >/dev/null || { echo "den $* failed"; exit 1; }; echo "$1" >>"$work/ops"; }
    while [ ! -e "$work/build.done" ]; do
        op pull -q "$big"
        op rmi "$big"
        op pull -q "$busybox"
        op rmi "$busybox"
        op image prune -f
    done
) >"$work/log.churn" 2>&1 &
churn=$!
builds=5
t0=$(now)
for i in $(seq $builds); do
    if ! den --root "$root" build -q --no-cache -t stress-built "$ctx" >"$work/log.build" 2>&1; then
        touch "$work/build.done"
        wait "$churn" || true
        echo "stress: build $i failed while rmi and prune ran:" >&2
        cat "$work/log.build" "$work/log.churn" >&2
        exit 1
    fi
done
built=$(secs "$t0" "$(now)")
touch "$work/build.done"
wait_all "rmi/pull/prune loop" "$churn"
den --root "$root" run --rm stress-built sh -c 'sha256sum -c -s /ctx/SUMS && sha256sum -c -s /a.sum && sha256sum -c -s /b.sum'
den --root "$root" image prune -f >/dev/null
check "$root" "builds during rmi and image prune"
echo "  one build alone ${alone} s; $builds builds beside the loop ${built} s; meanwhile $(grep -c '^pull' "$work/ops") pulls, $(grep -c '^rmi' "$work/ops") rmi, $(grep -c '^image' "$work/ops") image prunes; the last image's files match"

echo "== 16 x run -d, then 16 x rm -f"
root=$work/root-detach
den --root "$root" pull -q "$busybox" >/dev/null
t0=$(now)
pids=()
for i in $(seq 16); do den --root "$root" run -d --name "d$i" "$busybox" sleep 600 >"$work/log.$i" 2>&1 & pids+=($!); done
wait_all "parallel run -d" "${pids[@]}"
started=$(secs "$t0" "$(now)")
running=$(den --root "$root" ps -q | wc -l)
[ "$running" = 16 ] || { echo "stress: $running of 16 containers run" >&2; den --root "$root" ps -a >&2; exit 1; }
t0=$(now)
pids=()
for i in $(seq 16); do den --root "$root" rm -f "d$i" >"$work/log.$i" 2>&1 & pids+=($!); done
wait_all "parallel rm -f" "${pids[@]}"
removed=$(secs "$t0" "$(now)")
[ -z "$(den --root "$root" ps -aq)" ] || { echo "stress: rm -f left containers" >&2; den --root "$root" ps -a >&2; exit 1; }
check "$root" "16 run -d and rm -f"
echo "  16 run -d in ${started} s, 16 rm -f in ${removed} s; none left"

echo "== Slurm: a job array of 32 tasks on one store (each blob pulled once)"
(cd /tmp && DEN_TEST_BIN="$bin" DEN_TEST_FIXTURES="$fixtures" DEN_TEST_TMP=/tmp DEN_SLURM_ARRAY=32 \
    "$bin/integration" --exact slurm::a_job_array_on_one_store_pulls_each_blob_once --nocapture)

echo "== stress passed"
