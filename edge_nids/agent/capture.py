"""Live capture from a Linux AF_PACKET raw socket (standard library only).

Frames are read through a TPACKET_V3 ring mapped into the process
(:mod:`edge_nids.agent.ring`: the kernel writes frames into shared blocks, no
system call per frame), or, when the kernel refuses the ring or ``capture.ring``
is false, with one ``recvmsg`` per frame. Either way they come with kernel
timestamps (the packet's arrival time: the ring's ``tp_sec``/``tp_nsec``, or
``SO_TIMESTAMPNS`` ancillary data; not the wall clock when Python got round to
it), as the same ``(ts_us, linktype, frame, wire_len)`` records that
:func:`edge_nids.flows.pcap.open_capture` yields, so live capture and pcap
replay share one code path. Promiscuous mode uses ``PACKET_ADD_MEMBERSHIP``
(undone by the kernel when the socket closes); kernel drops come from
``PACKET_STATISTICS``; an optional BPF filter is compiled by ``tcpdump -ddd``
(or scapy's ``compile_filter`` if tcpdump is missing) and attached with
``SO_ATTACH_FILTER`` before the socket is bound (it is opened with protocol 0,
so it sees nothing before then), so no unfiltered frame slips in.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import select
import shutil
import socket
import struct
import subprocess
from typing import TYPE_CHECKING

from edge_nids.agent.ring import RingError, RxRing

if TYPE_CHECKING:
    from edge_nids.agent.config import CaptureConfig

__all__ = ["RETIRE_MS", "CaptureOpenError", "LiveCapture", "compile_bpf", "interface_state"]

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4
PACKET_IGNORE_OUTGOING = 23
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33  # like SO_RCVBUF, past net.core.rmem_max; needs CAP_NET_ADMIN
SIOCGIFFLAGS = 0x8913
SIOCGIFHWADDR = 0x8927
IFF_UP = 0x1
SO_TIMESTAMPNS = 35  # SO_TIMESTAMPNS_OLD; also SCM_TIMESTAMPNS
SIOCGSTAMPNS = 0x8907

ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
# Device types that deliver a raw IP packet with no link header (tun, PPP, IP-in-IP, WireGuard).
_RAW_IP_HATYPES = frozenset((65534, 512, 768, 776, 778))
#: The ring's block retire timeout (tp_retire_blk_tov), ms: the longest a frame waits in a block
#: that is not full before the reader sees it.
RETIRE_MS = 100


def _is_up(sock: socket.socket, iface: str) -> bool:
    """True if ``iface`` is administratively up (IFF_UP), asked through ``sock``'s network namespace."""
    import fcntl

    try:
        raw = fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, struct.pack("16s16x", iface.encode()[:15]))
    except OSError:
        return False  # gone meanwhile
    return bool(struct.unpack_from("16sH", raw)[1] & IFF_UP)


def _hatype(sock: socket.socket, iface: str) -> int:
    """The interface's ARPHRD_* device type (``SIOCGIFHWADDR``), asked through ``sock``'s namespace."""
    import fcntl

    raw = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, struct.pack("16s16x", iface.encode()[:15]))
    return int(struct.unpack_from("H", raw, 16)[0])


def interface_state(iface: str) -> str:
    """``"missing"``, ``"down"`` or ``"up"``: cheap enough to ask every tick while waiting for it."""
    try:
        socket.if_nametoindex(iface)
    except OSError:
        return "missing"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        return "up" if _is_up(sock, iface) else "down"


def _set_rcvbuf(sock: socket.socket, size: int) -> int:
    """Ask for a ``size``-byte receive buffer; return the size granted, bytes.

    The kernel stores (and ``getsockopt`` reports) twice the granted size, which covers its
    per-packet bookkeeping; half of it is the figure to compare with ``size``.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except PermissionError:  # no CAP_NET_ADMIN (the systemd unit): capped at net.core.rmem_max
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)) // 2


class CaptureOpenError(OSError):
    """The interface is missing, down or cannot be captured on; the message says which."""


#: Link types the decoder understands -> (tcpdump ``-y`` name, libpcap DLT value) to compile a filter for.
_LINKTYPE_DLT: dict[int, tuple[str, int]] = {
    0: ("NULL", 0),
    1: ("EN10MB", 1),
    12: ("RAW", 12),  # raw IP, as most BSDs write it
    14: ("RAW", 12),  # raw IP, as OpenBSD writes it
    101: ("RAW", 12),
    108: ("LOOP", 108),
    113: ("LINUX_SLL", 113),
    228: ("IPV4", 228),
    229: ("IPV6", 229),
    276: ("LINUX_SLL2", 276),
}


def compile_bpf(
    expr: str, iface: str | None = None, pcap: str | None = None, linktype: int | None = None
) -> list[tuple[int, int, int, int]]:
    """Compile a tcpdump filter expression to classic BPF instructions.

    For live capture (``iface``, or nothing): Ethernet frames. For replay, ``pcap``
    compiles for that capture file's own link type (``tcpdump -r FILE -ddd``: exact,
    a BSD loopback header written in the other byte order included), and
    ``linktype`` (a LINKTYPE_* value) for that link type (``tcpdump -ddd -y NAME``,
    used when no ``pcap`` is given, and by the scapy fallback). Uses tcpdump; falls
    back to scapy's ``compile_filter`` (imported only here, only when a filter is
    asked for). Raises ValueError naming the problem.
    """
    dlt = None
    if linktype is not None:
        dlt = _LINKTYPE_DLT.get(linktype)
        if dlt is None:
            raise ValueError(f"cannot compile BPF filter {expr!r} for link type {linktype}")
    tcpdump = shutil.which("tcpdump") or next(
        (p for p in ("/usr/sbin/tcpdump", "/usr/bin/tcpdump", "/sbin/tcpdump") if os.path.exists(p)),
        None,
    )
    if tcpdump:
        if pcap is not None:
            attempts = [[tcpdump, "-r", pcap if pcap != "-" else "./-", "-ddd", "--", expr]]  # "-": stdin
        elif dlt is not None:
            attempts = [[tcpdump, "-ddd", "-y", dlt[0], "--", expr]]
        else:
            attempts = [[tcpdump, "-ddd", "-y", "EN10MB", *(["-i", iface] if iface else []), expr]]
            attempts.append([tcpdump, "-ddd", expr])
        err = ""
        for cmd in attempts:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
            if proc.returncode == 0:
                return _parse_ddd(proc.stdout)
            err = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise ValueError(f"bad BPF filter {expr!r}: {err}")
    try:
        from scapy.arch.common import compile_filter
    except ImportError:
        raise ValueError("a BPF filter needs tcpdump (apt install tcpdump) or scapy") from None
    try:
        prog = compile_filter(expr, iface, linktype=dlt[1] if dlt else None)
    except Exception as exc:  # scapy raises Scapy_Exception and others; report them as one error
        raise ValueError(f"bad BPF filter {expr!r}: {exc}") from None
    n = prog.bf_len
    return [
        (prog.bf_insns[i].code, prog.bf_insns[i].jt, prog.bf_insns[i].jf, prog.bf_insns[i].k)
        for i in range(n)
    ]


def _parse_ddd(text: str) -> list[tuple[int, int, int, int]]:
    lines = [ln.split() for ln in text.strip().splitlines()]
    n = int(lines[0][0])
    insns = [(int(a), int(b), int(c), int(d)) for a, b, c, d in lines[1 : n + 1]]
    if len(insns) != n:
        raise ValueError("tcpdump -ddd output is cut short")
    return insns


class LiveCapture:
    """An open AF_PACKET socket on one interface; ``read(max_n)`` returns records without blocking.

    Frames are read through a TPACKET_V3 ring (:class:`~edge_nids.agent.ring.RxRing`,
    ``mode == "ring"``) of ``buffer_bytes``, or, with ``ring=False`` or when the kernel refuses
    the ring (logged), with one ``recvmsg`` per frame from a socket receive buffer of
    ``buffer_bytes`` (``mode == "recvmsg"``).

    ``kernel_drops``: frames the kernel dropped since open (ring or socket buffer full);
    ``kernel_packets``: frames it counted (delivered + dropped); ``kernel_freezes``: times
    the ring was found full (``tp_freeze_q_cnt``; 0 in recvmsg mode).
    ``iface``, ``ifindex``: the interface captured on.
    ``ring_bytes``: the ring the kernel granted, bytes (0 in recvmsg mode).
    ``rcvbuf_bytes``: in recvmsg mode, the receive buffer the kernel granted, bytes
    (``getsockopt(SO_RCVBUF)`` halved: the kernel doubles the size it grants for its
    bookkeeping and reports that). Without CAP_NET_ADMIN the request is capped at
    ``net.core.rmem_max``; with it, ``SO_RCVBUFFORCE`` gets the size asked for. The ring
    needs no capability beyond CAP_NET_RAW and is not capped.
    """

    def __init__(
        self,
        iface: str,
        snaplen: int = 65535,
        promiscuous: bool = True,
        bpf: list[tuple[int, int, int, int]] | None = None,
        buffer_bytes: int = 16 << 20,
        ring: bool = True,
    ) -> None:
        self.iface = iface
        self.kernel_drops = 0
        self.kernel_packets = 0
        self.kernel_freezes = 0
        self.asked_bytes = buffer_bytes
        self.ring_bytes = self.rcvbuf_bytes = 0
        self._ring: RxRing | None = None
        try:
            self.ifindex = socket.if_nametoindex(iface)
        except OSError:
            raise CaptureOpenError(errno.ENODEV, f"no such network interface: {iface}") from None
        try:
            # protocol 0: the socket sees no frame until bind() names the interface and ETH_P_ALL
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise CaptureOpenError(errno.EPERM, f"capturing on {iface} needs root or CAP_NET_RAW") from None
        try:
            if not _is_up(sock, iface):
                raise CaptureOpenError(errno.ENETDOWN, f"interface {iface} is down")
            hatype = _hatype(sock, iface)
            self.linktype = LINKTYPE_RAW if hatype in _RAW_IP_HATYPES else LINKTYPE_ETHERNET
            # loopback frames pass the socket twice (out and in): keep only the incoming copy
            self._loopback = hatype == ARPHRD_LOOPBACK
            if bpf:
                self._attach(sock, bpf)
            if ring:
                self._ring = self._open_ring(sock, snaplen, buffer_bytes)
            if self._ring is None:
                self.rcvbuf_bytes = _set_rcvbuf(sock, buffer_bytes)
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            if self._loopback:
                try:
                    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
                except OSError:
                    pass  # kernel < 4.20: read() drops the outgoing copies instead
            sock.bind((iface, ETH_P_ALL))
            if promiscuous:
                mreq = struct.pack("iHH8s", self.ifindex, PACKET_MR_PROMISC, 0, b"")
                sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            sock.setblocking(False)
        except CaptureOpenError:
            self._close_ring()
            sock.close()
            raise
        except OSError as exc:
            self._close_ring()
            sock.close()
            raise CaptureOpenError(
                exc.errno or 0, f"cannot capture on {iface}: {exc.strerror or exc}"
            ) from None
        self._sock = sock
        self._buf = bytearray(max(snaplen, 2048))
        self._view = memoryview(self._buf)
        self._snaplen = snaplen
        self._ancsize = socket.CMSG_SPACE(16)
        self.read_drops()  # start the kernel counters at zero

    @classmethod
    def from_config(
        cls, iface: str, c: CaptureConfig, bpf: list[tuple[int, int, int, int]] | None
    ) -> LiveCapture:
        """Open ``iface`` as the ``capture`` section ``c`` says (snaplen, promiscuous, buffer_mb, ring)."""
        return cls(iface, c.snaplen, c.promiscuous, bpf, c.buffer_mb << 20, c.ring)

    def _open_ring(self, sock: socket.socket, snaplen: int, size: int) -> RxRing | None:
        """The TPACKET_V3 ring, or None (logged) if the kernel refuses it: recvmsg then."""
        try:
            ring = RxRing(sock, snaplen, size, RETIRE_MS, self.linktype, self._loopback)
        except RingError as exc:
            log.warning("capture on %s: %s; reading with recvmsg instead", self.iface, exc.strerror)
            return None
        self.ring_bytes = ring.size_bytes
        return ring

    def _close_ring(self) -> None:
        if self._ring is not None:
            self._ring.close()
            self._ring = None

    @property
    def mode(self) -> str:
        """How frames are read: ``"ring"`` (TPACKET_V3) or ``"recvmsg"``."""
        return "ring" if self._ring is not None else "recvmsg"

    def describe(self) -> str:
        """The kernel buffer in use, as granted: for the log line when capture starts."""
        r = self._ring
        if r is not None:
            return (
                f"TPACKET_V3 ring {r.size_bytes >> 10} KiB: {r.block_nr} blocks of "
                f"{r.block_size >> 10} KiB, retired after {r.retire_ms} ms"
            )
        return f"recvmsg, socket receive buffer {self.rcvbuf_bytes >> 10} KiB"

    def log_open(self) -> None:
        """Log that capture started, with the buffer the kernel granted (capture.buffer_mb)."""
        log.info("capturing on %s (%s)", self.iface, self.describe())
        if self._ring is not None and self.ring_bytes < self.asked_bytes:
            log.warning(
                "capture.buffer_mb asks for %d KiB, the kernel granted a %d KiB ring "
                "(whole blocks; fewer when it is short of memory)",
                self.asked_bytes >> 10,
                self.ring_bytes >> 10,
            )
        elif self._ring is None and self.rcvbuf_bytes < self.asked_bytes:
            log.warning(
                "capture.buffer_mb asks for %d KiB, the kernel granted %d KiB: net.core.rmem_max caps it "
                "without CAP_NET_ADMIN (raise that sysctl for a larger buffer)",
                self.asked_bytes >> 10,
                self.rcvbuf_bytes >> 10,
            )

    @staticmethod
    def _attach(sock: socket.socket, insns: list[tuple[int, int, int, int]]) -> None:
        blob = b"".join(struct.pack("HBBI", *i) for i in insns)
        buf = ctypes.create_string_buffer(blob, len(blob))
        fprog = struct.pack("HP", len(insns), ctypes.addressof(buf))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self, max_n: int = 256) -> list[tuple[int, int, bytes, int]]:
        """Up to ``max_n`` waiting frames as (ts_us, linktype, frame, wire_len); [] if none.

        Raises CaptureOpenError when the interface went down or away.
        """
        if self._ring is not None:
            out = self._ring.read(max_n)
            if not out and not self._ring.ready():
                self._raise_pending_error()  # poll woke us for an error, not for frames
            return out
        out = []
        recv = self._sock.recvmsg_into
        skip = PACKET_OUTGOING if self._loopback else -1
        lt = self.linktype
        for _ in range(max_n):
            try:
                n, anc, _flags, addr = recv([self._view], self._ancsize, socket.MSG_TRUNC)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    break
                raise self._failed(exc.errno or 0) from None
            if addr[2] == skip:
                continue  # loopback frames are seen twice; keep the incoming copy (as libpcap)
            caplen = min(n, len(self._buf), self._snaplen)
            out.append((self._timestamp(anc), lt, bytes(self._view[:caplen]), n))
        return out

    def _failed(self, err: int) -> CaptureOpenError:
        return CaptureOpenError(err, f"capture on {self.iface} failed: {os.strerror(err)}")

    def _raise_pending_error(self) -> None:
        """Raise the socket's pending error (ENETDOWN when the interface went down or away), if any."""
        err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise self._failed(err)

    def drain(self) -> list[tuple[int, int, bytes, int]]:
        """The frames already captured, to read before stopping: in ring mode, also those in the
        block the kernel is filling (waits for it to be retired, at most a few retire timeouts).

        Reads at most what the buffer can hold (a frame takes 64 bytes or more of it), so a link
        that keeps sending cannot keep it reading.
        """
        out: list[tuple[int, int, bytes, int]] = []
        limit = max(self.ring_bytes, 2 * self.rcvbuf_bytes) // 64
        waited = self._ring is None
        while len(out) < limit:
            batch = self.read(min(1 << 16, limit - len(out)))
            out += batch
            if not batch:
                if waited or not self._ring or not self._ring.pending():
                    break
                select.select([self._sock], [], [], 3 * self._ring.retire_ms / 1000)
                waited = True
        return out

    def _timestamp(self, anc: list[tuple[int, int, bytes]]) -> int:
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                if len(data) >= 16:
                    sec, nsec = struct.unpack_from("qq", data)
                else:
                    sec, nsec = struct.unpack_from("ii", data)
                return sec * 1_000_000 + nsec // 1000
        import fcntl

        raw = fcntl.ioctl(self._sock.fileno(), SIOCGSTAMPNS, b"\0" * 16)
        sec, nsec = struct.unpack("qq", raw) if struct.calcsize("l") == 8 else struct.unpack("ii", raw[:8])
        return sec * 1_000_000 + nsec // 1000

    def read_drops(self) -> int:
        """Add the kernel's counters (which reset on read) to ``kernel_drops``; return the total."""
        try:  # tpacket_stats_v3 with a ring (packets, drops, freeze_q_cnt), tpacket_stats without
            raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
        except OSError:
            return self.kernel_drops
        packets, drops = struct.unpack_from("II", raw)
        self.kernel_packets += packets
        self.kernel_drops += drops
        if len(raw) >= 12:
            self.kernel_freezes += struct.unpack_from("I", raw, 8)[0]
        return self.kernel_drops

    def still_there(self) -> bool:
        """True if the interface still exists with the same index (it may have been re-created)."""
        try:
            return socket.if_nametoindex(self.iface) == self.ifindex
        except OSError:
            return False

    def gone(self) -> str | None:
        """Why capture on this interface cannot go on (gone, re-created or down); None while it can."""
        if not self.still_there():
            return f"interface {self.iface} went away"
        if not _is_up(self._sock, self.iface):
            return f"interface {self.iface} is down"
        return None

    def close(self) -> None:
        self._close_ring()  # unmapped first: the mapping holds the socket open
        self._sock.close()
