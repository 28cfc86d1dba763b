"""Hand-built packets for flow table and feature tests."""

from __future__ import annotations

import ipaddress

from edge_nids.flows.packet import Packet

__all__ = ["A", "B", "C", "pkt"]

A = "10.0.0.1"
B = "10.0.0.2"
C = "10.0.0.3"


def pkt(
    ts_us: int,
    src: str = A,
    dst: str = B,
    sport: int = 40000,
    dport: int = 80,
    flags: int = 0x10,
    payload: int = 0,
    proto: int = 6,
    header: int = 20,
    window: int = 1000,
) -> Packet:
    """A packet with the given header fields (TCP ACK by default)."""
    s = ipaddress.ip_address(src)
    return Packet(
        ts_us=ts_us,
        src=s.packed,
        dst=ipaddress.ip_address(dst).packed,
        proto=proto,
        sport=sport,
        dport=dport,
        payload_len=payload,
        header_len=header,
        flags=flags if proto == 6 else 0,
        window=window if proto == 6 else -1,
        wire_len=14 + 20 + header + payload,
        ip_version=s.version,
        ttl=64,
    )
