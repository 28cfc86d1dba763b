"""Check a lab capture against its labels file (standard library only).

Reads classic pcap files (both byte orders, µs or ns timestamps; Ethernet or
Linux cooked linktypes) far enough to get each IPv4 packet's time and
addresses, then reports per label row how many packets between its attacker and
victim fall in its window, and how many packets touch an attacker address
outside every window (these would be mislabelled BENIGN).

``python -m lab.pcapcheck LABELS.csv CAPTURE.pcap [...]`` prints the report and
exits 1 when a row matches no packet in any capture or attacker traffic lies
outside the windows.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab.labels import LabelError, LabelRow, read_labels

__all__ = [
    "CaptureStats",
    "LabelCheck",
    "PcapFormatError",
    "capture_stats",
    "check_labels",
    "iter_ipv4",
    "main",
]

_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_ETHERNET, _RAW, _LINUX_SLL = 1, 101, 113


class PcapFormatError(ValueError):
    """The file is not a classic pcap this checker understands; the message names it."""


def _iter_records(path: Path) -> Iterator[tuple[float, int, bytes, int]]:
    """Yield ``(ts_s, linktype, captured_bytes, wire_len)`` for every record."""
    with open(path, "rb") as fh:
        head = fh.read(24)
        if len(head) < 24 or head[:4] not in _MAGIC:
            raise PcapFormatError(f"{path}: not a classic pcap file (pcapng is not supported here)")
        order, unit = _MAGIC[head[:4]]
        linktype = struct.unpack(order + "I", head[20:24])[0] & 0x0FFFFFFF
        rec = struct.Struct(order + "IIII")
        while True:
            hdr = fh.read(16)
            if not hdr:
                return
            if len(hdr) < 16:
                raise PcapFormatError(f"{path}: truncated record header")
            sec, frac, incl, orig = rec.unpack(hdr)
            data = fh.read(incl)
            if len(data) < incl:
                raise PcapFormatError(f"{path}: truncated record data")
            yield sec + frac * unit, linktype, data, orig


def iter_ipv4(path: Path) -> Iterator[tuple[float, str, str, int]]:
    """Yield ``(ts_s, src, dst, proto)`` for every IPv4 packet of a pcap (others skipped)."""
    for ts, linktype, data, _ in _iter_records(path):
        if linktype == _ETHERNET:
            off, etype = 14, data[12:14]
            while etype in (b"\x81\x00", b"\x88\xa8") and len(data) >= off + 4:
                etype, off = data[off + 2 : off + 4], off + 4
        elif linktype == _LINUX_SLL:
            off, etype = 16, data[14:16]
        elif linktype == _RAW:
            off, etype = 0, b"\x08\x00"
        else:
            raise PcapFormatError(f"{path}: unsupported linktype {linktype}")
        if etype != b"\x08\x00" or len(data) < off + 20 or data[off] >> 4 != 4:
            continue
        src = socket.inet_ntoa(data[off + 12 : off + 16])
        dst = socket.inet_ntoa(data[off + 16 : off + 20])
        yield ts, src, dst, data[off + 9]


@dataclass
class CaptureStats:
    """Packet count, span (s) and size (bytes) of a capture."""

    packets: int = 0
    first: float = 0.0
    last: float = 0.0
    bytes_on_disk: int = 0

    @property
    def duration(self) -> float:
        """Seconds from the first to the last packet."""
        return max(0.0, self.last - self.first)


def capture_stats(path: Path) -> CaptureStats:
    """Count every record of a pcap and its time span."""
    stats = CaptureStats(bytes_on_disk=Path(path).stat().st_size)
    for ts, _, _, _ in _iter_records(Path(path)):
        if stats.packets == 0:
            stats.first = ts
        stats.packets += 1
        stats.last = ts
    return stats


@dataclass
class LabelCheck:
    """How a capture's IPv4 packets fall relative to its label windows."""

    per_row: list[tuple[LabelRow, int]] = field(default_factory=list)
    outside: int = 0
    """Packets that touch an attacker address of some row but lie in no window."""
    other: int = 0
    """Packets matched by no row (benign traffic)."""

    @property
    def ok(self) -> bool:
        """Every row matched at least one packet and no attacker traffic lies outside the windows."""
        return self.outside == 0 and all(n > 0 for _, n in self.per_row)


def check_labels(path: Path, rows: Sequence[LabelRow]) -> LabelCheck:
    """Match every IPv4 packet of ``path`` against ``rows`` (see the module docstring)."""
    counts = [0] * len(rows)
    attackers = {r.attacker for r in rows}
    result = LabelCheck()
    for ts, src, dst, _ in iter_ipv4(Path(path)):
        hit = False
        for i, row in enumerate(rows):
            if row.covers(ts, src, dst):
                counts[i] += 1
                hit = True
        if not hit:
            if src in attackers or dst in attackers:
                result.outside += 1
            else:
                result.other += 1
    result.per_row = list(zip(rows, counts, strict=True))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: check captures against one labels file; exit 1 when inconsistent."""
    parser = argparse.ArgumentParser(prog="python -m lab.pcapcheck", description=__doc__.splitlines()[0])
    parser.add_argument("labels", type=Path, help="labels CSV (scenario,label,attacker,victim,start,end)")
    parser.add_argument("captures", type=Path, nargs="+", help="pcap files of the same lab run")
    args = parser.parse_args(argv)
    try:
        rows = read_labels(args.labels)
        totals = [0] * len(rows)
        outside = 0
        for path in args.captures:
            stats = capture_stats(path)
            check = check_labels(path, rows)
            outside += check.outside
            totals = [t + n for t, (_, n) in zip(totals, check.per_row, strict=True)]
            print(
                f"{path}: {stats.packets} packets, {stats.duration:.1f} s, {stats.bytes_on_disk} bytes; "
                f"benign {check.other}, attack {sum(n for _, n in check.per_row)}, "
                f"attacker packets outside windows {check.outside}"
            )
    except (LabelError, PcapFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"{'scenario':<16} {'label':<16} {'attacker':<15} {'victim':<15} {'window s':>8} {'packets':>8}")
    for row, n in zip(rows, totals, strict=True):
        print(
            f"{row.scenario:<16} {row.label:<16} {row.attacker:<15} {row.victim:<15} "
            f"{row.end - row.start:>8.1f} {n:>8}"
        )
    return 0 if outside == 0 and all(totals) else 1


if __name__ == "__main__":
    sys.exit(main())
