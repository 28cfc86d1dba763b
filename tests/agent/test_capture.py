"""Live AF_PACKET capture on the loopback interface (needs root or CAP_NET_RAW)."""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest

from edge_nids.agent.capture import CaptureOpenError, LiveCapture, compile_bpf
from edge_nids.agent.ring import block_size_for

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="raw AF_PACKET capture needs root")


def _udp_socket_pair() -> tuple[socket.socket, int, int]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    return tx, rx.getsockname()[1], other.getsockname()[1]


def _bpf(expr: str, iface: str | None = None) -> list[tuple[int, int, int, int]]:
    try:
        return compile_bpf(expr, iface)
    except ValueError as exc:
        if "needs tcpdump" in str(exc):
            pytest.skip(str(exc))
        raise


def _read_all(cap: LiveCapture, want: int, timeout: float = 3.0) -> list[tuple[int, int, bytes, int]]:
    got: list[tuple[int, int, bytes, int]] = []
    end = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < end:
        got += cap.read(64)
        time.sleep(0.01)
    time.sleep(0.05)
    return got + cap.read(64)


MODES = pytest.mark.parametrize("ring", [True, False], ids=["ring", "recvmsg"])


@pytest.mark.root
@needs_root
@MODES
def test_loopback_capture_with_bpf_filter_and_kernel_timestamps(ring: bool) -> None:
    tx, port, other = _udp_socket_pair()
    cap = LiveCapture("lo", bpf=_bpf(f"udp dst port {port}", "lo"), ring=ring)
    try:
        assert cap.mode == ("ring" if ring else "recvmsg")
        before = time.time_ns() // 1000
        for i in range(5):
            tx.sendto(b"x" * (10 + i), ("127.0.0.1", port))
            tx.sendto(b"y" * 10, ("127.0.0.1", other))  # filtered out by BPF
        after = time.time_ns() // 1000
        recs = _read_all(cap, 5)
    finally:
        cap.close()
        tx.close()
    assert len(recs) == 5  # loopback frames are seen once, the other port never
    for i, (ts_us, linktype, frame, wire_len) in enumerate(recs):
        assert linktype == 1 and wire_len == len(frame) == 14 + 20 + 8 + 10 + i
        assert before <= ts_us <= after + 1000  # kernel arrival time, not read time
        assert struct.unpack_from("!H", frame, 14 + 20 + 2)[0] == port
    assert [r[0] for r in recs] == sorted(r[0] for r in recs)


@pytest.mark.root
@needs_root
@MODES
def test_kernel_statistics_count_delivered_frames(ring: bool) -> None:
    tx, port, _ = _udp_socket_pair()
    cap = LiveCapture("lo", bpf=_bpf(f"udp dst port {port}"), ring=ring)
    try:
        for _ in range(3):
            tx.sendto(b"z", ("127.0.0.1", port))
        _read_all(cap, 3)
        assert cap.read_drops() == 0
        # loopback frames pass out and in; kernels >= 4.20 skip the outgoing copy (PACKET_IGNORE_OUTGOING)
        assert cap.kernel_packets in (3, 6)
    finally:
        cap.close()
        tx.close()


def test_missing_interface_is_a_clear_error() -> None:
    with pytest.raises(CaptureOpenError, match="no such network interface: nosuch0"):
        LiveCapture("nosuch0")


def test_bad_bpf_expression_is_a_clear_error() -> None:
    _bpf("tcp")  # skips when no compiler is available
    with pytest.raises(ValueError, match="bad BPF filter 'port port'"):
        compile_bpf("port port")


@pytest.mark.root
@needs_root
def test_run_without_cap_net_raw_fails_fast_with_a_clear_message(agent_bundle) -> None:
    import shutil
    import subprocess
    import sys

    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    out = subprocess.run(
        [
            setpriv,
            "--bounding-set=-net_raw",
            sys.executable,
            "-m",
            "edge_nids.cli",
            "run",
            "--iface",
            "lo",
            "--model",
            str(agent_bundle),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == "edge-nids run: capturing on lo needs root or CAP_NET_RAW"


@pytest.mark.root
@needs_root
def test_receive_buffer_is_capped_by_rmem_max_without_cap_net_admin_and_the_ring_is_not() -> None:
    """What capture.buffer_mb really gets: with ``ring: false``, the request with CAP_NET_ADMIN,
    net.core.rmem_max without (the systemd unit); the ring, the request either way."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    asked = 2 * rmem_max
    snippet = (
        "from edge_nids.agent.capture import LiveCapture\n"
        f"c = LiveCapture('lo', buffer_bytes={asked}, ring=False)\nprint(c.rcvbuf_bytes)\nc.close()\n"
        f"c = LiveCapture('lo', buffer_bytes={asked})\nprint(c.ring_bytes)\nc.close()\n"
    )
    got = {}
    for name, prefix in (("root", []), ("no CAP_NET_ADMIN", [setpriv, "--bounding-set=-net_admin"])):
        out = subprocess.run(
            [*prefix, sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        got[name] = [int(x) for x in out.stdout.split()]
    # the ring: what was asked, in whole 128 KiB blocks, with or without CAP_NET_ADMIN
    ring = (asked // block_size_for(65535)) * block_size_for(65535)
    assert got == {"root": [asked, ring], "no CAP_NET_ADMIN": [rmem_max, ring]}
