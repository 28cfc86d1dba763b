"""Suricata EVE JSON records: alerts, flow events and stats, plus Community ID v1.

Field names and layout follow Suricata's ``eve.json`` so Filebeat's suricata
module and other EVE tooling read the output unchanged. Times are capture
times (packet timestamps, µs since the epoch), written as ISO 8601 with µs and
a ``+0000`` offset.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import ipaddress
import json
import struct
from collections.abc import Mapping
from typing import Any

__all__ = [
    "PROTO_NAMES",
    "community_id",
    "eve_timestamp",
    "flow_common",
    "flow_id_int",
    "flow_section",
    "to_json",
]

PROTO_NAMES: dict[int, str] = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "IPv6-ICMP", 132: "SCTP", 47: "GRE"}

# Community ID v1: ICMP type -> "reply" type, for the types that have a two-way equivalent.
_ICMP4_PAIRS = {8: 0, 0: 8, 9: 10, 10: 9, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17}
_ICMP6_PAIRS = {
    128: 129,
    129: 128,
    130: 131,
    131: 130,
    133: 134,
    134: 133,
    135: 136,
    136: 135,
    139: 140,
    140: 139,
    144: 145,
    145: 144,
}
_PORT_PROTOS = {6, 17, 132, 1, 58}
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def community_id(
    src_ip: str, dst_ip: str, proto: int, sport: int | None = None, dport: int | None = None, seed: int = 0
) -> str:
    """Community ID v1 (corelight/community-id-spec) of a flow, e.g. ``1:wCb3OG7y...``.

    For ICMP/ICMPv6 pass the type as ``sport`` and the code as ``dport``.
    Direction does not matter for two-way flows.
    """
    saddr = ipaddress.ip_address(src_ip).packed
    daddr = ipaddress.ip_address(dst_ip).packed
    has_ports = proto in _PORT_PROTOS and sport is not None and dport is not None
    sp = int(sport or 0)
    dp = int(dport or 0)
    one_way = False
    if has_ports and proto in (1, 58):
        pairs = _ICMP4_PAIRS if proto == 1 else _ICMP6_PAIRS
        if sp in pairs:
            dp = pairs[sp]
        else:
            one_way = True
    if not one_way and (saddr, sp) > (daddr, dp):
        saddr, daddr, sp, dp = daddr, saddr, dp, sp
    blob = struct.pack("!H", seed) + saddr + daddr + struct.pack("!BB", proto, 0)
    if has_ports:
        blob += struct.pack("!HH", sp, dp)
    return "1:" + base64.b64encode(hashlib.sha1(blob).digest()).decode("ascii")


def eve_timestamp(ts_us: int) -> str:
    """Suricata's timestamp form, e.g. ``2017-07-06T13:40:12.123456+0000``."""
    t = _EPOCH + _dt.timedelta(microseconds=int(ts_us))
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+0000"


def flow_id_int(src_ip: str, dst_ip: str, sport: int, dport: int, proto: int, first_us: int) -> int:
    """A stable positive int64 identifying one flow (5-tuple + start time), like Suricata's flow_id."""
    key = f"{src_ip}|{dst_ip}|{sport}|{dport}|{proto}|{first_us}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") & 0x7FFF_FFFF_FFFF_FFFF


def flow_section(flow: Any, reason: str | None = None) -> dict[str, Any]:
    """EVE ``flow`` object: packets and payload bytes per direction, start, end, end reason.

    toserver is the flow's forward direction (its first packet's sender). Bytes are
    transport payload bytes (CIC's "Total Length of Fwd/Bwd Packets"). ``reason`` is the
    flow table's end reason (fin, rst, idle, active, evicted, end-of-input), or ``open``
    for a flow classified while still active.
    """
    return {
        "pkts_toserver": int(flow.fwd_pkts),
        "pkts_toclient": int(flow.bwd_pkts),
        "bytes_toserver": int(flow.fwd_bytes),
        "bytes_toclient": int(flow.bwd_bytes),
        "start": eve_timestamp(flow.first_us),
        "end": eve_timestamp(flow.last_us),
        "age": max(0, int((flow.last_us - flow.first_us) // 1_000_000)),
        "reason": reason or flow.end_reason or "open",
    }


def flow_common(
    flow: Any, event_type: str, ts_us: int, iface: str | None, host: str, seed: int = 0
) -> dict[str, Any]:
    """The fields every per-flow EVE event starts with (timestamp .. proto)."""
    proto = int(flow.proto)
    sport, dport = int(flow.sport), int(flow.dport)
    src, dst = flow.src_ip, flow.dst_ip  # formatted from packed addresses on each access
    rec: dict[str, Any] = {
        "timestamp": eve_timestamp(ts_us),
        "flow_id": flow_id_int(src, dst, sport, dport, proto, flow.first_us),
        "community_id": community_id(src, dst, proto, sport, dport, seed),
        "event_type": event_type,
        "in_iface": iface or "",
        "host": host,
        "src_ip": src,
        "src_port": sport,
        "dest_ip": dst,
        "dest_port": dport,
        "proto": PROTO_NAMES.get(proto, str(proto)),
    }
    return rec


def to_json(record: Mapping[str, Any]) -> str:
    """One compact JSON line (no trailing newline), key order kept."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
