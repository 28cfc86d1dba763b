#!/usr/bin/env bash
# Target check (b): install and run the agent on arm64 Debian 12 (a 64-bit Raspberry Pi OS's
# base) under qemu-user emulation, and compare every flow's score with an x86-64 run.
#
#   sudo deploy/check_arm64.sh
#
# mmdebstraps an arm64 bookworm rootfs (qemu-user-static through binfmt_misc), copies the host's
# pip configuration and CA files into it, installs this checkout as the README says
# (python3 -m venv /opt/edge-nids && /opt/edge-nids/bin/pip install '.[agent]'), replays
# lab/captures/demo.pcap with --flows and --alerts, does the same on this x86-64 host in a fresh
# venv, and compares them with deploy/compare_scores.py. Exit 0 if every flow's verdict and
# every alert agree and every score is within one int8 output step (1/256).
#
# Two traps of qemu 7.2, both handled: the guest sees the host's x86 /proc/cpuinfo, on which
# LiteRT's CPU detection crashes, so a Raspberry Pi 4's (deploy/cpuinfo-rpi4-cortex-a72.txt) is
# bind-mounted over it; and QEMU_CPU=max advertises SME, which no Pi has and which changes the
# int8 results, so the guest runs as a Cortex-A72 (QEMU_CPU, default cortex-a72; ALSO_MAX=1 also
# runs with max and shows the difference). ALSO_TFLITE=1 also installs the fallback runtime
# ('.[agent-tflite]': tflite-runtime, numpy<2) in a second venv and compares its scores. Bounded by TIMEOUT_S (default 1500 s) per guest step;
# removes its work directory (KEEP=1 keeps it) and undoes any binfmt setup it did.
# Needs: mmdebstrap arch-test qemu-user-static binfmt-support git.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "$0")/lib.sh"
need_root
need_cmd mmdebstrap mmdebstrap
need_cmd arch-test arch-test
need_cmd qemu-aarch64-static qemu-user-static
need_cmd update-binfmts binfmt-support
need_cmd git git
TIMEOUT_S=${TIMEOUT_S:-1500}
export QEMU_CPU=${QEMU_CPU:-cortex-a72}
CPUINFO=$REPO/deploy/cpuinfo-rpi4-cortex-a72.txt

work=$(mktemp -d "${TMPDIR:-/var/tmp}/edge-nids-arm64.XXXXXX")
mounted_binfmt=0
enabled_binfmt=0
cleanup() {
    [ "$enabled_binfmt" = 1 ] && update-binfmts --disable qemu-aarch64 >/dev/null 2>&1
    [ "$mounted_binfmt" = 1 ] && umount /proc/sys/fs/binfmt_misc
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $work"
    else
        rm -rf --one-file-system "$work"
    fi
}
trap cleanup EXIT
root=$work/root

step "binfmt_misc: aarch64 binaries through qemu-aarch64-static"
if [ ! -f /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    mounted_binfmt=1
fi
if ! grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    update-binfmts --enable qemu-aarch64
    enabled_binfmt=1
fi
grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
    echo "note: qemu-aarch64 is registered without the F flag: the chroot needs its own qemu binary"
ok "$(qemu-aarch64-static --version | head -1), QEMU_CPU=$QEMU_CPU"

step "rootfs: arm64 Debian 12 from $(host_sources | tr '\n' ' ')"
make_rootfs arm64 python3,python3-venv,ca-certificates "$root"
copy_pip_config "$root"
copy_source "$root/src/edge-nids"
mkdir -p "$root/out"
step "rootfs ready"

# guest SCRIPT: run SCRIPT with /bin/sh -ec in the rootfs, with /proc (a Pi 4's cpuinfo over the
# host's), /sys (LiteRT's CPU detection reads /sys/devices/system/cpu/possible; without it, no
# XNNPACK and other int8 kernels) and /dev mounted in a private mount namespace that ends with it
guest() {
    timeout "$TIMEOUT_S" unshare --mount --propagation private --fork /bin/bash -ec '
        r=$1 cpuinfo=$2 script=$3
        mount -t proc proc "$r/proc"
        mount --bind "$cpuinfo" "$r/proc/cpuinfo"
        mount --rbind /sys "$r/sys"
        mount --rbind /dev "$r/dev"
        exec chroot "$r" /bin/sh -ec ". /etc/edge-nids-check.env; $script"
    ' _ "$root" "$CPUINFO" "$1"
}

step "arm64: install as the README says: python3 -m venv /opt/edge-nids && /opt/edge-nids/bin/pip install '.[agent]'"
guest '
    cd /src/edge-nids
    echo "guest: $(uname -m), $(python3 -V), $(grep -m1 "^Model" /proc/cpuinfo)"
    python3 -m venv /opt/edge-nids
    /opt/edge-nids/bin/pip install -q ".[agent]" 2>&1 | grep -v "^WARNING: Location" || true
    /opt/edge-nids/bin/pip list 2>/dev/null | grep -iE "^(ai-edge-litert|numpy) " | tr -s " " | paste -sd " "
    ! find /opt/edge-nids -name model.keras | grep -q .
' | tee "$work/arm64-install.txt"
step "arm64: installed"

demo() { # demo EDGE_NIDS OUT_PREFIX: the README demo with per-flow output
    echo "$1 run --pcap lab/captures/demo.pcap --flows $2.flows.json --alerts $2.alerts.json"
}
step "arm64: $(demo /opt/edge-nids/bin/edge-nids /out/arm64)"
guest "cd /src/edge-nids && $(demo /opt/edge-nids/bin/edge-nids /out/arm64) 2>/out/arm64.log"
grep -q "XNNPACK delegate" "$root/out/arm64.log" && ok "LiteRT: XNNPACK delegate on arm64" ||
    fail "no XNNPACK delegate on arm64"
step "arm64: demo done"

if [ "${ALSO_MAX:-0}" = 1 ]; then
    step "arm64 with QEMU_CPU=max (advertises SME, which no Pi has)"
    QEMU_CPU=max guest "cd /src/edge-nids && $(demo /opt/edge-nids/bin/edge-nids /out/arm64-max) 2>/dev/null"
fi

if [ "${ALSO_TFLITE:-0}" = 1 ]; then
    step "arm64, fallback runtime: pip install '.[agent-tflite]' in /opt/edge-nids-tflite, the demo"
    guest "
        cd /src/edge-nids
        python3 -m venv /opt/edge-nids-tflite
        /opt/edge-nids-tflite/bin/pip install -q '.[agent-tflite]' 2>&1 | grep -v '^WARNING: Location' || true
        /opt/edge-nids-tflite/bin/pip list 2>/dev/null | grep -iE '^(tflite-runtime|numpy) ' | tr -s ' ' | paste -sd ' '
        $(demo /opt/edge-nids-tflite/bin/edge-nids /out/arm64-tflite) 2>/out/arm64-tflite.log
    "
fi

step "x86-64: the same install in a fresh venv on this host"
copy_source "$work/src-x86"
python3 -m venv "$work/x86"
(cd "$work/src-x86" && "$work/x86/bin/pip" install -q ".[agent]" 2>&1 | grep -v "^WARNING: Location" || true)
"$work/x86/bin/pip" list 2>/dev/null | grep -iE "^(ai-edge-litert|numpy) " | tr -s " " | paste -sd " "
(cd "$work/src-x86" && $(demo "$work/x86/bin/edge-nids" "$work/x86") 2>"$work/x86.log")
step "x86-64: demo done"

step "per-flow scores, x86-64 vs arm64 (QEMU_CPU=$QEMU_CPU)"
if python3 "$REPO/deploy/compare_scores.py" --names x86-64,arm64 "$work/x86.flows.json" \
    "$root/out/arm64.flows.json" "$work/x86.alerts.json" "$root/out/arm64.alerts.json"; then
    ok "every flow's verdict and every alert identical, scores within one int8 step"
else
    fail "x86-64 and arm64 differ"
fi
if [ "${ALSO_MAX:-0}" = 1 ]; then
    step "per-flow scores, x86-64 vs arm64 (QEMU_CPU=max)"
    python3 "$REPO/deploy/compare_scores.py" --names x86-64,arm64-max "$work/x86.flows.json" \
        "$root/out/arm64-max.flows.json" || true
fi
if [ "${ALSO_TFLITE:-0}" = 1 ]; then
    step "per-flow scores, arm64 ai-edge-litert vs arm64 tflite-runtime"
    python3 "$REPO/deploy/compare_scores.py" --names litert,tflite-runtime "$root/out/arm64.flows.json" \
        "$root/out/arm64-tflite.flows.json" "$root/out/arm64.alerts.json" "$root/out/arm64-tflite.alerts.json" ||
        true
fi
step "done (failed: $FAILED)"
exit "$FAILED"
