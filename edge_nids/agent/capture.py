"""Live capture from a Linux AF_PACKET raw socket (standard library only).

Frames come with kernel timestamps (``SO_TIMESTAMPNS`` ancillary data, the
packet's arrival time, not the wall clock when Python got round to it), as the
same ``(ts_us, linktype, frame, wire_len)`` records that
:func:`edge_nids.flows.pcap.open_capture` yields, so live capture and pcap
replay share one code path. Promiscuous mode uses ``PACKET_ADD_MEMBERSHIP``
(undone by the kernel when the socket closes); kernel drops come from
``PACKET_STATISTICS``; an optional BPF filter is compiled by ``tcpdump -ddd``
(or scapy's ``compile_filter`` if tcpdump is missing) and attached with
``SO_ATTACH_FILTER`` before the socket is bound, so no unfiltered frame slips in.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import socket
import struct
import subprocess

__all__ = ["CaptureOpenError", "LiveCapture", "compile_bpf", "interface_state"]

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
IFF_UP = 0x1
SO_TIMESTAMPNS = 35  # SO_TIMESTAMPNS_OLD; also SCM_TIMESTAMPNS
SIOCGSTAMPNS = 0x8907

ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
# Device types that deliver a raw IP packet with no link header (tun, PPP, IP-in-IP, WireGuard).
_RAW_IP_HATYPES = frozenset((65534, 512, 768, 776, 778))


def _is_loopback(iface: str) -> bool:
    try:
        with open(f"/sys/class/net/{iface}/type") as f:
            return int(f.read().strip()) == ARPHRD_LOOPBACK
    except (OSError, ValueError):
        return False


def _is_up(sock: socket.socket, iface: str) -> bool:
    """True if ``iface`` is administratively up (IFF_UP), asked through ``sock``'s network namespace."""
    import fcntl

    try:
        raw = fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, struct.pack("16s16x", iface.encode()[:15]))
    except OSError:
        return False  # gone meanwhile
    return bool(struct.unpack_from("16sH", raw)[1] & IFF_UP)


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

    ``kernel_drops``: frames the kernel dropped since open (socket buffer full).
    ``iface``, ``ifindex``: the interface captured on.
    ``rcvbuf_bytes``: the receive buffer the kernel granted, bytes (``getsockopt(SO_RCVBUF)``
    halved: the kernel doubles the size it grants for its bookkeeping and reports that). Without
    CAP_NET_ADMIN the request is capped at ``net.core.rmem_max``; with it, ``SO_RCVBUFFORCE``
    gets the size asked for.
    """

    def __init__(
        self,
        iface: str,
        snaplen: int = 65535,
        promiscuous: bool = True,
        bpf: list[tuple[int, int, int, int]] | None = None,
        buffer_bytes: int = 8 << 20,
    ) -> None:
        self.iface = iface
        self.kernel_drops = 0
        self.kernel_packets = 0
        try:
            self.ifindex = socket.if_nametoindex(iface)
        except OSError:
            raise CaptureOpenError(errno.ENODEV, f"no such network interface: {iface}") from None
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError:
            raise CaptureOpenError(errno.EPERM, f"capturing on {iface} needs root or CAP_NET_RAW") from None
        try:
            if not _is_up(sock, iface):
                raise CaptureOpenError(errno.ENETDOWN, f"interface {iface} is down")
            self.rcvbuf_bytes = _set_rcvbuf(sock, buffer_bytes)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            if bpf:
                self._attach(sock, bpf)
            sock.bind((iface, ETH_P_ALL))
            if _is_loopback(iface):
                # loopback frames pass the socket twice (out and in): keep only the incoming copy
                try:
                    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
                except OSError:
                    pass  # kernel < 4.20: read() drops the outgoing copies instead
            if promiscuous:
                mreq = struct.pack("iHH8s", self.ifindex, PACKET_MR_PROMISC, 0, b"")
                sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            sock.setblocking(False)
        except CaptureOpenError:
            sock.close()
            raise
        except OSError as exc:
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
        out: list[tuple[int, int, bytes, int]] = []
        recv = self._sock.recvmsg_into
        for _ in range(max_n):
            try:
                n, anc, _flags, addr = recv([self._view], self._ancsize, socket.MSG_TRUNC)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    break
                raise CaptureOpenError(
                    exc.errno or 0, f"capture on {self.iface} failed: {exc.strerror}"
                ) from None
            hatype, pkttype = addr[3], addr[2]
            if hatype == ARPHRD_LOOPBACK and pkttype == PACKET_OUTGOING:
                continue  # loopback frames are seen twice; keep the incoming copy (as libpcap)
            ts_us = self._timestamp(anc)
            caplen = min(n, len(self._buf), self._snaplen)
            linktype = LINKTYPE_RAW if hatype in _RAW_IP_HATYPES else LINKTYPE_ETHERNET
            out.append((ts_us, linktype, bytes(self._view[:caplen]), n))
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
        try:
            raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        except OSError:
            return self.kernel_drops
        packets, drops = struct.unpack("II", raw)
        self.kernel_packets += packets
        self.kernel_drops += drops
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
        self._sock.close()
