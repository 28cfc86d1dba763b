"""Tiny deterministic pcap writer for agent tests (Ethernet/IPv4/TCP|UDP built by hand, no scapy)."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from pathlib import Path

__all__ = ["ACK", "FIN", "PSH", "RST", "SYN", "ipv4_tcp", "ipv4_udp", "write_pcap"]

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_ETH = bytes.fromhex("0200000000020200000000010800")


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _ipv4(src: str, dst: str, proto: int, l4: bytes, ttl: int = 64) -> bytes:
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(l4),
        1,
        0x4000,
        ttl,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    hdr = hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:]
    return _ETH + hdr + l4


def ipv4_tcp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    flags: int,
    payload: bytes = b"",
    seq: int = 1000,
    ack: int = 0,
    window: int = 64240,
) -> bytes:
    """One Ethernet frame with an IPv4/TCP packet (20-byte TCP header)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, window, 0, 0) + payload
    return _ipv4(src, dst, 6, tcp)


def ipv4_udp(src: str, dst: str, sport: int, dport: int, payload: bytes = b"") -> bytes:
    """One Ethernet frame with an IPv4/UDP datagram."""
    return _ipv4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)


def write_pcap(path: Path, frames: Iterable[tuple[int, bytes]]) -> int:
    """Write (ts_us, frame) pairs as a classic µs pcap (LINKTYPE_ETHERNET); returns the frame count."""
    n = 0
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts_us, frame in frames:
            f.write(struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(frame), len(frame)))
            f.write(frame)
            n += 1
    return n
