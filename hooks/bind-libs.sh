#!/bin/sh
# den's bind-libs OCI hook (createContainer): bind the host's libraries and tools that a site
# file names (an MPI, a GPU driver's libraries) read-only into a container that asks for them
# with an annotation (see bind-libs.json and README.md in this directory).
#
# It runs in the container's mount namespace before pivot_root (the createContainer stage), as
# the user inside den's user namespace: the host's paths are still visible, and bind mounts made
# here are the container's alone. The site file (BIND_LIBS_CONF, default /etc/den/bind-libs.conf)
# has one bind a line, `HOST-PATH [CONTAINER-PATH]` (the same path when the second is left out);
# blank lines and lines starting with # are skipped; a host path that does not exist is skipped.
#
# Never follow the image's symlinks on the host side: a destination under the container's root
# whose path holds a symlink (an image could point /usr/local at the host's /etc) is refused.
set -eu

conf=${BIND_LIBS_CONF:-/etc/den/bind-libs.conf}
state=$(cat)
bundle=$(printf '%s' "$state" | sed -n 's/.*"bundle":"\([^"]*\)".*/\1/p')
[ -n "$bundle" ] || { echo "bind-libs: no bundle in the state on stdin" >&2; exit 1; }
rootfs=$(sed -n 's/.*"root":{"path":"\([^"]*\)".*/\1/p' "$bundle/config.json")
[ -n "$rootfs" ] || { echo "bind-libs: no root.path in $bundle/config.json" >&2; exit 1; }
[ -r "$conf" ] || { echo "bind-libs: cannot read the site file $conf" >&2; exit 1; }

# Refuse a destination whose path under the root has a symlink in it.
no_symlinks() {
    p=$rootfs
    rest=${1#/}
    while [ -n "$rest" ]; do
        part=${rest%%/*}
        [ "$part" = "$rest" ] && rest= || rest=${rest#*/}
        p=$p/$part
        if [ -L "$p" ]; then
            echo "bind-libs: $1 goes through a symlink in the image ($p): not bound" >&2
            return 1
        fi
    done
}

grep -v '^[[:space:]]*\(#\|$\)' "$conf" | while read -r src dst _; do
    [ -e "$src" ] || continue
    dst=${dst:-$src}
    case $dst in /*) ;; *) echo "bind-libs: $dst is not absolute" >&2; exit 1 ;; esac
    no_symlinks "$dst" || exit 1
    if [ -d "$src" ]; then
        mkdir -p "$rootfs$dst"
    else
        mkdir -p "$(dirname "$rootfs$dst")"
        [ -e "$rootfs$dst" ] || : > "$rootfs$dst"
    fi
    mount --bind "$src" "$rootfs$dst"
    mount -o remount,bind,ro "$rootfs$dst"
done
