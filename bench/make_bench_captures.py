"""Write the synthetic benchmark captures (SYN flood, port scan, HTTP flood, long flows) as pcap.

Frames are Ethernet/IPv4/TCP built with scapy once per shape and patched per
packet (addresses, ports, sequence numbers), so ~100k packets take about a second.
Usage: ``python bench/make_bench_captures.py OUT_DIR [--packets N]``.
"""

from __future__ import annotations

import argparse
import random
import struct
from pathlib import Path

__all__ = ["make_all", "write_pcap"]

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def _template(flags: str, payload: bytes = b"") -> bytearray:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    pkt = (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / TCP(sport=1234, dport=80, flags=flags, window=64240)
    )
    if payload:
        pkt = pkt / payload
    return bytearray(bytes(pkt))


def _patch(frame: bytearray, src: int, dst: int, sport: int, dport: int, seq: int) -> bytes:
    struct.pack_into("!II", frame, 26, src, dst)
    struct.pack_into("!HHI", frame, 34, sport, dport, seq)
    return bytes(frame)  # checksums are not verified by any of the tools


def write_pcap(path: Path, records: list[tuple[int, bytes]]) -> None:
    """Write (ts_us, frame) records as a little-endian µs pcap (Ethernet)."""
    with open(path, "wb") as f:
        f.write(_PCAP_HEADER)
        for ts, frame in records:
            n = len(frame)
            f.write(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, n, n))
            f.write(frame)


def syn_flood(n: int, t0: int = 1_700_000_000_000_000) -> list[tuple[int, bytes]]:
    """n SYNs from random spoofed sources to one server port, 10 µs apart: ~n one-packet flows."""
    rng = random.Random(1)
    syn = _template("S")
    victim = 0x0A000002
    return [
        (
            t0 + i * 10,
            _patch(syn, rng.getrandbits(32) | 0x01000000, victim, rng.randrange(1024, 65536), 80, i),
        )
        for i in range(n)
    ]


def syn_flood_answered(n: int, t0: int = 1_700_000_000_000_000) -> list[tuple[int, bytes]]:
    """The lab's SYN flood shape (hping3 -S from one host): each SYN from a new source port
    is answered by SYN-ACK and reset by the attacker's kernel, 3 packets per flow, n/3 flows."""
    syn, synack, rst = _template("S"), _template("SA"), _template("R")
    a, b = 0x0A000042, 0x0A000002
    out = []
    for i in range(n // 3):
        sport = 1024 + i % 64000
        ts = t0 + i * 60
        out.append((ts, _patch(syn, a, b, sport, 80, i)))
        out.append((ts + 15, _patch(synack, b, a, 80, sport, 0)))
        out.append((ts + 30, _patch(rst, a, b, sport, 80, i + 1)))
    return out


def port_scan(n: int, t0: int = 1_700_000_000_000_000) -> list[tuple[int, bytes]]:
    """SYN to successive ports, each answered by RST-ACK: n/2 two-packet flows."""
    syn, rst = _template("S"), _template("RA")
    a, b = 0x0A000001, 0x0A000002
    out = []
    for i in range(n // 2):
        port = 1 + i % 65535
        sport = 40000 + (i // 65535)
        ts = t0 + i * 20
        out.append((ts, _patch(syn, a, b, sport, port, i)))
        out.append((ts + 5, _patch(rst, b, a, port, sport, 0)))
    return out


def long_flows(n: int, flows: int = 8, t0: int = 1_700_000_000_000_000) -> list[tuple[int, bytes]]:
    """A few long TCP connections exchanging data and ACKs, 100 µs apart (n packets)."""
    data, ack = _template("PA", b"x" * 1200), _template("A")
    a, b = 0x0A000001, 0x0A000002
    out = []
    for i in range(n):
        k = i % flows
        ts = t0 + i * 100
        if (i // flows) % 2 == 0:
            out.append((ts, _patch(data, a, b, 50000 + k, 443, i)))
        else:
            out.append((ts, _patch(ack, b, a, 443, 50000 + k, i)))
    return out


def http_flood(n: int, t0: int = 1_700_000_000_000_000) -> list[tuple[int, bytes]]:
    """Short HTTP connections from one client, one after another (handshake, GET, 1 KB page,
    FIN both ways, last ACK: 9 packets each, 50 µs apart): n/9 flows closed by FIN."""
    c, s = 0x0A000001, 0x0A000002
    steps = [  # (template, client -> server)
        (_template("S"), True),
        (_template("SA"), False),
        (_template("A"), True),
        (_template("PA", b"GET / HTTP/1.1\r\nHost: victim\r\n\r\n"), True),
        (_template("PA", b"x" * 1000), False),
        (_template("FA"), True),
        (_template("A"), False),
        (_template("FA"), False),
        (_template("A"), True),
    ]
    out = []
    for i in range(n):
        conn, step = divmod(i, len(steps))
        frame, to_server = steps[step]
        sport = 1024 + conn % 64000
        ts = t0 + i * 50
        if to_server:
            out.append((ts, _patch(frame, c, s, sport, 80, i)))
        else:
            out.append((ts, _patch(frame, s, c, 80, sport, i)))
    return out


def make_all(out_dir: Path, packets: int = 100_000) -> list[Path]:
    """Write syn_flood.pcap, syn_flood_answered.pcap, port_scan.pcap, http_flood.pcap and
    long_flows.pcap into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fn in (
        ("syn_flood", syn_flood),
        ("syn_flood_answered", syn_flood_answered),
        ("port_scan", port_scan),
        ("http_flood", http_flood),
        ("long_flows", long_flows),
    ):
        path = out_dir / f"{name}.pcap"
        if not path.exists():
            write_pcap(path, fn(packets))
        paths.append(path)
    return paths


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--packets", type=int, default=100_000)
    a = ap.parse_args()
    for p in make_all(a.out_dir, a.packets):
        print(p)
