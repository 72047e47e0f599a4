#!/bin/bash
# `make bench`: den and podman side by side, in one run, as the same unprivileged user, with
# ratios. Absolute times drift on shared machines; the ratios are the result.
#
#   run --rm busybox true                 goal: den <= 1/10 of podman
#   pull busybox into an empty store      goal: den <= 1/4 of podman
#   pull a Debian image (several layers,  goal: den <= 1/4 of podman, and no slower than
#   300+ MB compressed) into an empty        `tar -xzf` of the same layers
#   store
#   ps -a with 100 containers             goal: den <= 1/10 of podman
#   run -d + rm -f round trip             (side by side)
#   logs of a 10 MB log                   (side by side)
#   logs of 10 MB printed in the          goal: den <= 1/5 of podman
#   foreground
#   run --rm with output to /dev/null     goal: no slower than to a pipe
#   helper RSS per running container      goal: <= 4 MiB (den's monitor; podman's conmon)
#   requests/s and 1 GB through -p        goal: den >= 80% of the host and >= 3x podman
#   container start, default network      goal: within 2x of --network none
#   push node to an empty registry,       goal: den <= 1/2 of podman on each
#   re-push, save | load through a pipe
#   build of the node example: cold,       goals: cold <= 0.5x podman build, no-change rebuild
#   no-change rebuild, edit rebuild          < 100 ms and <= 1/10 of podman, edit <= 0.3x podman
#                                            (buildah bud --layers alongside)
#   run --rm from a 1 GB image in a .sqsh   goal: at most 50 ms more than from the store
#   on another filesystem (sqsh)              (podman from its store alongside)
#   32 containers at once from one .sqsh    goal: the store grows by their upper dirs only
#   run --rm with a CDI device, --device,   (side by side: what each adds to a start)
#   --init, a hooks.d hook (devices)
#   compose up -d of a three-service        goal: den <= 1/4 of podman-compose; down side by side
#   project, images built (compose)
#
# As root it installs podman and hyperfine, sets up the den-test user and runs as that user.
# The Debian image is made once with mmdebstrap (a few minutes) and cached in
# $DEN_BENCH_CACHE (default /var/tmp/den-bench). podman runs with the configuration
# ENVIRONMENT.md gives (runc, cgroupfs, overlay), in a private HOME so a user's own is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
cache=${DEN_BENCH_CACHE:-/var/tmp/den-bench}
RUNS=${BENCH_RUNS:-20}

if [ "$(id -u)" = 0 ]; then
    ./integration/setup.sh
    need=()
    for p in podman buildah hyperfine mmdebstrap runc bc ab node catatonit pip3; do command -v "$p" >/dev/null || need+=("$p"); done
    need=("${need[@]/#ab/apache2-utils}"); need=("${need[@]/#node/nodejs}"); need=("${need[@]/#pip3/python3-pip}")
    if [ ${#need[@]} -gt 0 ]; then
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
    # podman-compose for the compose section, from PyPI.
    # (the system's python3, so the bench user finds it in /usr/local/bin)
    [ -x /usr/local/bin/podman-compose ] ||
        /usr/bin/python3 -m pip install -q --break-system-packages podman-compose ||
        echo "bench: podman-compose could not be installed; the compose section runs den alone" >&2
    mkdir -p "$cache"; chown den-test: "$cache"
    stage=$(mktemp -d /tmp/den-bench-bin.XXXXXX)
    cp target/release/den target/release/den-image target/release/den-run target/release/den-net target/release/den-build target/release/den-compose "$stage/"
    cp -r bench integration "$stage/"
    chmod -R a+rX "$stage"; chmod 0755 "$stage"
    # A desktop's or a login node's descriptor limits (systemd's: soft 1024, hard 524288) where
    # root may raise them, so the memory section can hold 10,000 connections.
    { ulimit -Hn 524288 && ulimit -Sn 1024; } 2>/dev/null || true
    exec runuser -u den-test -- env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
        HOME="$(getent passwd den-test | cut -d: -f6)" USER=den-test DEN_BENCH_CACHE="$cache" \
        DEN_BENCH_STAGE="$stage" BENCH_RUNS="$RUNS" BENCH_ONLY="${BENCH_ONLY:-}" \
        BENCH_SCALE_PS="${BENCH_SCALE_PS:-100 1000 10000}" BENCH_SCALE_PODMAN="${BENCH_SCALE_PODMAN:-1000}" \
        ${BENCH_CONNECTIONS:+BENCH_CONNECTIONS="$BENCH_CONNECTIONS"} bash "$stage/bench/bench.sh"
fi

for t in podman buildah hyperfine mmdebstrap docker-registry skopeo python3 node ab; do
    command -v "$t" >/dev/null || { echo "bench: $t is missing; run 'make bench' as root once to install it" >&2; exit 1; }
done
stage=${DEN_BENCH_STAGE:-$repo}
bin=${DEN_BENCH_STAGE:-$repo/target/release}
fixtures=$stage/integration/fixtures
mkdir -p "$cache"

work=$(mktemp -d /tmp/den-bench.XXXXXX)
home=$work/home
mkdir -p "$home/.config/containers"
export PATH="$bin:$PATH" HOME="$home" XDG_CONFIG_HOME="$home/.config" XDG_DATA_HOME="$home/.local/share"
unset XDG_RUNTIME_DIR
registry_pid=
cleanup() {
    [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null
    for d in "$work"/den-*; do [ -d "$d" ] && { den --root "$d" system reset --force >/dev/null 2>&1 || true; }; done
    for d in "$work"/podman-*; do
        [ -d "$d" ] && { HOME=$d XDG_CONFIG_HOME=$d/.config XDG_DATA_HOME=$d/.local/share podman system reset --force >/dev/null 2>&1 || true; }
    done
    den system reset --force >/dev/null 2>&1 || true
    podman system reset --force >/dev/null 2>&1 || true
    # Stores moved aside hold files of the user's subordinate ids.
    [ -d "$work/trash" ] && podman unshare rm -rf "$work/trash" 2>/dev/null
    [ -d "$work/buildah" ] && CONTAINERS_STORAGE_CONF=$work/buildah/storage.conf buildah unshare rm -rf "$work/buildah" 2>/dev/null
    rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

# BENCH_ONLY="run containers network memory scale build share pulls sqsh devices compose usernet" (any subset) picks sections; default all.
want() { [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }

# --- fixtures ----------------------------------------------------------------------------------
if [ ! -f "$cache/busybox/index.json" ]; then
    python3 "$fixtures/mkimage.py" "$cache/busybox" busybox
fi
# The Debian image only the pull section uses (minutes to make the first time).
if want pulls && [ ! -f "$cache/debian/index.json" ]; then
    if [ ! -f "$cache/debian.tar" ]; then
        echo "bench: making a Debian userland with mmdebstrap (once; a few minutes)..."
        mmdebstrap --quiet --mode=unshare --variant=apt \
            --include=nodejs,npm,build-essential,python3,python3-pip,git,curl,perl,gfortran,vim,golang-go \
            bookworm "$cache/debian.tmp.tar"
        mv "$cache/debian.tmp.tar" "$cache/debian.tar"
    fi
    echo "bench: splitting it into 6 gzip layers (once)..."
    python3 "$fixtures/mkimage.py" "$cache/debian.tmp" rootfs "$cache/debian.tar" --layers 6
    mv "$cache/debian.tmp" "$cache/debian"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
registry=127.0.0.1:$port
cat > "$work/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: $registry}
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do python3 -c "import urllib.request; urllib.request.urlopen('http://$registry/v2/')" 2>/dev/null && break; sleep 0.1; done
if [ ! -f "$cache/node/index.json" ]; then
    [ -f /var/tmp/den-fixtures/node.tar ] || { echo "bench: /var/tmp/den-fixtures/node.tar is missing; run 'make bench' as root once (integration/setup.sh makes it)" >&2; exit 1; }
    python3 "$fixtures/mkimage.py" "$cache/node.tmp" node /var/tmp/den-fixtures/node.tar
    mv "$cache/node.tmp" "$cache/node"
fi
for img in busybox debian node; do
    [ -f "$cache/$img/index.json" ] || continue
    skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$cache/$img:latest" "docker://$registry/bench/$img:latest"
done
busybox=$registry/bench/busybox:latest
debian=$registry/bench/debian:latest

# --- podman, configured as ENVIRONMENT.md says ---------------------------------------------------
cat > "$home/.config/containers/containers.conf" <<EOF
[containers]
init_path = "$(command -v catatonit || echo /usr/libexec/podman/catatonit)"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cat > "$home/.config/containers/storage.conf" <<EOF
[storage]
driver = "overlay"
EOF
cat > "$home/.config/containers/registries.conf" <<EOF
[[registry]]
location = "$registry"
insecure = true
EOF

# --- measurements ------------------------------------------------------------------------------
results=$work/results.txt
: > "$results"
# bench NAME RUNS PREPARE_DEN CMD_DEN PREPARE_PODMAN CMD_PODMAN [PREPARE_TAR CMD_TAR]
bench() {
    local name=$1 runs=$2
    shift 2
    local args=(--runs "$runs" --export-json "$work/h.json" --style basic --shell=bash)
    local i=0 cmds=()
    while [ $# -gt 0 ]; do
        args+=(--prepare "$1")
        cmds+=("$2")
        shift 2
    done
    echo
    echo "== $name"
    hyperfine "${args[@]}" "${cmds[@]}" >/dev/null 2>"$work/hyperfine.err" || { cat "$work/hyperfine.err"; exit 1; }
    python3 - "$work/h.json" "$name" >> "$results" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(sys.argv[2] + "\t" + "\t".join("%.4f" % x["median"] for x in r))
EOF
    tail -1 "$results"
}


den pull -q "$busybox" >/dev/null
podman pull -q "$busybox" >/dev/null
if want run; then
bench "run --rm busybox true" "$RUNS" \
    "true" "den run --rm $busybox true" \
    "true" "podman run --rm $busybox true"

fi

# --- containers (issue 3) ------------------------------------------------------------------------
if want containers; then
# ps -a with 100 containers; run -d + rm -f; logs of a 10 MB log; helper memory per container.
for i in $(seq 100); do
    den create --name "c$i" "$busybox" true >/dev/null
    podman create --name "c$i" "$busybox" true >/dev/null
done
bench "ps -a with 100 containers" "$RUNS" \
    "true" "den ps -a" \
    "true" "podman ps -a"
den container prune -f >/dev/null
podman container prune -f >/dev/null
bench "run -d + rm -f round trip" "$RUNS" \
    "true" "den rm -f \$(den run -d $busybox sleep 100)" \
    "true" "podman rm -f -t 0 \$(podman run -d $busybox sleep 100)"
big="head -c 10000000 /dev/zero | tr '\\0' a | fold -w 100; echo"
den run -d --name big "$busybox" sh -c "$big" >/dev/null
podman run -d --name big "$busybox" sh -c "$big" >/dev/null
den wait big >/dev/null
podman wait big >/dev/null
bench "logs of a 10 MB log" "$RUNS" \
    "true" "den logs big >/dev/null" \
    "true" "podman logs big >/dev/null"
den rm -f big >/dev/null
podman rm -f big >/dev/null
# A container run in the foreground keeps its log as a detached one does (issue 12).
den run --name fgbig "$busybox" sh -c "$big" >/dev/null
podman run --name fgbig "$busybox" sh -c "$big" >/dev/null
bench "logs of 10 MB printed in the foreground" "$RUNS" \
    "true" "den logs fgbig >/dev/null" \
    "true" "podman logs fgbig >/dev/null"
den rm -f fgbig >/dev/null
podman rm -f fgbig >/dev/null
# Output sent to /dev/null costs no more than output to a pipe (den relays both, and logs them).
bench "output of run --rm (600 KB) to /dev/null, then to a pipe" "$RUNS" \
    "true" "den run --rm $busybox seq 1 100000 >/dev/null" \
    "true" "podman run --rm $busybox seq 1 100000 >/dev/null" \
    "true" "den run --rm $busybox seq 1 100000 | cat >/dev/null" \
    "true" "podman run --rm $busybox seq 1 100000 | cat >/dev/null"

fi

# --- network (issue 4) ---------------------------------------------------------------------------
if want network; then
# Requests/s through -p and a 1 GB transfer: den, podman (its rootless default network), and the
# same server on the host (the ceiling). busybox httpd closes each connection (requests without
# keep-alive); node's http server keeps them open (ab -k). Container start with the default
# network against --network none.
www=$work/www; mkdir -p "$www"; head -c 4096 /dev/zero | tr '\0' x > "$www/index.html"
p_host=$(free_port); p_den=$(free_port); p_pod=$(free_port)
busybox httpd -f -p "127.0.0.1:$p_host" -h "$www" & host_httpd=$!
den run -d --name web -p "$p_den:80" -v "$www:/www:ro" "$busybox" httpd -f -p 80 -h /www >/dev/null
podman run -d --name web -p "$p_pod:80" -v "$www:/www:ro" "$busybox" httpd -f -p 80 -h /www >/dev/null
sleep 2
rps() { ab -q -n "${BENCH_AB_N:-4000}" -c 8 "http://127.0.0.1:$1/index.html" 2>/dev/null | awk '/Requests per second/ {print $4}'; }
r_den=$(rps "$p_den"); r_pod=$(rps "$p_pod"); r_host=$(rps "$p_host")
printf 'requests/s through -p (ab -c 8, no keep-alive)\t%s\t%s\t%s\n' "$r_den" "$r_pod" "$r_host" | tee -a "$results"
kill "$host_httpd" 2>/dev/null || true
den rm -f web >/dev/null; podman rm -f -t 0 web >/dev/null
# With keep-alive: node's http server (the host's node, mounted into busybox), ab -k.
js="const b='x'.repeat(4096);require('http').createServer((q,r)=>r.end(b)).listen(+process.argv[1],process.argv[2])"
hostlibs=(-v /usr:/usr:ro -v /lib64:/lib64:ro -v /usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:ro)
node -e "$js" "$p_host" 127.0.0.1 & host_node=$!
den run -d --name ka -p "$p_den:80" "${hostlibs[@]}" "$busybox" /usr/bin/node -e "$js" 80 0.0.0.0 >/dev/null
podman run -d --name ka -p "$p_pod:80" "${hostlibs[@]}" "$busybox" /usr/bin/node -e "$js" 80 0.0.0.0 >/dev/null
sleep 2
rpsk() { ab -k -q -n "${BENCH_AB_KN:-20000}" -c 8 "http://127.0.0.1:$1/" 2>/dev/null | awk '/Requests per second/ {print $4}'; }
r_den=$(rpsk "$p_den"); r_pod=$(rpsk "$p_pod"); r_host=$(rpsk "$p_host")
printf 'requests/s through -p (ab -k -c 8, keep-alive, node)\t%s\t%s\t%s\n' "$r_den" "$r_pod" "$r_host" | tee -a "$results"
kill "$host_node" 2>/dev/null || true
den rm -f ka >/dev/null; podman rm -f -t 0 ka >/dev/null
# 1 GB from a container to the host through a published port.
gb="nc -ll -p 9000 -e dd if=/dev/zero bs=1M count=1000"
den run -d --name bulk -p "$p_den:9000" "$busybox" sh -c "$gb" >/dev/null
podman run -d --name bulk -p "$p_pod:9000" "$busybox" sh -c "$gb" >/dev/null
busybox nc -ll -p "$p_host" -e dd if=/dev/zero bs=1M count=1000 2>/dev/null & host_nc=$!
sleep 2
secs() {
    python3 - "$1" <<'PY'
import socket, sys, time
t0 = time.monotonic()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
n = 0
buf = bytearray(1 << 20)
while True:
    k = s.recv_into(buf)
    if not k:
        break
    n += k
assert n == 1000 * 1024 * 1024, n
print(time.monotonic() - t0)
PY
}
mbps() { echo "scale=1; 1048.576 / $1" | bc; }
t_den=$(secs "$p_den"); t_pod=$(secs "$p_pod"); t_host=$(secs "$p_host")
printf '1 GB through -p (MB/s)\t%s\t%s\t%s\n' "$(mbps "$t_den")" "$(mbps "$t_pod")" "$(mbps "$t_host")" | tee -a "$results"
kill "$host_nc" 2>/dev/null || true
den rm -f bulk >/dev/null; podman rm -f -t 0 bulk >/dev/null
bench "container start: default network vs --network none" "$RUNS" \
    "true" "den run --rm $busybox true" \
    "true" "den run --rm --network none $busybox true"
fi

# --- build (issue 5) -----------------------------------------------------------------------------
# The node example of WORKFLOW.md: COPY package.json, RUN npm install (from the npm registry,
# through the container's network), COPY server.js. den, podman build and buildah bud --layers.
if want build; then
app=$work/app; mkdir -p "$app"
cat > "$app/Dockerfile" <<DOCKERFILE
FROM $registry/bench/node:latest
WORKDIR /app
COPY package.json ./
RUN npm install --no-audit --no-fund --loglevel=error
COPY server.js ./
EXPOSE 80
CMD ["node", "server.js"]
DOCKERFILE
echo '{"name":"app","version":"1.0.0","dependencies":{"ms":"2.1.3","left-pad":"1.3.0"}}' > "$app/package.json"
echo "require('http').createServer((q, r) => r.end(require('ms')('2 days') + '\\n')).listen(80);" > "$app/server.js"
den pull -q "$registry/bench/node:latest" >/dev/null
podman pull -q "$registry/bench/node:latest" >/dev/null
# buildah does not pick defaults for its store without XDG_RUNTIME_DIR ("runroot must be set"):
# a store of its own, named in full.
mkdir -p "$work/buildah"
cat > "$work/buildah/storage.conf" <<STORAGE
[storage]
driver = "overlay"
runroot = "$work/buildah/run"
graphroot = "$work/buildah/storage"
STORAGE
export CONTAINERS_STORAGE_CONF=$work/buildah/storage.conf
buildah pull -q "$registry/bench/node:latest" >/dev/null
unset CONTAINERS_STORAGE_CONF
buildah="CONTAINERS_STORAGE_CONF=$work/buildah/storage.conf buildah"
BUILD_RUNS=${BENCH_BUILD_RUNS:-5}
bench "build node example, cold (base image local, no cache)" "$BUILD_RUNS" \
    "true" "den build -q --no-cache -t app $app" \
    "true" "podman build -q --no-cache -t app $app" \
    "true" "$buildah bud -q --layers --no-cache -t app $app"
den build -q -t app "$app" >/dev/null; podman build -q -t app "$app" >/dev/null; CONTAINERS_STORAGE_CONF=$work/buildah/storage.conf buildah bud -q --layers -t app "$app" >/dev/null
bench "build node example, no-change rebuild" "$RUNS" \
    "true" "den build -q -t app $app" \
    "true" "podman build -q -t app $app" \
    "true" "$buildah bud -q --layers -t app $app"
edit="echo \"// \$RANDOM\$RANDOM\" >> $app/server.js"
bench "build node example, rebuild after editing server.js" "$BUILD_RUNS" \
    "$edit" "den build -q -t app $app" \
    "$edit" "podman build -q -t app $app" \
    "$edit" "$buildah bud -q --layers -t app $app"
fi

if want share; then
# Sharing images: push of the node image to an empty registry (a second registry, emptied before
# each run), the same push again (every blob already there), and save | load through a pipe
# into an empty store. podman pushes and saves from its own store, as den does.
den pull -q "$registry/bench/node:latest" >/dev/null
podman pull -q "$registry/bench/node:latest" >/dev/null
node_img=$registry/bench/node:latest
reg2=127.0.0.1:$(free_port)
cat > "$work/registry2.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry2}, delete: {enabled: true}}
http: {addr: $reg2}
EOF
docker-registry serve "$work/registry2.yml" >"$work/registry2.log" 2>&1 &
registry2_pid=$!
for _ in $(seq 100); do python3 -c "import urllib.request; urllib.request.urlopen('http://$reg2/v2/')" 2>/dev/null && break; sleep 0.1; done
SHARE_RUNS=${BENCH_SHARE_RUNS:-5}
empty="rm -rf $work/registry2/docker"
bench "push node to an empty registry" "$SHARE_RUNS" \
    "$empty" "den push -q $node_img $reg2/den/node:1" \
    "$empty" "podman push -q --tls-verify=false $node_img $reg2/podman/node:1"
den push -q "$node_img" "$reg2/den/node:1" >/dev/null
podman push -q --tls-verify=false "$node_img" "$reg2/podman/node:1" >/dev/null
bench "re-push node (the registry has every blob)" "$SHARE_RUNS" \
    "true" "den push -q $node_img $reg2/den/node:1" \
    "true" "podman push -q --tls-verify=false $node_img $reg2/podman/node:1"
kill "$registry2_pid" 2>/dev/null || true
mkdir -p "$work/podman-load/.config" "$work/podman-load/.local/share"
cp -r "$home/.config/containers" "$work/podman-load/.config/"
pod_load="HOME=$work/podman-load XDG_CONFIG_HOME=$work/podman-load/.config XDG_DATA_HOME=$work/podman-load/.local/share podman"
# Each run's store is moved aside, not deleted: creating files right after deleting many makes
# ext4's inode allocation several times slower (recently_deleted(), as for the pulls below), which
# would measure the filesystem.
mkdir -p "$work/trash"
aside() { echo "mkdir -p $1 && mv $1 $work/trash/\$(date +%s%N)"; }
bench "save | load node through a pipe, into an empty store" "$SHARE_RUNS" \
    "$(aside "$work/den-load")" "den save $node_img | den --root $work/den-load load -q" \
    "$(aside "$work/podman-load/.local/share/containers")" "podman save $node_img | $pod_load load -q"
fi

if want pulls; then
# Let the filesystem settle first: for a minute or two after many files were deleted (an earlier
# run's stores), ext4 allocates new inodes several times slower for every tool alike.
echo "bench: letting the filesystem settle for 60 s before the pull measurements..."
sync
sleep 60

# Pulls into empty stores, the tools taking turns, each run in a new directory: deleting a
# large tree right before unpacking one makes ext4's inode allocation several times slower
# (recently_deleted() scans), which would measure the filesystem, not the tools. Stores are
# removed at the end.
# interleave NAME RUNS CMD... : each CMD may use $N (the run number); median seconds per CMD.
interleave() {
    local name=$1 runs=$2
    shift 2
    echo
    echo "== $name"
    local times=() n i
    for ((n = 1; n <= runs; n++)); do
        for ((i = 1; i <= $#; i++)); do
            local cmd=${!i} t0 t1
            sync
            t0=$(date +%s.%N)
            N=$n bash -c "$cmd" >/dev/null 2>"$work/err" || { echo "failed: $cmd" >&2; cat "$work/err" >&2; exit 1; }
            t1=$(date +%s.%N)
            times[i]+="$(echo "$t1 - $t0" | bc) "
        done
    done
    local line="$name"
    for ((i = 1; i <= $#; i++)); do
        line+=$'\t'$(echo "${times[i]}" | tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    done
    echo "$line" | tee -a "$results"
}

# A fresh den store is a fresh --root. podman keeps its database under the user's data home
# whatever --root says, so each podman run gets a home of its own, with the same configuration.
for ((n = 1; n <= RUNS; n++)); do
    for kind in bb deb; do
        mkdir -p "$work/podman-$kind-$n/.config" "$work/podman-$kind-$n/.local/share"
        cp -r "$home/.config/containers" "$work/podman-$kind-$n/.config/"
    done
done
den_fresh() { echo "den --root $work/den-$1-\$N"; }
podman_fresh() {
    local d="$work/podman-$1-\$N"
    echo "HOME=$d XDG_CONFIG_HOME=$d/.config XDG_DATA_HOME=$d/.local/share podman"
}
interleave "pull busybox into an empty store" "$RUNS" \
    "$(den_fresh bb) pull -q $busybox" \
    "$(podman_fresh bb) pull -q $busybox"

# tar -xzf of the same layer blobs, one after another, as a shell would.
layers=$(python3 - "$cache/debian" <<'EOF'
import json, sys, os
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "index.json")))
m = json.load(open(os.path.join(d, "blobs/sha256", idx["manifests"][0]["digest"][7:])))
print(" ".join(os.path.join(d, "blobs/sha256", l["digest"][7:]) for l in m["layers"]))
EOF
)
size=$(du -cb $layers | tail -1 | cut -f1)
tarcmd='mkdir -p '"$work"'/tar-$N && for l in '"$layers"'; do tar -xzf $l -C '"$work"'/tar-$N; done'
interleave "pull debian ($(( size / 1000000 )) MB compressed, 6 layers) into an empty store" "${BENCH_PULL_RUNS:-3}" \
    "$(den_fresh deb) pull -q $debian" \
    "$(podman_fresh deb) pull -q $debian" \
    "$tarcmd"
fi

# --- single-file images (issue 16) --------------------------------------------------------------
# Start time from a 1 GB image (256 files of 4 MiB from /dev/urandom: nothing to compress) in the
# store, against the same image as a .sqsh on another filesystem (the bench cache in /var/tmp,
# and /dev/shm), podman from its store alongside; then 32 containers started at once from one
# .sqsh: the store grows only by their writable layers. The .sqsh is made once and cached.
if want sqsh; then
sq=$cache/sqsh
mkdir -p "$sq"
if [ ! -f "$sq/big.sqsh" ]; then
    echo "bench: making a 1 GB image and its .sqsh (once)..."
    mkdir -p "$work/big"
    printf 'FROM %s\nRUN mkdir /data && i=0 && while [ $i -lt 256 ]; do head -c 4194304 /dev/urandom > /data/f$i; i=$((i+1)); done\n' "$busybox" > "$work/big/Dockerfile"
    den build -q -t bench/big "$work/big" >/dev/null
    den image squash bench/big -o "$sq/big.tmp.sqsh" >/dev/null
    mv "$sq/big.tmp.sqsh" "$sq/big.sqsh"
else
    den load -q -i "$sq/big.sqsh" >/dev/null
fi
den save bench/big -o "$work/big.tar"
podman load -q -i "$work/big.tar" >/dev/null
rm -f "$work/big.tar"
shm=/dev/shm/den-bench-$$.sqsh
cp "$sq/big.sqsh" "$shm"
bench "start from a 1 GB image: store, podman, .sqsh in /var/tmp, .sqsh in /dev/shm" "$RUNS" \
    "true" "den run --rm bench/big true" \
    "true" "podman run --rm bench/big true" \
    "true" "den run --rm $sq/big.sqsh true" \
    "true" "den run --rm $shm true"
rm -f "$shm"
root=$work/den-sqsh32
store_bytes() { { du -sb "$root" 2>/dev/null || true; } | cut -f1; }
den --root "$root" info >/dev/null
before=$(store_bytes)
t0=$(date +%s.%N)
pids=()
for i in $(seq 32); do
    den --root "$root" run -d "$sq/big.sqsh" sh -c 'cat /data/f1 /data/f2 >/dev/null; sleep 60' >/dev/null &
    pids+=($!)
done
wait "${pids[@]}"
t1=$(date +%s.%N)
sleep 1
during=$(store_bytes)
running=$(den --root "$root" ps -q | wc -l)
den --root "$root" rm -f $(den --root "$root" ps -aq) >/dev/null
echo
echo "== 32 containers started at once from one .sqsh"
printf '32 containers at once from one .sqsh\t%s\t%s\t%s\t%s\n' "$(echo "$t1 - $t0" | bc)" "$running" "$((during - before))" "$(stat -c %s "$sq/big.sqsh")" | tee -a "$results"
fi

# --- devices, hooks, init (issue 17) --------------------------------------------------------------
# What a device, a hook or --init adds to a container's start, den and podman given the same:
# den's device, environment and mount come from a CDI spec, podman's from the flags (podman 4.3
# reads CDI specs only from /etc/cdi and /var/run/cdi, which a user cannot write).
if want devices; then
mkdir -p "$home/.config/cdi" "$work/hooks" "$work/cdi-share"
cat > "$home/.config/cdi/bench.yaml" <<EOF
cdiVersion: "0.6.0"
kind: bench.test/dev
devices:
  - name: a
    containerEdits:
      deviceNodes: [{path: /dev/bench-null, hostPath: /dev/null}]
      env: ["BENCH_DEV=a"]
      mounts: [{hostPath: $work/cdi-share, containerPath: /opt/bench, options: [ro, bind]}]
EOF
printf '{"version":"1.0.0","hook":{"path":"/bin/true"},"when":{"always":true},"stages":["prestart"]}\n' \
    > "$work/hooks/bench.json"
bench "run --rm with a device, env and a mount (den: a CDI device)" "$RUNS" \
    "true" "den run --rm --device bench.test/dev=a $busybox true" \
    "true" "podman run --rm --device /dev/null:/dev/bench-null -e BENCH_DEV=a -v $work/cdi-share:/opt/bench:ro $busybox true"
bench "run --rm --device /dev/fuse" "$RUNS" \
    "true" "den run --rm --device /dev/fuse $busybox true" \
    "true" "podman run --rm --device /dev/fuse $busybox true"
bench "run --rm --init" "$RUNS" \
    "true" "den run --rm --init $busybox true" \
    "true" "podman run --rm --init $busybox true"
bench "run --rm with a prestart hook (hooks.d)" "$RUNS" \
    "true" "den run --rm --hooks-dir $work/hooks $busybox true" \
    "true" "podman --hooks-dir $work/hooks run --rm $busybox true"
fi

# --- compose (issue 18) ----------------------------------------------------------------------------
# `compose up -d` of the three-service project (a web server built from a Dockerfile beforehand,
# a database-like server with a health check and a named volume, a worker that fetches from both
# by name), from nothing running to all started, and `down`. podman 4.3 cannot wait for a health
# check (podman-compose skips service_healthy below podman 4.6), so its time has no such wait.
if want compose; then
cproj=$work/compose-shop
mkdir -p "$cproj/web"
printf 'FROM %s\nRUN mkdir -p /www && echo hello > /www/index.html\nCMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n' \
    "$busybox" > "$cproj/web/Dockerfile"
cat > "$cproj/compose.yaml" <<EOF
services:
  db:
    image: $busybox
    init: true
    command: ["sh", "-c", "echo ready > /data/index.html; exec httpd -f -p 5432 -h /data"]
    volumes: [data:/data]
    healthcheck: {test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:5432/"], interval: 1s, retries: 30}
  web:
    build: ./web
    image: bench-shop-web
    init: true
    depends_on: {db: {condition: service_healthy}}
  worker:
    image: $busybox
    depends_on: {web: {condition: service_started}, db: {condition: service_healthy}}
    command: ["sh", "-c", "wget -qO- http://web:8080/ && wget -qO- http://db:5432/"]
volumes:
  data: {}
EOF
dc="den compose -p shop -f $cproj/compose.yaml"
pc="podman-compose -p shop -f $cproj/compose.yaml"
$dc build >/dev/null
if command -v podman-compose >/dev/null && $pc build >/dev/null 2>&1 &&
    timeout 120 $pc up -d >/dev/null 2>&1; then
    $pc down -v >/dev/null 2>&1
    bench "compose up -d, three services" "${BENCH_COMPOSE_RUNS:-10}" \
        "$dc down -v >/dev/null 2>&1" "$dc up -d >/dev/null 2>&1" \
        "$pc down -v >/dev/null 2>&1" "$pc up -d >/dev/null 2>&1"
    bench "compose down, three services" "${BENCH_COMPOSE_RUNS:-10}" \
        "$dc up -d >/dev/null 2>&1" "$dc down -v >/dev/null 2>&1" \
        "$pc up -d >/dev/null 2>&1" "$pc down -v >/dev/null 2>&1"
    $pc down -v >/dev/null 2>&1 || true
else
    echo "bench: podman-compose is missing or cannot bring the project up; den alone"
    $dc up -d >/dev/null && $dc down -v >/dev/null
    bench "compose up -d, three services (den alone)" "${BENCH_COMPOSE_RUNS:-10}" \
        "$dc down -v >/dev/null 2>&1" "$dc up -d >/dev/null 2>&1" \
        "$dc down -v >/dev/null 2>&1" "$dc up -d >/dev/null 2>&1"
fi
$dc down -v >/dev/null 2>&1 || true
fi

# --- user networks (issue 18) -------------------------------------------------------------------
if want usernet; then
# 1000 MiB from one container to another on a user network (den's bridge in its helper's
# namespace; podman's on a network of its own), against the same two busybox nc on host
# loopback. busybox's `time` in the client gives the transfer alone, without the start.
gb="nc -ll -p 9000 -e dd if=/dev/zero bs=1M count=1000"
busy_secs() { awk '/^real/ {split($0, a, /[ \tms]+/); print a[2] * 60 + a[3]}'; }
den network create benchnet >/dev/null
podman network create benchnet >/dev/null 2>&1 || true
den run -d --name srv --network benchnet "$busybox" sh -c "$gb" >/dev/null
podman run -d --name srv --network benchnet "$busybox" sh -c "$gb" >/dev/null
p_host=$(free_port)
busybox nc -ll -p "$p_host" -e dd if=/dev/zero bs=1M count=1000 2>/dev/null & host_nc=$!
sleep 2
pod_ip=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' srv)
type mbps >/dev/null 2>&1 || mbps() { echo "scale=1; 1048.576 / $1" | bc; }
u_den=999; u_pod=999; u_host=999
for _ in 1 2 3; do
    t=$(den run --rm --network benchnet "$busybox" time sh -c "nc srv 9000 >/dev/null" 2>&1 | busy_secs)
    u_den=$(echo "if ($t < $u_den) $t else $u_den" | bc)
    t=$(podman run --rm --network benchnet "$busybox" time sh -c "nc $pod_ip 9000 >/dev/null" 2>&1 | busy_secs)
    u_pod=$(echo "if ($t < $u_pod) $t else $u_pod" | bc)
    t=$(busybox time sh -c "busybox nc 127.0.0.1 $p_host >/dev/null" 2>&1 | busy_secs)
    u_host=$(echo "if ($t < $u_host) $t else $u_host" | bc)
done
printf '1 GB container to container on a user network (MB/s, fastest of 3)\t%s\t%s\t%s\n' \
    "$(mbps "$u_den")" "$(mbps "$u_pod")" "$(mbps "$u_host")" | tee -a "$results"
kill "$host_nc" 2>/dev/null || true
den rm -f srv >/dev/null; podman rm -f -t 0 srv >/dev/null
den network rm benchnet >/dev/null; podman network rm benchnet >/dev/null 2>&1 || true
fi

# --- memory (issue 19) ---------------------------------------------------------------------------
# What each tool keeps per running container with a published port, under 10,000 open connections
# through it: den's monitor (which also forwards the port) against podman's conmon and
# rootlessport, RSS and PSS (smaps_rollup); slirp4netns, which both start, on a line of its own.
if want memory; then
hostlibs=(-v /usr:/usr:ro -v /lib64:/lib64:ro -v /usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:ro)
holder="import asyncio,resource
h=resource.getrlimit(resource.RLIMIT_NOFILE)[1]; resource.setrlimit(resource.RLIMIT_NOFILE,(h,h))
async def k(r,w): await r.read()
async def m():
  s=await asyncio.start_server(k,'0.0.0.0',8000,backlog=4096); await s.serve_forever()
asyncio.run(m())"
p_den=$(free_port); p_pod=$(free_port)
den run -d --name mem -p "$p_den:8000" "${hostlibs[@]}" "$busybox" /usr/bin/python3 -c "$holder" >/dev/null
podman run -d --name mem -p "$p_pod:8000" "${hostlibs[@]}" "$busybox" /usr/bin/python3 -c "$holder" >/dev/null
sleep 2
# Open N connections and hold them until told (a line on stdin), printing "ok" once all are up.
hold() {
    python3 - "$1" "$2" <<'PY' &
import resource, socket, sys, time
h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))
port, n = int(sys.argv[1]), int(sys.argv[2])
socks, failed = [], 0
for i in range(n):
    for _ in range(3):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5)); break
        except OSError:
            time.sleep(0.05)
    else:
        # A forwarder at its cap resets at once: count what it held, do not wait on it.
        failed += 1
        if failed >= 20:
            break
print("ok", len(socks), flush=True)
time.sleep(600)
PY
}
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
sum_kib() { local t=0 p; for p in $2; do t=$((t + $(kib "$p" "$1"))); done; echo $t; }
den_id=$(den inspect -f '{{.Id}}' mem); pod_id=$(podman inspect -f '{{.Id}}' mem)
den_own=$(pgrep -u "$(id -u)" -f "den-run __monitor $den_id")
pod_own="$(pgrep -u "$(id -u)" -f "conmon.*$pod_id") $(pgrep -u "$(id -u)" -f "rootlessport" | tr '\n' ' ')"
den_slirp=$(pgrep -u "$(id -u)" -P "$den_own" slirp4netns | head -1)
pod_slirp=$(pgrep -u "$(id -u)" -f "slirp4netns.*" | grep -v "^$den_slirp\$" | head -1)
# 10,000, or as many as den forwards under this machine's hard descriptor limit (two
# descriptors a connection, after 256 kept aside and a sixteenth of the rest, at most 2,048, for
# pipes: about 9,200 under a hard limit of 20,000).
hard=$(ulimit -Hn); budget=$((hard - 257)); pipe_fds=$(( budget / 16 < 2048 ? budget / 16 : 2048 ))
fit=$(( (budget - pipe_fds) / 2 - 50 ))
n_conn=${BENCH_CONNECTIONS:-$(( fit < 10000 ? fit : 10000 ))}
hold "$p_den" "$n_conn" > "$work/hold-den" ; sleep 1
while ! grep -q ok "$work/hold-den" 2>/dev/null; do sleep 0.5; done
hold "$p_pod" "$n_conn" > "$work/hold-pod"
while ! grep -q ok "$work/hold-pod" 2>/dev/null; do sleep 0.5; done
sleep 1
echo "bench: connections held: den $(cut -d' ' -f2 "$work/hold-den"), podman $(cut -d' ' -f2 "$work/hold-pod")"
printf 'helper RSS per running container with -p, %s connections (KiB)\t%s\t%s\n' "$n_conn" \
    "$(sum_kib Rss "$den_own")" "$(sum_kib Rss "$pod_own")" | tee -a "$results"
printf 'helper PSS per running container with -p, %s connections (KiB)\t%s\t%s\n' "$n_conn" \
    "$(sum_kib Pss "$den_own")" "$(sum_kib Pss "$pod_own")" | tee -a "$results"
printf 'slirp4netns RSS, the same container (KiB)\t%s\t%s\n' \
    "$(sum_kib Rss "$den_slirp")" "$(sum_kib Rss "$pod_slirp")" | tee -a "$results"
# And idle, with no connection (the state a container spends its life in).
pkill -f "python3 - $p_den" 2>/dev/null || true; pkill -f "python3 - $p_pod" 2>/dev/null || true
den rm -f mem >/dev/null; podman rm -f -t 0 mem >/dev/null
den run -d --name idle -p "$p_den:80" "$busybox" sleep 1000 >/dev/null
podman run -d --name idle -p "$p_pod:80" "$busybox" sleep 1000 >/dev/null
sleep 1
den_own=$(pgrep -u "$(id -u)" -f "den-run __monitor $(den inspect -f '{{.Id}}' idle)")
pod_own="$(pgrep -u "$(id -u)" -f "conmon.*$(podman inspect -f '{{.Id}}' idle)") $(pgrep -u "$(id -u)" -f "rootlessport" | tr '\n' ' ')"
printf 'helper PSS per running container with -p, idle (KiB)\t%s\t%s\n' \
    "$(sum_kib Pss "$den_own")" "$(sum_kib Pss "$pod_own")" | tee -a "$results"
den rm -f idle >/dev/null; podman rm -f -t 0 idle >/dev/null
fi

# --- scale (issue 19) ----------------------------------------------------------------------------
# How costs grow with the store: ps -a against the number of containers, images against the
# number of images, run --rm among 500 other containers, image prune of 1,000 images, and a no-op
# rebuild with 10,000 steps in the build cache. podman is measured up to BENCH_SCALE_PODMAN
# (default 1000) containers or images: making 10,000 of its containers takes most of an hour.
if want scale; then
pod_max=${BENCH_SCALE_PODMAN:-1000}
scale_row() { printf 'scale: %s\t%s\t%s\n' "$1" "$2" "$3" | tee -a "$results"; }
median_of() {  # median_of RUNS CMD: the median wall time of CMD in seconds (hyperfine)
    hyperfine -N --runs "$1" --warmup 2 --export-json "$work/s.json" "$2" >/dev/null 2>&1
    python3 -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$work/s.json"
}
# Containers: created (not started) in batches up to each size.
have=0
for n in ${BENCH_SCALE_PS:-100 1000 10000}; do
    seq $((have + 1)) "$n" | xargs -P 2 -I{} den create --name "s{}" "$busybox" true >/dev/null
    if [ "$n" -le "$pod_max" ]; then
        seq $((have + 1)) "$n" | xargs -P 2 -I{} podman create -q --name "s{}" "$busybox" true >/dev/null
    fi
    have=$n
    d=$(median_of 5 "den ps -a"); p=0
    [ "$n" -le "$pod_max" ] && p=$(median_of 5 "podman ps -a")
    scale_row "ps -a with $n containers" "$d" "$p"
done
den container prune -f >/dev/null; podman container prune -f >/dev/null
# run --rm in an empty store and among 500 others (80 running, 420 exited; den's and podman's
# together: each running container holds a session keyring, and kernel.keys.maxkeys is 200 a
# user by default).
sync
d0=$(median_of 20 "den run --rm $busybox true"); p0=$(median_of 10 "podman run --rm $busybox true")
scale_row "run --rm, no other container" "$d0" "$p0"
seq 1 80 | xargs -P 2 -I{} den run -d --name "r{}" "$busybox" sleep 100000 >/dev/null
seq 1 420 | xargs -P 2 -I{} den run --name "x{}" "$busybox" true >/dev/null
seq 1 80 | xargs -P 2 -I{} podman run -d --name "r{}" "$busybox" sleep 100000 >/dev/null
seq 1 420 | xargs -P 2 -I{} podman run --name "x{}" "$busybox" true >/dev/null
# Their writes flushed first (as before the empty store's figure): a start measured while the
# kernel writes back 1,000 containers' files measures the writeback.
sync
d5=$(median_of 20 "den run --rm $busybox true"); p5=$(median_of 10 "podman run --rm $busybox true")
scale_row "run --rm among 500 containers (80 running)" "$d5" "$p5"
den rm -f $(den ps -aq) >/dev/null; podman rm -f -t 0 $(podman ps -aq) >/dev/null
# Images: tiny ones imported (each its own file), named, up to each size.
mkdir -p "$work/imp"
mk_tar() { mkdir -p "$work/imp/$1" && echo "$1" > "$work/imp/$1/f" && tar -C "$work/imp/$1" -cf "$work/imp/$1.tar" f; }
have=0
for n in 10 100 1000; do
    for i in $(seq $((have + 1)) "$n"); do mk_tar "$i"; done
    seq $((have + 1)) "$n" | xargs -P 2 -I{} den import "$work/imp/{}.tar" "img{}:latest" >/dev/null
    seq $((have + 1)) "$n" | xargs -P 2 -I{} podman import -q "$work/imp/{}.tar" "img{}:latest" >/dev/null
    have=$n
    scale_row "images with $n images" "$(median_of 5 "den images")" "$(median_of 5 "podman images")"
done
# image prune of 1,000 unused images (their names taken away first, as dangling images are).
for i in $(seq 1 1000); do echo "img$i:latest"; done | xargs -n 200 den rmi >/dev/null 2>&1 || true
for i in $(seq 1 1000); do echo "img$i:latest"; done | xargs -n 200 podman untag >/dev/null 2>&1 || true
seq 1 1000 | xargs -P 2 -I{} den import "$work/imp/{}.tar" >/dev/null
t0=$(date +%s.%N); den image prune -f >/dev/null; t1=$(date +%s.%N)
podman image prune -f >/dev/null; t2=$(date +%s.%N)
scale_row "image prune of 1000 images" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)"
# The build cache: a no-op rebuild with this build's steps cached, then with 10,000 more.
ctx=$work/cachectx; mkdir -p "$ctx"; echo hi > "$ctx/f"
printf 'FROM %s\nCOPY f /f\nENV A=1\nRUN echo built > /built\nCMD ["cat", "/f"]\n' "$busybox" > "$ctx/Dockerfile"
den build -q -t noop "$ctx" >/dev/null; podman build -q --layers -t noop "$ctx" >/dev/null
scale_row "build no-op, this build cached" "$(median_of 10 "den build -q -t noop $ctx")" "$(median_of 5 "podman build -q --layers -t noop $ctx")"
for b in $(seq 1 100); do
    d=$work/fill$b; mkdir -p "$d"
    { echo "FROM $busybox"; echo "ENV B=$b"; for j in $(seq 1 99); do echo "ENV V$j=$j"; done; } > "$d/Dockerfile"
    den build -q "$d" >/dev/null
done
echo "bench: build cache entries: $(ls "$(den info -f '{{.DockerRootDir}}')/build-cache/steps" 2>/dev/null | wc -l)"
scale_row "build no-op, 10000 more steps cached (podman: this build's)" "$(median_of 10 "den build -q -t noop $ctx")" "$(median_of 5 "podman build -q --layers -t noop $ctx")"
den rmi -f $(den images -q) >/dev/null 2>&1 || true
fi

# --- report ------------------------------------------------------------------------------------
echo
python3 - "$results" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
goals = {"run --rm": 0.10, "pull": 0.25, "ps -a": 0.10, "logs of 10 MB printed in the foreground": 0.2,
         "build node example, cold": 0.5, "build node example, no-change": 0.10,
         "build node example, rebuild": 0.3, "push node": 0.5, "re-push node": 0.5,
         "save | load": 0.5, "compose up -d, three services": 0.25}
print(f"{'benchmark':60} {'den':>9} {'podman':>9} {'den/podman':>11}  goal")
for r in rows:
    name, den, podman = r[0], float(r[1]), float(r[2])
    if name.startswith("1 GB container to container"):
        host = float(r[3])
        print(f"{name:60} {den:9.0f} {podman:9.0f} {den/podman:11.2f}  host {host:.0f}: den/host {den/host:.2f} (>= 0.80): {'met' if den >= 0.8 * host else 'NOT met'}")
        continue
    if name.startswith("requests/s") or name.startswith("1 GB"):
        host = float(r[3])
        ok = den >= 0.8 * host and den >= 3 * podman
        print(f"{name:60} {den:9.0f} {podman:9.0f} {den/podman:11.2f}  host {host:.0f}: den/host {den/host:.2f} (>= 0.80), den/podman (>= 3): {'met' if ok else 'NOT met'}")
        continue
    if name.startswith("output of run --rm"):
        null, pipe = den, float(r[3])
        print(f"{'output of run --rm (600 KB) to /dev/null':60} {den:8.3f}s {podman:8.3f}s {den/podman:11.3f}  (no goal)")
        print(f"{'  the same to a pipe':60} {pipe:8.3f}s {float(r[4]):8.3f}s {pipe/float(r[4]):11.3f}  (no goal)")
        print(f"{'  den: /dev/null against a pipe':60} {null:8.3f}s {pipe:8.3f}s {null/pipe:11.3f}  <= 1.00 (+5% noise) {'met' if null <= 1.05 * pipe else 'NOT met'}  (null/pipe)")
        continue
    if name.startswith("container start"):
        print(f"{name:60} {den:8.3f}s {podman:8.3f}s {den/podman:11.2f}  (default/none) <= 2.00 {'met' if den <= 2 * podman else 'NOT met'}")
        continue
    if name.startswith("start from a 1 GB image"):
        sq, shm = float(r[3]), float(r[4])
        print(f"{'start from a 1 GB image in the store (den, podman)':60} {den:8.3f}s {podman:8.3f}s {den/podman:11.3f}  (no goal)")
        for what, t in (("  the same from a .sqsh in /var/tmp", sq), ("  the same from a .sqsh in /dev/shm", shm)):
            print(f"{what:60} {t:8.3f}s {podman:8.3f}s {t/podman:11.3f}  .sqsh - store = {1000*(t-den):+.0f} ms <= +50 ms {'met' if t - den <= 0.050 else 'NOT met'}")
        continue
    if name.startswith("32 containers"):
        secs, running, grown, size = float(r[1]), int(r[2]), int(r[3]), int(r[4])
        ok = running == 32 and grown < size // 10
        print(f"{name:60} {secs:8.3f}s  {running} running; store grew {grown/1e6:.1f} MB for a {size/1e6:.0f} MB file: {'met' if ok else 'NOT met'} (the file's space once)")
        continue
    if name.startswith("helper RSS") or name.startswith("helper PSS"):
        verdict = "met" if den <= 4096 else "NOT met"
        print(f"{name:60} {den/1024:7.2f}Mi {podman/1024:7.2f}Mi {den/podman:11.3f}  <= 4 MiB {verdict}")
        continue
    if name.startswith("scale: "):
        limits = {"ps -a with 10000": 0.100, "images with 1000": 0.050, "image prune of 1000": 2.0,
                  "build no-op, 10000": 0.050}
        lim = next((v for k, v in limits.items() if name[7:].startswith(k)), None)
        pod = f"{podman:8.3f}s" if podman > 0 else f"{'-':>9}"
        ratio = f"{den/podman:11.3f}" if podman > 0 else f"{'-':>11}"
        goal = f"  <= {lim*1000:.0f} ms {'met' if den <= lim else 'NOT met'}" if lim else ""
        print(f"{name:60} {den:8.3f}s {pod} {ratio}{goal}")
        continue
    if name.startswith("slirp4netns RSS"):
        print(f"{name:60} {den/1024:7.2f}Mi {podman/1024:7.2f}Mi {den/podman:11.3f}  (no goal)")
        continue
    goal = next((g for k, g in goals.items() if name.startswith(k)), None)
    if goal is None:
        print(f"{name:60} {den:8.3f}s {podman:8.3f}s {den/podman:11.3f}  (no goal)")
        continue
    ratio = den / podman
    verdict = "met" if ratio <= goal else "NOT met"
    print(f"{name:60} {den:8.3f}s {podman:8.3f}s {ratio:11.3f}  <= {goal:.2f} {verdict}")
    if name.startswith("build") and len(r) > 3:
        bud = float(r[3])
        extra = f" (and < 0.100 s: {'met' if den < 0.1 else 'NOT met'})" if "no-change" in name else ""
        print(f"{'  buildah bud --layers, same build':60} {den:8.3f}s {bud:8.3f}s {den/bud:11.3f}  (den/buildah){extra}")
        continue
    if len(r) > 3:
        tar = float(r[3])
        print(f"{'  the same layers with tar -xzf, one after another':60} {den:8.3f}s {tar:8.3f}s {den/tar:11.3f}  <= 1.00 {'met' if den <= tar else 'NOT met'}  (den/tar)")
EOF
