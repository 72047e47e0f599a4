#!/bin/bash
# Prepare a machine for den's tests, demo and benchmarks.
#
# As root: install the Debian packages den's tests use, make /dev/fuse and /dev/net/tun usable
# by unprivileged users as on a normal distribution, and create the test users:
#   den-test         an ordinary user with a subordinate id range (useradd gives one)
#   den-test-single  a user without one (den's single-uid mode)
# and makes both members of the group den-dev (owning a file and a device node in /var/lib/den-dev).
# As another user: check what is installed and say what is missing.
# With --packages: only the packages (what building den needs too: libseccomp-dev, pkg-config).
set -euo pipefail

PACKAGES=(docker-registry skopeo openssl uidmap fuse-overlayfs fuse3 slirp4netns passt iptables iproute2 busybox-static
          python3 zstd util-linux procps ca-certificates mmdebstrap
          apache2-utils podman runc time libseccomp-dev pkg-config gcc libc6-dev)
PACKAGES+=(squashfs-tools squashfuse)   # single-file images: den image squash, den run FILE.sqsh
PACKAGES+=(slurm-wlm munge)              # Slurm tests: a one-node cluster on loopback (slurm.sh)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "$(id -u)" != 0 ]; then
    if [ ${#missing[@]} -gt 0 ]; then
        echo "setup: missing Debian packages: ${missing[*]}" >&2
        echo "setup: install them with: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    exit 0
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "${1:-}" = --packages ] && exit 0

# Distributions ship these 0666; some VMs (these among them) have 0600.
chmod 0666 /dev/fuse /dev/net/tun 2>/dev/null || true

if ! id den-test >/dev/null 2>&1; then
    useradd -m -s /bin/bash den-test
fi
if ! grep -q '^den-test:' /etc/subuid; then
    usermod --add-subuids 200000-265535 --add-subgids 200000-265535 den-test
fi
if ! id den-test-single >/dev/null 2>&1; then
    useradd -m -s /bin/bash den-test-single
fi
sed -i '/^den-test-single:/d' /etc/subuid /etc/subgid

# A supplementary group of both test users, owning a file and a device node that only its
# members may open, for --group-add keep-groups (integration/devices.rs): the way the video and
# render groups own GPU nodes on a desktop or an HPC node.
groupadd -f den-dev
usermod -aG den-dev den-test
usermod -aG den-dev den-test-single
mkdir -p /var/lib/den-dev; chmod 0755 /var/lib/den-dev
printf 'den-dev group file\n' >/var/lib/den-dev/secret
[ -c /var/lib/den-dev/zero ] || mknod /var/lib/den-dev/zero c 1 5
chown root:den-dev /var/lib/den-dev/secret /var/lib/den-dev/zero
chmod 0640 /var/lib/den-dev/secret; chmod 0660 /var/lib/den-dev/zero

# A Debian userland with Node.js and npm for the build tests (made once, about a minute), with
# this machine's CA bundle: HTTPS to the package registries may pass an intercepting proxy whose
# CA only the host trusts (ENVIRONMENT.md).
fixtures=/var/tmp/den-fixtures
if [ ! -f "$fixtures/node.tar" ]; then
    echo "setup: making the Debian + Node.js userland for the build tests (once)"
    mkdir -p "$fixtures"
    mmdebstrap --quiet --variant=apt --include=nodejs,npm,ca-certificates \
        --customize-hook='upload /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt' \
        bookworm "$fixtures/node.tmp.tar"
    mv "$fixtures/node.tmp.tar" "$fixtures/node.tar"
fi
chmod 0755 "$fixtures"; chmod 0644 "$fixtures/node.tar"

# A cgroup v2 group delegated to each test user, as systemd's Delegate=yes gives one
# (integration/limits.rs): DIR/USER owned by the user, with a leaf DIR/USER/session that run.sh
# starts the user's tests in. On a cgroup v2 host the controllers are enabled on the way down,
# so --memory and --pids-limit apply for real; on a hybrid host (v1 controllers, cgroup2 at
# /sys/fs/cgroup/unified) the group has none, and the tests check the refusal.
cg=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
if [ -n "$cg" ] && [ -w "$cg" ]; then
    mkdir -p "$cg/den-tests"
    if grep -qw memory "$cg/cgroup.controllers" 2>/dev/null; then
        want=$(tr ' ' '\n' <"$cg/cgroup.controllers" | grep -xE 'cpu|cpuset|memory|pids' | sed 's/^/+/' | tr '\n' ' ')
        echo "$want" >"$cg/cgroup.subtree_control" || true
        echo "$want" >"$cg/den-tests/cgroup.subtree_control" || true
    fi
    for u in den-test den-test-single; do
        mkdir -p "$cg/den-tests/$u/session"
        chown -R "$u" "$cg/den-tests/$u"
    done
fi

# A one-node Slurm on loopback for the Slurm tests (left as it is when it already answers).
"$(dirname "$0")/slurm.sh"

# --shared-store BIN (run.sh calls it once den is built, BIN holding its binaries): a store owned
# by another user, den-admin, made by den itself (`--root`, `import`, `system share`) and then
# made read-only (a read-only bind mount where the kernel lets root make one, and no write bit
# in any case), for integration/stores.rs. Remade every time (a second or two), so it is always
# in the format of the den under test.
if [ "${1:-}" = --shared-store ]; then
    bin=$(realpath "$2"); store=/var/tmp/den-shared-store
    id den-admin >/dev/null 2>&1 || useradd -r -M -d /nonexistent -s /usr/sbin/nologin den-admin
    while mountpoint -q "$store"; do umount "$store"; done
    rm -rf "$store" /var/tmp/den-admin-work
    work=/var/tmp/den-admin-work; mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/opt/solver" "$work/rootfs/tmp"
    cp /bin/busybox "$work/rootfs/bin/busybox"
    for a in sh cat echo touch ls id stat rm mkdir wc sleep test; do ln -s busybox "$work/rootfs/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/rootfs/etc/passwd"
    printf 'root:x:0:\n' >"$work/rootfs/etc/group"
    printf 'solver 2.1 from the shared store\n' >"$work/rootfs/opt/solver/VERSION"
    chmod 1777 "$work/rootfs/tmp"
    tar -C "$work/rootfs" --owner=0 --group=0 --numeric-owner -cf "$work/rootfs.tar" .
    mkdir -m 0700 "$store"; chown -R den-admin: "$store" "$work"
    as_admin() {
        runuser -u den-admin -- env -i PATH=/usr/bin:/bin HOME="$work" XDG_CONFIG_HOME="$work/config" \
            DEN_RUNTIME_DIR="$work/rt" "$bin/den" --root "$store" "$@"
    }
    as_admin import -c 'CMD ["/bin/sh"]' "$work/rootfs.tar" shared/solver:2.1 >/dev/null 2>"$work/log" ||
        { cat "$work/log" >&2; exit 1; }
    as_admin system share >/dev/null
    rm -rf "$work"
    # No write bit on den's own files; the image's files keep the modes the image gave them.
    find "$store" -path "$store/layers/*/diff/*" -prune -o -exec chmod a-w {} +
    if mount --bind "$store" "$store" 2>/dev/null; then
        mount -o remount,bind,ro "$store" 2>/dev/null || umount "$store"
    fi
fi
