#!/bin/bash
# `make test`: lint, unit tests, then the end-to-end tests as unprivileged users.
#
# As root (CI): set the machine up (integration/setup.sh), then run the end-to-end tests as
# den-test (subordinate ids) and as den-test-single (single-uid mode). As another user: run them
# as yourself. The binaries are copied to a world-readable staging directory first, since the
# checkout may live where the test users cannot read.
set -euo pipefail
cd "$(dirname "$0")/.."

./integration/setup.sh

echo "== lint"
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets --quiet -- -D warnings

echo "== unit tests"
cargo test --release --quiet -p den --lib

echo "== building the end-to-end tests"
cargo build --release --quiet --bins
test_bin=$(cargo test --release --no-run --message-format=json --test integration 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "integration" and m.get("executable"):
        print(m["executable"])')

stage=$(mktemp -d /tmp/den-test.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/fixtures"
cp target/release/den target/release/den-image target/release/den-run target/release/den-net target/release/den-build target/release/den-compose "$stage/bin/"
cp "$test_bin" "$stage/bin/integration"
cp integration/fixtures/*.py integration/fixtures/*.c "$stage/fixtures/"
chmod -R a+rX "$stage"
chmod 0755 "$stage"
# The other user's shared store the additional-store tests read (integration/stores.rs).
if [ "$(id -u)" = 0 ]; then ./integration/setup.sh --shared-store "$stage/bin"; fi

run_as() {
    local user=$1
    echo "== end-to-end tests as $user"
    local cmd=(env DEN_TEST_BIN="$stage/bin" DEN_TEST_FIXTURES="$stage/fixtures" DEN_TEST_TMP=/tmp
               "$stage/bin/integration" --test-threads "${TEST_THREADS:-2}")
    if [ "$(id -un)" = "$user" ]; then
        (cd /tmp && "${cmd[@]}")
    else
        local home
        home=$(getent passwd "$user" | cut -d: -f6)
        # Inside the user's delegated cgroup leaf where setup.sh made one (integration/limits.rs).
        local leaf
        leaf=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)/den-tests/$user/session
        (cd /tmp && { [ ! -w "$leaf/cgroup.procs" ] || echo $BASHPID >"$leaf/cgroup.procs"; } &&
            runuser -u "$user" -- env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
            HOME="$home" USER="$user" "${cmd[@]}")
    fi
}

if [ "$(id -u)" = 0 ]; then
    run_as den-test
    run_as den-test-single
else
    run_as "$(id -un)"
fi
echo "== all tests passed"
