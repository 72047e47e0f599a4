#!/bin/bash
# Prepare a machine for den's tests, demo and benchmarks.
#
# As root: install the Debian packages den's tests use, make /dev/fuse and /dev/net/tun usable
# by unprivileged users as on a normal distribution, and create the test users:
#   den-test         an ordinary user with a subordinate id range (useradd gives one)
#   den-test-single  a user without one (den's single-uid mode)
# As another user: check what is installed and say what is missing.
# With --packages: only the packages (what building den needs too: libseccomp-dev, pkg-config).
set -euo pipefail

PACKAGES=(docker-registry skopeo openssl uidmap fuse-overlayfs fuse3 slirp4netns passt busybox-static
          python3 zstd util-linux procps ca-certificates mmdebstrap
          apache2-utils podman runc time libseccomp-dev pkg-config gcc libc6-dev)

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
