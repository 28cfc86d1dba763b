#!/usr/bin/env bash
# Target check (a): the agent as a real systemd service on Debian 12, as a new user installs it.
#
#   sudo deploy/check_systemd.sh
#
# mmdebstraps a Debian 12 (bookworm) rootfs from the host's apt sources, copies the host's pip
# configuration and CA files into it, installs this checkout as the README says
# (python3 -m venv /opt/edge-nids && /opt/edge-nids/bin/pip install '.[agent]'), boots it with
# `systemd-nspawn -b --register=no --keep-unit --private-network`, and inside
# (deploy/check_systemd_inside.sh): install-service, `systemctl enable --now edge-nids` on a
# veth that is down (READY anyway, STATUS says so), traffic once it is up, flows and alerts,
# `systemctl reload` accepted and refused, logrotate, `systemd-analyze security`, stop.
# Prints times; exit 0 if every check passed. Bounded by TIMEOUT_S (default 900 s); the work
# directory is removed at exit (KEEP=1 keeps it). Needs: mmdebstrap systemd-container.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "$0")/lib.sh"
need_root
need_cmd mmdebstrap mmdebstrap
need_cmd systemd-nspawn systemd-container
need_cmd git git
TIMEOUT_S=${TIMEOUT_S:-900}

work=$(mktemp -d "${TMPDIR:-/var/tmp}/edge-nids-systemd.XXXXXX")
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $work"
    else
        rm -rf --one-file-system "$work"
    fi
}
trap cleanup EXIT
root=$work/root
mkdir -p "$work/out"

step "rootfs: Debian 12 from $(host_sources | tr '\n' ' ')"
make_rootfs amd64 systemd,systemd-sysv,dbus,python3,python3-venv,iproute2,ca-certificates,procps,logrotate \
    "$root"
copy_pip_config "$root"
copy_source "$root/src/edge-nids"
step "rootfs ready"

nspawn=(systemd-nspawn --quiet -D "$root" --register=no --keep-unit)
step "install as the README says: python3 -m venv /opt/edge-nids && /opt/edge-nids/bin/pip install '.[agent]'"
timeout "$TIMEOUT_S" "${nspawn[@]}" --pipe --chdir=/src/edge-nids /bin/sh -ec '
    . /etc/edge-nids-check.env
    python3 -m venv /opt/edge-nids
    /opt/edge-nids/bin/pip install -q ".[agent]" 2>&1 | grep -v "^WARNING: Location" || true
    /opt/edge-nids/bin/edge-nids --version
    /opt/edge-nids/bin/pip list 2>/dev/null | grep -iE "^(ai-edge-litert|numpy|pyyaml|scapy) "
    if find /opt/edge-nids -name model.keras | grep -q .; then echo "FAIL the wheel carries model.keras"; exit 1; fi
    echo "ok   no training/model.keras installed"
' | tee "$work/out/install.txt"
grep -q "^edge-nids " "$work/out/install.txt" || {
    echo "FAIL pip install"
    exit 1
}
step "installed"

mkdir -p "$root/check"
cp "$REPO/deploy/check_systemd_inside.sh" "$root/check/inside.sh"
cat >"$root/etc/systemd/system/edge-nids-check.service" <<'EOF'
[Unit]
Description=edge-nids target check (deploy/check_systemd_inside.sh)

[Service]
Type=simple
ExecStart=/bin/bash /check/inside.sh
StandardOutput=journal+console
StandardError=journal+console
EOF
ln -sf /etc/systemd/system/edge-nids-check.service "$root/etc/systemd/system/multi-user.target.wants/"

step "boot: systemd-nspawn -b --register=no --keep-unit --private-network"
rc=0
timeout "$TIMEOUT_S" "${nspawn[@]}" -b --private-network --bind="$work/out:/out" \
    >"$work/out/console.log" 2>&1 || rc=$?
step "container powered off (nspawn exit $rc)"
if [ -f "$work/out/report.txt" ]; then
    cat "$work/out/report.txt"
else
    echo "FAIL no report from inside the container; its console:"
    tail -40 "$work/out/console.log"
    exit 1
fi
inner=$(cat "$work/out/rc" 2>/dev/null || echo 1)
step "done: inside checks exit $inner"
[ "$rc" = 0 ] && [ "$inner" = 0 ]
