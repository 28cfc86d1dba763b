"""A TPACKET_V3 receive ring on an AF_PACKET socket (standard library only).

The kernel writes captured frames straight into memory shared with the process
(``PACKET_RX_RING``, then ``mmap`` of the socket): blocks of ``block_size`` bytes,
each holding many frames back to back (``tpacket3_hdr``, ``sockaddr_ll``, the frame),
~144 bytes for a 54-byte SYN where the socket receive buffer charges each queued
frame its skb truesize (~700+ bytes). A block is handed to the reader
(``TP_STATUS_USER``) when it is full or when ``retire_ms`` passed since it was
opened with a frame in it; the reader walks it and gives it back
(``TP_STATUS_KERNEL``). ``poll``/``select`` on the socket says readable while a
retired block waits. When every block is held by the reader the kernel drops
frames (counted by ``PACKET_STATISTICS``, with ``tp_freeze_q_cnt``) until one is
given back. Model: libpcap ``pcap-linux.c`` (``create_ring``, ``pcap_read_linux_mmap_v3``)
and the kernel's ``Documentation/networking/packet_mmap.rst``.
"""

from __future__ import annotations

import errno
import mmap
import socket
import struct

__all__ = ["RingError", "RxRing", "block_size_for"]

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_VERSION = 10
TPACKET_V1 = 0
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
PACKET_OUTGOING = 4

# tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1: block_status, num_pkts,
# offset_to_first_pkt (blk_len, seq_num and the first/last timestamps follow, unused)
_BLOCK = struct.Struct("=12xII")  # num_pkts, offset_to_first_pkt
_STATUS_AT = 8
_STATUS = struct.Struct("=I")
# tpacket3_hdr: tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len, (tp_status), tp_mac, ...;
# the sockaddr_ll follows at TPACKET_ALIGN(48): its sll_pkttype is byte 48 + 10
_PACKET = struct.Struct("=IIIII4xH32xB")
_REQ3 = struct.Struct("=7I")  # tpacket_req3
#: Bytes a block needs besides one frame: its 48-byte descriptor, then the packet's
#: tpacket3_hdr, sockaddr_ll and alignment before the link header (tp_mac: 82 for Ethernet).
_OVERHEAD = 48 + 96


class RingError(OSError):
    """The kernel refused the ring (too old, out of memory, mmap refused); the message says why."""


def block_size_for(snaplen: int) -> int:
    """Ring block size for ``snaplen``-byte frames: the smallest power-of-two multiple of the page
    size that holds one whole frame (131,072 bytes for the default 65,535), bytes."""
    size = mmap.PAGESIZE
    while size < snaplen + _OVERHEAD:
        size <<= 1
    return size


class RxRing:
    """A TPACKET_V3 ring set up on ``sock`` (before it is bound): ``read`` walks the retired blocks.

    ``block_size``, ``block_nr``: the ring the kernel granted (``size_bytes`` rounded down to
    whole blocks, at least 2; fewer blocks if the kernel is short of memory).
    ``retire_ms``: a block that holds a frame is handed over at the latest this long after it
    was opened, so frames of a quiet link show up without waiting for a full block.
    Records are ``(ts_us, linktype, frame, wire_len)``; frames are cut at ``snaplen``;
    ``skip_outgoing`` drops frames the host sent (the loopback device shows each frame twice).
    """

    def __init__(
        self,
        sock: socket.socket,
        snaplen: int,
        size_bytes: int,
        retire_ms: int,
        linktype: int,
        skip_outgoing: bool = False,
    ) -> None:
        self.block_size = block_size_for(snaplen)
        self.snaplen = snaplen
        self.linktype = linktype
        self.skip_outgoing = skip_outgoing
        self.retire_ms = retire_ms
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        except OSError as exc:
            raise RingError(exc.errno or 0, f"TPACKET_V3 is not available: {exc.strerror or exc}") from None
        nr = max(2, size_bytes // self.block_size)
        try:
            self.block_nr = self._request(sock, nr)
            try:
                self._mm = mmap.mmap(sock.fileno(), self.block_nr * self.block_size, mmap.MAP_SHARED)
            except OSError:
                sock.setsockopt(SOL_PACKET, PACKET_RX_RING, _REQ3.pack(0, 0, 0, 0, 0, 0, 0))  # free it
                raise
        except OSError as exc:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V1)  # the socket reads as before
            what = f"{nr * self.block_size >> 10} KiB ring"
            raise RingError(exc.errno or 0, f"cannot set up a {what}: {exc.strerror or exc}") from None
        self.size_bytes = self.block_nr * self.block_size
        self._block = 0  # the next block to read
        self._left = 0  # frames of that block not read yet (0: it is not being read)
        self._off = 0  # where its next frame starts in the ring, bytes

    def _request(self, sock: socket.socket, nr: int) -> int:
        """PACKET_RX_RING for ``nr`` blocks, 5 % fewer at each ENOMEM (as libpcap); blocks granted."""
        while True:
            req = _REQ3.pack(self.block_size, nr, self.block_size, nr, self.retire_ms, 0, 0)
            try:
                sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
                return nr
            except OSError as exc:
                if exc.errno != errno.ENOMEM or nr <= 2:
                    raise
                nr = max(2, nr - max(1, nr // 20))

    def ready(self) -> bool:
        """True if a retired block is waiting (or being read)."""
        if self._left:
            return True
        status = _STATUS.unpack_from(self._mm, self._block * self.block_size + _STATUS_AT)[0]
        return bool(status & TP_STATUS_USER)

    def pending(self) -> bool:
        """True if the block the kernel fills now holds frames it has not handed over yet."""
        base = self._block * self.block_size
        if _STATUS.unpack_from(self._mm, base + _STATUS_AT)[0] & TP_STATUS_USER:
            return False
        return _BLOCK.unpack_from(self._mm, base)[0] > 0

    def read(self, max_n: int) -> list[tuple[int, int, bytes, int]]:
        """Up to ``max_n`` frames from the retired blocks, oldest first; [] if none is waiting.

        A block is given back to the kernel as soon as its last frame is read. The kernel
        writes a block's frames and counts, then (``smp_wmb``) its status; the reader must
        load the status before them. libpcap does that with an acquire load
        (``__atomic_load_n(..., __ATOMIC_ACQUIRE)``), which Python cannot issue. So the
        status is read alone, and the counts it guards (``num_pkts``, the first frame's
        offset) by a second, separate read only once it says the block is ours, and every
        frame read depends on offsets from those: on x86 loads are not reordered with
        loads; on arm64 the two reads are one interpreted branch and one C call apart,
        hundreds of instructions, more than the reorder window of a Pi's Cortex-A72 or
        -A76 (128 entries). Not an architectural guarantee; reading the counts in the same
        12-byte read as the status would let the CPU serve them first, from before the
        kernel's last frames.
        """
        out: list[tuple[int, int, bytes, int]] = []
        mm = self._mm
        unpack = _PACKET.unpack_from
        lt, snap = self.linktype, self.snaplen
        skip = PACKET_OUTGOING if self.skip_outgoing else -1
        left, off = self._left, self._off
        while len(out) < max_n:
            if not left:
                base = self._block * self.block_size
                if not _STATUS.unpack_from(mm, base + _STATUS_AT)[0] & TP_STATUS_USER:
                    break
                n, first = _BLOCK.unpack_from(mm, base)  # only now: see the docstring
                if not n:
                    self._release()
                    continue
                left, off = n, base + first
            nxt, sec, nsec, caplen, wire, mac, pkttype = unpack(mm, off)
            if pkttype != skip:
                start = off + mac
                out.append((sec * 1_000_000 + nsec // 1000, lt, mm[start : start + min(caplen, snap)], wire))
            off += nxt
            left -= 1
            if not left:
                self._release()
        self._left, self._off = left, off
        return out

    def _release(self) -> None:
        _STATUS.pack_into(self._mm, self._block * self.block_size + _STATUS_AT, TP_STATUS_KERNEL)
        self._block = (self._block + 1) % self.block_nr

    def close(self) -> None:
        """Unmap the ring (before the socket is closed: the kernel frees it with the socket)."""
        self._mm.close()
