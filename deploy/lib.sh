# shellcheck shell=bash
# Shared by deploy/check_systemd.sh and deploy/check_arm64.sh (sourced, not run):
# a Debian 12 rootfs from the host's apt sources, the host's pip configuration and CA
# files copied into it (so pip inside reaches the same index), the source tree, timing.
#
# Environment:
#   EDGE_NIDS_ROOTFS_CACHE=DIR  keep/reuse the mmdebstrap tarball there (default: build afresh)
#   KEEP=1                      leave the work directory for inspection

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T0=$EPOCHREALTIME
FAILED=0

# seconds since the script started, one decimal
elapsed() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
step() { printf '== %7s s  %s\n' "$(elapsed)" "$*"; }
ok() { printf 'ok   %s\n' "$*"; }
fail() {
    printf 'FAIL %s\n' "$*"
    FAILED=1
}

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "$0: run as root (mmdebstrap, systemd-nspawn and chroot need it)" >&2
        exit 2
    fi
}

# need_cmd CMD PACKAGE: a clear message instead of "command not found" half-way
need_cmd() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "$0: needs $1: apt-get install -y $2" >&2
        exit 2
    fi
}

# The host's enabled apt source files (deb822 .sources and one-line .list), for mmdebstrap.
host_sources() {
    local f
    if [ -f /etc/apt/sources.list ] && grep -qE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
        echo /etc/apt/sources.list
    fi
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] && echo "$f"
    done
}

# make_rootfs ARCH PACKAGES DIR: a minbase Debian 12 (bookworm) with PACKAGES (comma-separated) in DIR
make_rootfs() {
    local arch=$1 packages=$2 dir=$3 tar
    local -a sources
    mapfile -t sources < <(host_sources)
    if [ "${#sources[@]}" = 0 ]; then
        echo "$0: no apt sources on this host (/etc/apt/sources.list*)" >&2
        exit 2
    fi
    mkdir -p "$dir"
    if [ -n "${EDGE_NIDS_ROOTFS_CACHE:-}" ]; then
        tar="$EDGE_NIDS_ROOTFS_CACHE/bookworm-$arch-$(echo "$packages" | md5sum | cut -c1-8).tar"
        if [ ! -f "$tar" ]; then
            mkdir -p "$EDGE_NIDS_ROOTFS_CACHE"
            mmdebstrap --quiet --format=tar --arch="$arch" --variant=minbase --include="$packages" bookworm "$tar.part" \
                "${sources[@]}"
            mv "$tar.part" "$tar"
        fi
        tar -C "$dir" -xf "$tar"
    else
        mmdebstrap --quiet --arch="$arch" --variant=minbase --include="$packages" bookworm "$dir" \
            "${sources[@]}"
    fi
}

# copy_pip_config ROOT: pip.conf files, PIP_* and proxy variables, CA files, resolv.conf.
# The variables go to ROOT/etc/edge-nids-check.env, which the guest steps source.
copy_pip_config() {
    local root=$1 f home
    home=$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)
    for f in /etc/pip.conf /etc/xdg/pip "$home/.config/pip" "$home/.pip"; do
        [ -e "$f" ] || continue
        if [ "$f" = "$home/.config/pip" ] || [ "$f" = "$home/.pip" ]; then
            mkdir -p "$root/root/$(dirname "${f#"$home"/}")"
            cp -a "$f" "$root/root/${f#"$home"/}"
        else
            mkdir -p "$root$(dirname "$f")"
            cp -a "$f" "$root$f"
        fi
    done
    # CA files: the host's bundle (it has any local CA) and every file a variable or config names
    local -a cas=(/etc/ssl/certs/ca-certificates.crt)
    for v in PIP_CERT REQUESTS_CA_BUNDLE SSL_CERT_FILE; do
        [ -n "${!v:-}" ] && cas+=("${!v}")
    done
    mapfile -t -O "${#cas[@]}" cas < <(cat /etc/pip.conf /etc/xdg/pip/pip.conf "$home/.config/pip/pip.conf" \
        2>/dev/null | sed -n 's/^[[:space:]]*cert[[:space:]]*=[[:space:]]*//p')
    for f in "${cas[@]}"; do
        if [ -f "$f" ]; then
            mkdir -p "$root$(dirname "$f")"
            cp -L "$f" "$root$f"
        fi
    done
    if [ -d /usr/local/share/ca-certificates ]; then
        mkdir -p "$root/usr/local/share/ca-certificates"
        cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
    fi
    cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    env | grep -E '^(PIP_[A-Z_]+|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)=' |
        sed "s/'/'\\\\''/g; s/=/='/; s/\$/'/; s/^/export /" >"$root/etc/edge-nids-check.env" || true
}

# copy_source DIR: this checkout's files (tracked and untracked, not ignored), as a clone would have them
copy_source() {
    local dst=$1
    mkdir -p "$dst"
    git -C "$REPO" ls-files -z --cached --others --exclude-standard |
        (cd "$REPO" && tar --null -T - -cf - 2>/dev/null) | tar -C "$dst" -xf -
}
