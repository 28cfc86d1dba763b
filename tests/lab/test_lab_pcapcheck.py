"""The lab's minimal pcap reader and label check, on hand-built captures."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest

from lab.labels import LabelRow
from lab.pcapcheck import PcapFormatError, capture_stats, check_labels, iter_ipv4


def _frame(src: str, dst: str, proto: int = 6, vlan: bool = False) -> bytes:
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst)
    )
    tag = b"\x81\x00\x00\x05" if vlan else b""
    return b"\x02" * 6 + b"\x04" * 6 + tag + b"\x08\x00" + ip + bytes(20)


def _arp() -> bytes:
    return b"\xff" * 6 + b"\x04" * 6 + b"\x08\x06" + bytes(28)


def _pcap(path: Path, records: list[tuple[float, bytes]], order: str = "<", nano: bool = False) -> Path:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
    for ts, data in records:
        sec = int(ts)
        frac = round((ts - sec) * (1e9 if nano else 1e6))
        out += struct.pack(order + "IIII", sec, frac, len(data), len(data)) + data
    path.write_bytes(out)
    return path


RECORDS = [
    (100.25, _frame("203.0.113.5", "192.0.2.10")),
    (101.0, _arp()),
    (102.5, _frame("198.51.100.66", "192.0.2.10", vlan=True)),
    (103.75, _frame("192.0.2.10", "198.51.100.66", proto=17)),
    (110.0, _frame("192.0.2.10", "198.51.100.66")),
]


@pytest.mark.parametrize(("order", "nano"), [("<", False), (">", False), ("<", True), (">", True)])
def test_reader_handles_byte_orders_and_resolutions(tmp_path: Path, order: str, nano: bool) -> None:
    path = _pcap(tmp_path / "x.pcap", RECORDS, order, nano)
    got = list(iter_ipv4(path))
    assert [(round(t, 6), s, d, p) for t, s, d, p in got] == [
        (100.25, "203.0.113.5", "192.0.2.10", 6),
        (102.5, "198.51.100.66", "192.0.2.10", 6),
        (103.75, "192.0.2.10", "198.51.100.66", 17),
        (110.0, "192.0.2.10", "198.51.100.66", 6),
    ]
    stats = capture_stats(path)
    assert stats.packets == 5 and stats.duration == pytest.approx(9.75)


def test_check_counts_window_hits_and_attacker_packets_outside(tmp_path: Path) -> None:
    path = _pcap(tmp_path / "x.pcap", RECORDS)
    row = LabelRow("nmap_syn", "PortScan", "198.51.100.66", "192.0.2.10", 102.0, 104.0)
    check = check_labels(path, [row])
    assert check.per_row == [(row, 2)]
    assert check.outside == 1  # the packet at 110.0 s
    assert check.other == 1  # the benign client packet; ARP is not IPv4
    assert not check.ok
    wide = LabelRow("nmap_syn", "PortScan", "198.51.100.66", "192.0.2.10", 102.0, 110.0)
    assert check_labels(path, [wide]).ok


def test_reader_rejects_other_formats(tmp_path: Path) -> None:
    ng = tmp_path / "x.pcapng"
    ng.write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(40))
    with pytest.raises(PcapFormatError, match="not a classic pcap"):
        list(iter_ipv4(ng))
    cut = _pcap(tmp_path / "cut.pcap", RECORDS)
    cut.write_bytes(cut.read_bytes()[:-10])
    with pytest.raises(PcapFormatError, match="truncated"):
        list(iter_ipv4(cut))
