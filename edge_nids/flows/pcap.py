"""Reading capture files: classic pcap and pcapng, streamed record by record.

``open_capture(path)`` yields ``(ts_us, linktype, frame, wire_len)`` tuples:
``ts_us`` is the capture time in integer µs since the epoch, ``linktype`` the
LINKTYPE_* value of the interface, ``frame`` the captured bytes, ``wire_len``
the frame's length on the wire in bytes (>= ``len(frame)`` when the capture
was cut by a snap length).

Supported: pcap with µs (magic a1b2c3d4) or ns (a1b23c4d) timestamps in either
byte order, and pcapng (sections in either byte order, any number of interfaces
with their own link types, ``if_tsresol`` and ``if_tsoffset`` options, enhanced,
simple and obsolete packet blocks; other blocks are skipped). The file is read
in chunks, so memory does not grow with its size.

A file that is not a capture, or whose header is cut or of an unsupported
version, raises :class:`CaptureError` naming the file and the problem. A file
cut inside its last record (a capture still being written, or copied short)
ends the iteration with a logged warning, counted in ``Capture.counts``.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

__all__ = [
    "CAPTURE_SUFFIXES",
    "LINKTYPES",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_LOOP",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "LINKTYPE_RAW_BSD",
    "LINKTYPE_RAW_OPENBSD",
    "Capture",
    "CaptureError",
    "Record",
    "capture_format",
    "open_capture",
]

log = logging.getLogger(__name__)

# Link-layer header types (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0  # BSD loopback: 4-byte address family in the capturing host's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_BSD = 12  # DLT_RAW as written by most BSDs: raw IPv4/IPv6
LINKTYPE_RAW_OPENBSD = 14  # DLT_RAW on OpenBSD: raw IPv4/IPv6
LINKTYPE_RAW = 101  # raw IPv4/IPv6, version from the first nibble
LINKTYPE_LOOP = 108  # OpenBSD loopback: 4-byte address family, big-endian
LINKTYPE_LINUX_SLL = 113  # Linux cooked capture v1 (tcpdump -i any)
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276  # Linux cooked capture v2 (tcpdump -i any, libpcap >= 1.10)

#: Names of the link types the decoder understands.
LINKTYPES: dict[int, str] = {
    LINKTYPE_NULL: "NULL",
    LINKTYPE_ETHERNET: "ETHERNET",
    LINKTYPE_RAW_BSD: "RAW(12)",
    LINKTYPE_RAW_OPENBSD: "RAW(14)",
    LINKTYPE_RAW: "RAW",
    LINKTYPE_LOOP: "LOOP",
    LINKTYPE_LINUX_SLL: "LINUX_SLL",
    LINKTYPE_IPV4: "IPV4",
    LINKTYPE_IPV6: "IPV6",
    LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
}

#: One record: (ts_us, linktype, frame bytes, wire length in bytes).
Record = tuple[int, int, bytes, int]

_CHUNK = 1 << 20  # bytes read at a time
_MAX_RECORD = 1 << 18  # 256 KiB: larger captured lengths mean a corrupt file (as libpcap)
_MAX_BLOCK = 1 << 24  # 16 MiB: larger pcapng blocks mean a corrupt file

_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),  # little-endian, µs; value = ns per fraction unit
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # ns
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_BOM_LE = b"\x4d\x3c\x2b\x1a"
_BOM_BE = b"\x1a\x2b\x3c\x4d"


#: File name suffixes of captures, as tools name them (the format is told by the magic).
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")


def capture_format(head: bytes) -> str | None:
    """``"pcap"`` or ``"pcapng"`` for a file starting with ``head`` (its first 4 bytes or
    more), else None (the formats this module reads)."""
    magic = head[:4]
    if magic in _PCAP_MAGIC:
        return "pcap"
    return "pcapng" if magic == _PCAPNG_SHB else None


_BT_IDB = 1
_BT_OPB = 2  # obsolete packet block
_BT_SPB = 3
_BT_EPB = 6

_OPT_END = 0
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14


def _refill(read: Callable[[int], bytes], buf: bytes, pos: int, need: int) -> bytes:
    """``buf[pos:]`` topped up from the file to at least ``need`` bytes (fewer at end of file)."""
    buf = buf[pos:]
    while len(buf) < need:
        more = read(max(_CHUNK, need - len(buf)))
        if not more:
            break
        buf += more
    return buf


class CaptureError(ValueError):
    """A capture file that cannot be read; the message names the file and the problem."""


class _Interface:
    """A pcapng interface: link type, snap length and how to turn its timestamps into µs."""

    __slots__ = ("linktype", "offset_us", "snaplen", "units_per_s")

    def __init__(self, linktype: int, snaplen: int) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.units_per_s = 1_000_000  # default if_tsresol: 10^-6 s
        self.offset_us = 0  # if_tsoffset, in µs

    def to_us(self, ts: int) -> int:
        """Timestamp in interface units -> µs since the epoch (floored)."""
        ups = self.units_per_s
        if ups == 1_000_000:
            return ts + self.offset_us
        if ups == 1_000_000_000:
            return ts // 1000 + self.offset_us
        return ts * 1_000_000 // ups + self.offset_us


class Capture:
    """An open capture file; iterate it for records, close it (or use ``with``) when done.

    Attributes: ``path``; ``format`` ("pcap" or "pcapng"); ``linktype`` (pcap: the
    file's link type; pcapng: that of the first interface once read, else -1);
    ``records`` (records yielded so far); ``counts`` (problems that ended or
    skipped part of the file, by reason: ``truncated_record``,
    ``bad_record_length``, ``bad_block``, ``unknown_interface``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.records = 0
        self.counts: dict[str, int] = {}
        self.linktype = -1
        try:
            self._file: BinaryIO = open(self.path, "rb")  # closed by close()
        except FileNotFoundError:
            raise CaptureError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise CaptureError(f"{self.path}: is a directory, not a capture file") from None
        except OSError as exc:
            raise CaptureError(f"{self.path}: cannot open: {exc.strerror or exc}") from None
        try:
            head = self._file.read(24)
            self._head = head
            if len(head) == 0:
                raise CaptureError(f"{self.path}: empty file, not a capture")
            magic = head[:4]
            fmt = capture_format(head)
            if fmt == "pcap":
                self.format = fmt
                self._init_pcap(head)
            elif fmt == "pcapng":
                self.format = fmt
                self._init_pcapng(head)
            elif magic in (b"\xa1\xb2\xcd\x34", b"\x34\xcd\xb2\xa1"):
                raise CaptureError(
                    f"{self.path}: modified (Kuznetzov) pcap is not supported; convert it: "
                    "editcap -F pcap IN OUT"
                )
            elif head[:2] == b"\x1f\x8b":
                raise CaptureError(f"{self.path}: gzip-compressed; decompress it first (gunzip)")
            else:
                raise CaptureError(f"{self.path}: not a pcap or pcapng file (starts with 0x{magic.hex()})")
        except BaseException:
            self._file.close()
            raise
        self._iterated = False

    # -- header parsing ------------------------------------------------------------------

    def _init_pcap(self, head: bytes) -> None:
        order, ns_per_unit = _PCAP_MAGIC[head[:4]]
        if len(head) < 24:
            raise CaptureError(f"{self.path}: truncated pcap header ({len(head)} of 24 bytes)")
        major, minor, _zone, _sigfigs, snaplen, network = struct.unpack(order + "HHiIII", head[4:24])
        if major != 2:
            raise CaptureError(f"{self.path}: unsupported pcap version {major}.{minor}")
        self.byte_order = order
        self.ns_per_unit = ns_per_unit
        self.snaplen = snaplen
        # The low 16 bits are the link type; higher bits may carry FCS information.
        self.linktype = network & 0xFFFF

    def _init_pcapng(self, head: bytes) -> None:
        if len(head) < 24:
            raise CaptureError(f"{self.path}: truncated pcapng section header ({len(head)} bytes)")
        bom = head[8:12]
        if bom == _BOM_LE:
            self.byte_order = "<"
        elif bom == _BOM_BE:
            self.byte_order = ">"
        else:
            raise CaptureError(f"{self.path}: pcapng section header with bad byte-order magic")
        major, minor = struct.unpack(self.byte_order + "HH", head[12:16])
        if major != 1:
            raise CaptureError(f"{self.path}: unsupported pcapng version {major}.{minor}")

    # -- iteration -----------------------------------------------------------------------

    def __iter__(self) -> Iterator[Record]:
        if self._iterated:
            raise CaptureError(f"{self.path}: a capture can be iterated only once")
        self._iterated = True
        if self.format == "pcap":
            return self._iter_pcap()
        return self._iter_pcapng()

    def _problem(self, reason: str, message: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        log.warning("%s: %s", self.path, message)

    def _iter_pcap(self) -> Iterator[Record]:
        read = self._file.read
        unpack_from = struct.Struct(self.byte_order + "IIII").unpack_from
        linktype = self.linktype
        ns_unit = self.ns_per_unit == 1  # ns timestamps
        buf = self._head[24:] + read(_CHUNK)
        end = len(buf)
        pos = 0
        n = 0
        try:
            while True:
                if end - pos < 16:
                    buf = _refill(read, buf, pos, 16)
                    pos = 0
                    end = len(buf)
                    if end < 16:
                        if end:
                            self._problem(
                                "truncated_record",
                                f"file ends inside a record header after {n} records",
                            )
                        return
                sec, frac, incl, orig = unpack_from(buf, pos)
                if incl > _MAX_RECORD:
                    self._problem(
                        "bad_record_length",
                        f"record {n + 1} claims {incl} captured bytes; stopping (corrupt file?)",
                    )
                    return
                start = pos + 16
                stop = start + incl
                if stop > end:
                    buf = _refill(read, buf, pos, incl + 16)
                    pos = 0
                    end = len(buf)
                    start = 16
                    stop = 16 + incl
                    if stop > end:
                        self._problem(
                            "truncated_record",
                            f"file ends inside record {n + 1} ({end - 16} of {incl} bytes)",
                        )
                        return
                pos = stop
                n += 1
                yield (
                    sec * 1_000_000 + (frac // 1000 if ns_unit else frac),
                    linktype,
                    buf[start:stop],
                    orig,
                )
        finally:
            self.records += n

    def _iter_pcapng(self) -> Iterator[Record]:
        read = self._file.read
        buf = self._head + read(_CHUNK)
        end = len(buf)
        pos = 0
        order = self.byte_order
        hdr = struct.Struct(order + "II").unpack_from
        epb = struct.Struct(order + "IIIII").unpack_from
        interfaces: list[_Interface] = []
        n = 0
        try:
            while True:
                if end - pos < 12:
                    buf = _refill(read, buf, pos, 12)
                    pos = 0
                    end = len(buf)
                    if end < 12:
                        if end:
                            self._problem(
                                "truncated_record", f"file ends inside a block header after {n} records"
                            )
                        return
                if buf[pos : pos + 4] == _PCAPNG_SHB:
                    # A new section may switch byte order; its interfaces start afresh.
                    bom = buf[pos + 8 : pos + 12]
                    if bom not in (_BOM_LE, _BOM_BE):
                        self._problem(
                            "bad_block", f"section header with bad byte-order magic after {n} records"
                        )
                        return
                    order = "<" if bom == _BOM_LE else ">"
                    hdr = struct.Struct(order + "II").unpack_from
                    epb = struct.Struct(order + "IIIII").unpack_from
                    interfaces = []
                btype, blen = hdr(buf, pos)
                if blen < 12 or blen % 4 or blen > _MAX_BLOCK:
                    self._problem("bad_block", f"block of length {blen} after {n} records; stopping")
                    return
                if end - pos < blen:
                    buf = _refill(read, buf, pos, blen)
                    pos = 0
                    end = len(buf)
                    if end < blen:
                        self._problem("truncated_record", f"file ends inside a block ({end} of {blen} bytes)")
                        return
                body = pos + 8
                bend = pos + blen - 4
                pos += blen
                if btype == _BT_EPB:
                    if bend - body < 20:
                        self._problem("bad_block", "enhanced packet block too short; skipped")
                        continue
                    ifid, hi, lo, caplen, orig = epb(buf, body)
                    if ifid >= len(interfaces):
                        self._count_unknown_interface(ifid)
                        continue
                    start = body + 20
                    if caplen > bend - start:
                        self._problem("bad_block", "packet longer than its block; skipped")
                        continue
                    iface = interfaces[ifid]
                    n += 1
                    yield (iface.to_us((hi << 32) | lo), iface.linktype, buf[start : start + caplen], orig)
                elif btype == _BT_IDB:
                    interfaces.append(self._parse_idb(buf, body, bend, order))
                    if self.linktype < 0:
                        self.linktype = interfaces[0].linktype
                elif btype == _BT_SPB:
                    if not interfaces:
                        self._count_unknown_interface(0)
                        continue
                    (orig,) = struct.unpack_from(order + "I", buf, body)
                    iface = interfaces[0]
                    caplen = min(orig, bend - body - 4)
                    if iface.snaplen:
                        caplen = min(caplen, iface.snaplen)
                    # Simple packet blocks carry no timestamp: 0 µs, as Wireshark shows.
                    n += 1
                    yield (0, iface.linktype, buf[body + 4 : body + 4 + caplen], orig)
                elif btype == _BT_OPB:
                    if bend - body < 20:
                        self._problem("bad_block", "packet block too short; skipped")
                        continue
                    ifid, _drops, hi, lo, caplen, orig = struct.unpack_from(order + "HHIIII", buf, body)
                    if ifid >= len(interfaces):
                        self._count_unknown_interface(ifid)
                        continue
                    start = body + 20
                    if caplen > bend - start:
                        self._problem("bad_block", "packet longer than its block; skipped")
                        continue
                    iface = interfaces[ifid]
                    n += 1
                    yield (iface.to_us((hi << 32) | lo), iface.linktype, buf[start : start + caplen], orig)
                # Any other block (SHB handled above, name resolution, statistics,
                # custom, decryption secrets ...) carries no packets: skipped.
        finally:
            self.records += n

    def _count_unknown_interface(self, ifid: int) -> None:
        self.counts["unknown_interface"] = self.counts.get("unknown_interface", 0) + 1
        if self.counts["unknown_interface"] == 1:
            log.warning("%s: packet for undeclared interface %d skipped", self.path, ifid)

    def _parse_idb(self, buf: bytes, body: int, bend: int, order: str) -> _Interface:
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", buf, body)
        iface = _Interface(linktype, snaplen)
        opt = body + 8
        while opt + 4 <= bend:
            code, olen = struct.unpack_from(order + "HH", buf, opt)
            if code == _OPT_END:
                break
            value = buf[opt + 4 : opt + 4 + olen]
            if code == _OPT_IF_TSRESOL and olen >= 1:
                res = value[0]
                iface.units_per_s = 2 ** (res & 0x7F) if res & 0x80 else 10**res
            elif code == _OPT_IF_TSOFFSET and olen >= 8:
                (seconds,) = struct.unpack_from(order + "q", value)
                iface.offset_us = seconds * 1_000_000
            opt += 4 + ((olen + 3) & ~3)
        return iface

    # -- resource handling -----------------------------------------------------------------

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._file.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Capture({str(self.path)!r}, format={self.format!r}, linktype={self.linktype})"


def open_capture(path: str | os.PathLike[str]) -> Capture:
    """Open a pcap or pcapng file; iterate the result for ``(ts_us, linktype, frame, wire_len)``.

    Raises :class:`CaptureError` (a ``ValueError``) naming the file when it is
    missing, unreadable, not a capture, or has a cut or unsupported header.
    """
    return Capture(path)
