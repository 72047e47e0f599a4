#!/bin/bash
# `make demo`: the docker workflow with den, on a local example, as an unprivileged user.
#
# A local registry (docker-registry on a loopback port) stands in for Docker Hub, holding a
# busybox image made offline from Debian's busybox-static. The demo uses its own store and
# leaves your ~/.local/share/den alone. Run as root, it runs den as the den-test user.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

if [ "$(id -u)" = 0 ]; then
    ./integration/setup.sh
    stage=$(mktemp -d /tmp/den-demo-bin.XXXXXX)
    cp target/release/den target/release/den-image target/release/den-run target/release/den-net target/release/den-build integration/demo.sh "$stage/"
    cp integration/fixtures/mkimage.py "$stage/"
    chmod -R a+rX "$stage"; chmod 0755 "$stage"
    exec runuser -u den-test -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$(getent passwd den-test | cut -d: -f6)" \
        USER=den-test TERM="${TERM:-dumb}" DEN_DEMO_STAGE="$stage" bash "$stage/demo.sh"
fi

bin=${DEN_DEMO_STAGE:-$repo/target/release}
fixtures=${DEN_DEMO_STAGE:-$repo/integration/fixtures}
./integration/setup.sh 2>/dev/null || "$repo/integration/setup.sh" 2>/dev/null || true
work=$(mktemp -d /tmp/den-demo.XXXXXX)
export PATH="$bin:$PATH" DEN_ROOT="$work/store" XDG_CONFIG_HOME="$work/config"
registry_pid=
cleanup() {
    [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null
    den system reset --force >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { step "$*"; "$@"; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
registry=127.0.0.1:$port
echo "Setting up a local registry at $registry with a busybox image made offline..."
python3 "$fixtures/mkimage.py" "$work/busybox" busybox
cat > "$work/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: $registry}
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -s "http://$registry/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$work/busybox:latest" "docker://$registry/library/busybox:latest"
image=$registry/library/busybox

echo
echo "den runs as $(id -un) (uid $(id -u)), with no daemon and no root."
run den info
run den pull "$image"
run den images
run den run --rm "$image" echo hello from a container
step "echo abc | den run -i --rm $image tr a-z A-Z"
echo abc | den run -i --rm "$image" tr a-z A-Z
step "den run --rm $image sh -c 'exit 3'; echo \$?"
set +e; den run --rm "$image" sh -c 'exit 3'; echo $?; set -e
run den run --rm "$image" sh -c 'echo "I am $(id -un) in $(hostname), pid $$"; ls /'
step "den run --rm $image no-such-command; echo \$?"
set +e; den run --rm "$image" no-such-command; echo $?; set -e

echo
echo "A container that outlives the command: a small web server in the background."
mkdir -p "$DEN_ROOT/../site" && echo "hello from a detached container" > "$DEN_ROOT/../site/index.html"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run den run -d --name web -p "$port:80" -v "$DEN_ROOT/../site:/www:ro" "$image" sh -c 'echo serving /www; exec httpd -f -v -p 80 -h /www'
run den ps
run den port web
step "curl http://127.0.0.1:$port/      (from the host, through den-net)"
sleep 0.5
python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/').read().decode(), end='')"
run den exec web wget -qO- http://127.0.0.1:80/
run den logs -t web
run den cp web:/etc/hostname "$DEN_ROOT/../hostname"
run den inspect -f '{{.Name}} {{.State.Status}} pid {{.State.Pid}}' web
run den stop -t 1 web
run den ps -a --format 'table {{.Names}}\t{{.Status}}'
run den rm web

echo
echo "Build an image from a Dockerfile, run it, reach it through -p; rebuild from the cache."
app=$DEN_ROOT/../app
mkdir -p "$app"
cat > "$app/Dockerfile" <<DOCKERFILE
FROM $image
WORKDIR /www
COPY index.html ./
RUN echo "built at \$(date)" > built.txt
EXPOSE 80
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
DOCKERFILE
echo "hello from an image den built" > "$app/index.html"
step "cat Dockerfile"
cat "$app/Dockerfile"
run den build -t demo-app:1 "$app"
run den image inspect --format '{{.Config.Cmd}} {{.Config.ExposedPorts}}' demo-app:1
run den run -d --name app -p "$port:80" demo-app:1
step "curl http://127.0.0.1:$port/"
sleep 0.5
python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/').read().decode(), end='')"
run den build -t demo-app:1 "$app"
run den rm -f app
if [ -t 0 ] && [ -t 1 ]; then
    step "den run -it --rm $image sh      (type commands; 'exit' to leave)"
    den run -it --rm "$image" sh || true
else
    echo
    echo "On a terminal, try: den run -it --rm $image sh"
fi
echo
echo "Done. The demo's store was $DEN_ROOT; it is removed now."
