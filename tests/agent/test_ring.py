"""Live capture through the TPACKET_V3 ring, and its recvmsg fallback, on a veth pair in a
network namespace of the test's own (root; skips otherwise): exactly the frames sent, their
bytes, wire lengths and kernel timestamps; the snaplen; kernel drops when the ring is full
and reading afterwards; poll wake-ups; an interface going down; PACKET_FANOUT; loopback."""

from __future__ import annotations

import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from edge_nids.agent.capture import CaptureOpenError, LiveCapture
from edge_nids.agent.ring import block_size_for
from edge_nids.agent.workers import join_fanout

from .netns import VethNetns, veth_netns
from .pcapgen import ipv4_udp

pytestmark = pytest.mark.root

MODES = pytest.mark.parametrize("ring", [True, False], ids=["ring", "recvmsg"])


@pytest.fixture
def ns() -> Iterator[VethNetns]:
    with veth_netns("r") as n:
        yield n


def _frames(n: int, sizes: tuple[int, ...] = (60, 61, 100, 333, 1000, 1514)) -> list[bytes]:
    """``n`` distinct Ethernet frames (local experimental EtherType: no protocol answers them)."""
    out = []
    for i in range(n):
        size = sizes[i % len(sizes)]
        head = bytes.fromhex("020000000002020000000001") + b"\x88\xb5" + struct.pack("!I", i)
        out.append(head + bytes((i + k) & 255 for k in range(size - len(head))))
    return out


def _sender(ns: VethNetns) -> socket.socket:
    with ns.inside():
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        tx.bind((ns.tx, 0))
    return tx


def _read(cap: LiveCapture, want: int, timeout: float = 5.0) -> list[tuple[int, int, bytes, int]]:
    """Read until ``want`` frames came (or ``timeout`` s passed), waiting on the socket as the agent does."""
    got: list[tuple[int, int, bytes, int]] = []
    end = time.monotonic() + timeout
    while len(got) < want and (left := end - time.monotonic()) > 0:
        select.select([cap.fileno()], [], [], left)
        got += cap.read(512)
    return got


def _open(ns: VethNetns, iface: str | None = None, **kw: object) -> LiveCapture:
    with ns.inside():
        return LiveCapture(iface or ns.cap, **kw)  # type: ignore[arg-type]


@MODES
def test_reads_exactly_the_frames_sent(ns: VethNetns, ring: bool) -> None:
    cap = _open(ns, ring=ring)
    tx = _sender(ns)
    sent = _frames(300)
    try:
        assert cap.mode == ("ring" if ring else "recvmsg")
        before = time.time_ns() // 1000
        for f in sent:
            tx.send(f)
        after = time.time_ns() // 1000
        got = _read(cap, len(sent))
        got += cap.drain()  # nothing else arrives
        assert cap.read_drops() == 0 and cap.kernel_packets == len(sent)
    finally:
        cap.close()
        tx.close()
    assert [r[2] for r in got] == sent
    assert [r[3] for r in got] == [len(f) for f in sent]
    assert {r[1] for r in got} == {1}
    ts = [r[0] for r in got]
    assert ts == sorted(ts) and before <= ts[0] and ts[-1] <= after


@MODES
def test_frames_are_cut_at_snaplen_and_keep_their_wire_length(ns: VethNetns, ring: bool) -> None:
    cap = _open(ns, snaplen=100, ring=ring)
    tx = _sender(ns)
    sent = _frames(12)
    try:
        for f in sent:
            tx.send(f)
        got = _read(cap, len(sent))
    finally:
        cap.close()
        tx.close()
    assert [(r[2], r[3]) for r in got] == [(f[:100], len(f)) for f in sent]
    assert {len(r[2]) for r in got} == {60, 61, 100}


def test_a_full_ring_counts_kernel_drops_and_reading_resumes_after_draining(ns: VethNetns) -> None:
    block = block_size_for(65535)
    cap = _open(ns, buffer_bytes=2 * block)  # two blocks: about 240 frames of 1,000 bytes
    tx = _sender(ns)
    burst, later = _frames(1000, sizes=(1000,)), _frames(1100, sizes=(1000,))[1000:]
    try:
        assert cap.mode == "ring" and cap.ring_bytes == 2 * block
        for f in burst:  # nothing reads meanwhile: the ring fills, the kernel drops the rest
            tx.send(f)
        drops = cap.read_drops()
        got = _read(cap, len(burst), timeout=1.0)
        assert 0 < len(got) < len(burst)
        assert drops == len(burst) - len(got) and cap.kernel_freezes >= 1
        assert [r[2] for r in got] == burst[: len(got)]  # the earliest frames, whole, in order
        for f in later:  # the blocks were given back: the kernel fills them again
            tx.send(f)
        again = _read(cap, len(later))
        assert cap.read_drops() == drops
    finally:
        cap.close()
        tx.close()
    assert [r[2] for r in again] == later


@MODES
def test_poll_wakes_for_a_single_frame_and_not_again_once_it_is_read(ns: VethNetns, ring: bool) -> None:
    cap = _open(ns, ring=ring)
    tx = _sender(ns)
    try:
        assert select.select([cap.fileno()], [], [], 0)[0] == []
        tx.send(_frames(1)[0])
        # a quiet link: the ring's block is not full, the retire timeout hands it over
        assert select.select([cap.fileno()], [], [], 5.0)[0] == [cap.fileno()]
        assert [r[2] for r in cap.read(10)] == _frames(1)
        assert select.select([cap.fileno()], [], [], 0)[0] == []  # no busy loop after reading
        assert cap.read(10) == []
    finally:
        cap.close()
        tx.close()


@MODES
def test_interface_going_down_wakes_the_reader_with_an_error(ns: VethNetns, ring: bool) -> None:
    cap = _open(ns, ring=ring)
    try:
        ns.ip("link", "set", ns.cap, "down")
        assert select.select([cap.fileno()], [], [], 5.0)[0] == [cap.fileno()]
        with pytest.raises(CaptureOpenError, match=f"capture on {ns.cap} failed: Network is down"):
            cap.read(10)
        with ns.inside():
            assert cap.gone() == f"interface {ns.cap} is down"
            ns.ip("link", "del", ns.cap)
            assert cap.gone() == f"interface {ns.cap} went away"
    finally:
        cap.close()


def test_fanout_splits_flows_between_two_rings_and_keeps_each_flow_whole(ns: VethNetns) -> None:
    caps = [_open(ns) for _ in range(2)]
    tx = _sender(ns)
    sent = []
    for i in range(200):  # both directions of 200 UDP flows
        sent.append(ipv4_udp("192.0.2.1", "198.51.100.2", 20000 + i, 53, b"q" * 20))
        sent.append(ipv4_udp("198.51.100.2", "192.0.2.1", 53, 20000 + i, b"r" * 40))
    try:
        for c in caps:
            join_fanout(c.fileno(), 4242)
        assert {c.mode for c in caps} == {"ring"}
        for f in sent:
            tx.send(f)
        time.sleep(0.2)
        got = [c.drain() for c in caps]
    finally:
        for c in caps:
            c.close()
        tx.close()
    frames = [[r[2] for r in g] for g in got]
    assert sorted(frames[0] + frames[1]) == sorted(sent)  # each frame read once, by one of them
    assert all(len(f) > 50 for f in frames)  # the hash spread the flows
    for f in frames:  # both directions of a flow reached the same socket
        ports = {struct.unpack_from("!HH", x, 34) for x in f}
        assert all((d, s) in ports for s, d in ports)


@MODES
def test_loopback_gives_each_packet_once(ns: VethNetns, ring: bool) -> None:
    cap = _open(ns, "lo", ring=ring)
    with ns.inside():
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(20):
            tx.sendto(b"%03d" % i, rx.getsockname())
        got = _read(cap, 20)
        got += cap.drain()
    finally:
        cap.close()
        rx.close()
        tx.close()
    assert [r[2][14 + 20 + 8 :] for r in got] == [b"%03d" % i for i in range(20)]


def test_a_ring_the_kernel_cannot_map_falls_back_to_recvmsg_and_says_so(ns: VethNetns) -> None:
    """No address space for the ring's mapping (RLIMIT_AS): a warning and recvmsg, no traceback."""
    snippet = f"""
import logging, resource, socket, time
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
from edge_nids.agent.capture import LiveCapture
vm = int(next(x for x in open("/proc/self/status") if x.startswith("VmSize")).split()[1]) << 10
resource.setrlimit(resource.RLIMIT_AS, (vm + (48 << 20), resource.RLIM_INFINITY))
cap = LiveCapture({ns.cap!r}, buffer_bytes=256 << 20)
cap.log_open()
tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
tx.bind(({ns.tx!r}, 0))
tx.send(bytes.fromhex("020000000002020000000001") + b"\\x88\\xb5" + bytes(46))
time.sleep(0.2)
print(cap.mode, [r[3] for r in cap.read(10)])
"""
    out = subprocess.run(
        ["ip", "netns", "exec", ns.name, sys.executable, "-c", snippet],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["recvmsg", "[60]"]
    assert (
        f"WARNING capture on {ns.cap}: cannot set up a 262144 KiB ring: Cannot allocate memory" in out.stderr
    )
    assert "reading with recvmsg instead" in out.stderr and "Traceback" not in out.stderr
    assert f"capturing on {ns.cap} (recvmsg, socket receive buffer" in out.stderr
