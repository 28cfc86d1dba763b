"""Suricata EVE JSON records: alerts, flow events and stats, plus Community ID v1.

Field names and layout follow Suricata's ``eve.json`` so Filebeat's suricata
module and other EVE tooling read the output unchanged. Times are capture
times (packet timestamps, µs since the epoch), written as ISO 8601 with µs and
a ``+0000`` offset.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import hashlib
import json
import socket
import struct
from collections.abc import Mapping
from math import isfinite
from typing import Any

from edge_nids.flows.packet import format_ip

__all__ = [
    "PROTO_NAMES",
    "FlowIdent",
    "community_id",
    "community_id_packed",
    "eve_timestamp",
    "flow_common",
    "flow_id_int",
    "flow_ident",
    "flow_section",
    "to_json",
    "to_json_generic",
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


def _pton(ip: str) -> bytes:
    """Packed form (4 or 16 bytes) of an IPv4 or IPv6 address in text."""
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    except OSError:
        raise ValueError(f"not an IP address: {ip!r}") from None


def community_id(
    src_ip: str, dst_ip: str, proto: int, sport: int | None = None, dport: int | None = None, seed: int = 0
) -> str:
    """Community ID v1 (corelight/community-id-spec) of a flow, e.g. ``1:wCb3OG7y...``.

    For ICMP/ICMPv6 pass the type as ``sport`` and the code as ``dport``.
    Direction does not matter for two-way flows.
    """
    return community_id_packed(
        _pton(src_ip),
        _pton(dst_ip),
        int(proto),
        None if sport is None else int(sport),
        None if dport is None else int(dport),
        int(seed),
    )


def community_id_packed(
    saddr: bytes, daddr: bytes, proto: int, sport: int | None = None, dport: int | None = None, seed: int = 0
) -> str:
    """:func:`community_id` from packed addresses (4 or 16 bytes each, as the decoder keeps them)."""
    has_ports = sport is not None and dport is not None and proto in _PORT_PROTOS
    sp = sport or 0
    dp = dport or 0
    one_way = False
    if has_ports and (proto == 1 or proto == 58):
        pairs = _ICMP4_PAIRS if proto == 1 else _ICMP6_PAIRS
        if sp in pairs:
            dp = pairs[sp]
        else:
            one_way = True
    if not one_way and (saddr > daddr or (saddr == daddr and sp > dp)):
        saddr, daddr, sp, dp = daddr, saddr, dp, sp
    head = _SEED0 if seed == 0 else _HDR.pack(seed)
    if has_ports:
        tail = _PORTS.pack(proto, 0, sp, dp)
    else:
        tail = _NOPORTS.pack(proto, 0)
    return "1:" + base64.b64encode(hashlib.sha1(head + saddr + daddr + tail).digest()).decode("ascii")


_HDR = struct.Struct("!H")
_SEED0 = _HDR.pack(0)
_PORTS = struct.Struct("!BBHH")
_NOPORTS = struct.Struct("!BB")

# second of the epoch -> "YYYY-mm-ddTHH:MM:SS." (capture times come in runs of the same few seconds)
_TS_PREFIX: dict[int, str] = {}
_TS_PREFIX_MAX = 4096


def eve_timestamp(ts_us: int) -> str:
    """Suricata's timestamp form, e.g. ``2017-07-06T13:40:12.123456+0000``.

    The text up to the second is formatted once per second of capture time (cached);
    the µs are appended.
    """
    sec, us = divmod(int(ts_us), 1_000_000)
    prefix = _TS_PREFIX.get(sec)
    if prefix is None:
        if len(_TS_PREFIX) >= _TS_PREFIX_MAX:
            _TS_PREFIX.clear()
        prefix = (_EPOCH + _dt.timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S.")
        _TS_PREFIX[sec] = prefix
    return f"{prefix}{us:06d}+0000"


def flow_id_int(src_ip: str, dst_ip: str, sport: int, dport: int, proto: int, first_us: int) -> int:
    """A stable positive int64 identifying one flow (5-tuple + start time), like Suricata's flow_id."""
    key = f"{src_ip}|{dst_ip}|{sport}|{dport}|{proto}|{first_us}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") & 0x7FFF_FFFF_FFFF_FFFF


#: What identifies a flow in its EVE records: (flow_id, community_id, src_ip, src_port,
#: dest_ip, dest_port, proto name); the same for every record of one flow.
FlowIdent = tuple[int, str, str, int, str, int, str]


def flow_ident(flow: Any, seed: int = 0) -> FlowIdent:
    """The identity fields of a flow's EVE records, computed once per flow.

    Uses the packed addresses (``flow.src``/``flow.dst``, bytes) when the flow has them,
    so the community ID needs no text parsing; else parses ``src_ip``/``dst_ip``.
    """
    proto = int(flow.proto)
    sport, dport = int(flow.sport), int(flow.dport)
    sb = getattr(flow, "src", None)
    if isinstance(sb, bytes):
        db = flow.dst
        src, dst = _ip_text(sb), _ip_text(db)
    else:
        src, dst = flow.src_ip, flow.dst_ip
        sb, db = _pton(src), _pton(dst)
    return (
        flow_id_int(src, dst, sport, dport, proto, flow.first_us),
        community_id_packed(sb, db, proto, sport, dport, seed),
        src,
        sport,
        dst,
        dport,
        PROTO_NAMES.get(proto) or str(proto),
    )


#: Text of a packed address, cached: scans and floods repeat their addresses, and a cache hit
#: (67 ns) is a quarter of inet_ntop (260 ns) on the 2-CPU VM. Bounded (LRU) at 4,096
#: addresses, ~0.8 MB: a spoofed-source flood fills any bound, and 65,536 held ~13 MB.
_ip_text = functools.lru_cache(maxsize=1 << 12)(format_ip)


def flow_section(flow: Any, reason: str | None = None, end: str | None = None) -> dict[str, Any]:
    """EVE ``flow`` object: packets and payload bytes per direction, start, end, end reason.

    toserver is the flow's forward direction (its first packet's sender). Bytes are
    transport payload bytes (CIC's "Total Length of Fwd/Bwd Packets"). ``reason`` is the
    flow table's end reason (fin, rst, idle, active, evicted, end-of-input), or ``open``
    for a flow classified while still active. ``end``: ``eve_timestamp(flow.last_us)``
    when the caller has it already (the record's own timestamp).
    """
    first, last = flow.first_us, flow.last_us
    end = end or eve_timestamp(last)
    return {
        "pkts_toserver": int(flow.fwd_pkts),
        "pkts_toclient": int(flow.bwd_pkts),
        "bytes_toserver": int(flow.fwd_bytes),
        "bytes_toclient": int(flow.bwd_bytes),
        "start": end if first == last else eve_timestamp(first),
        "end": end,
        "age": max(0, int((last - first) // 1_000_000)),
        "reason": reason or flow.end_reason or "open",
    }


def flow_common(
    flow: Any,
    event_type: str,
    ts_us: int,
    iface: str | None,
    host: str,
    seed: int = 0,
    ident: FlowIdent | None = None,
) -> dict[str, Any]:
    """The fields every per-flow EVE event starts with (timestamp .. proto).

    ``ident``: the flow's :func:`flow_ident`, when the caller has it already.
    """
    fid, cid, src, sport, dst, dport, proto = ident or flow_ident(flow, seed)
    return {
        "timestamp": eve_timestamp(ts_us),
        "flow_id": fid,
        "community_id": cid,
        "event_type": event_type,
        "in_iface": iface or "",
        "host": host,
        "src_ip": src,
        "src_port": sport,
        "dest_ip": dst,
        "dest_port": dport,
        "proto": proto,
    }


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_str = json.encoder.encode_basestring  # the C escaper json itself uses: quoted, escaped text
_float = float.__repr__  # what json writes for a finite float; TypeError for anything else

_COMMON_KEYS = (
    "timestamp",
    "flow_id",
    "community_id",
    "event_type",
    "in_iface",
    "host",
    "src_ip",
    "src_port",
    "dest_ip",
    "dest_port",
    "proto",
)
_FLOW_EVENT_KEYS = (*_COMMON_KEYS, "flow", "metadata")
_ALERT_EVENT_KEYS = (*_COMMON_KEYS, "alert", "flow")
_FLOW_KEYS = (
    "pkts_toserver",
    "pkts_toclient",
    "bytes_toserver",
    "bytes_toclient",
    "start",
    "end",
    "age",
    "reason",
)
_ALERT_KEYS = ("action", "gid", "signature_id", "rev", "signature", "category", "severity", "context")


def _common(r: Mapping[str, Any]) -> str:
    return (
        f'{{"timestamp":{_str(r["timestamp"])},"flow_id":{r["flow_id"]},'
        f'"community_id":{_str(r["community_id"])},"event_type":{_str(r["event_type"])},'
        f'"in_iface":{_str(r["in_iface"])},"host":{_str(r["host"])},'
        f'"src_ip":{_str(r["src_ip"])},"src_port":{r["src_port"]},'
        f'"dest_ip":{_str(r["dest_ip"])},"dest_port":{r["dest_port"]},"proto":{_str(r["proto"])}'
    )


_LAST_FLOW: list[Any] = [None, ""]  # (flow object, its text): an alert and its flow event share one


def _flow(f: Mapping[str, Any]) -> str:
    if f is _LAST_FLOW[0]:
        return str(_LAST_FLOW[1])
    if tuple(f) != _FLOW_KEYS:
        raise KeyError("flow")
    text = (
        f'{{"pkts_toserver":{f["pkts_toserver"]},"pkts_toclient":{f["pkts_toclient"]},'
        f'"bytes_toserver":{f["bytes_toserver"]},"bytes_toclient":{f["bytes_toclient"]},'
        f'"start":{_str(f["start"])},"end":{_str(f["end"])},"age":{f["age"]},"reason":{_str(f["reason"])}}}'
    )
    _LAST_FLOW[0], _LAST_FLOW[1] = f, text  # set only once the text is complete
    return text


def _flow_event(r: Mapping[str, Any]) -> str:
    v, sc = r["metadata"]["flowvars"]
    if len(r["metadata"]) != 1 or tuple(v) != ("key", "value") or tuple(sc) != ("key", "value"):
        raise KeyError("metadata")
    return (
        f'{_common(r)},"flow":{_flow(r["flow"])},"metadata":{{"flowvars":['
        f'{{"key":{_str(v["key"])},"value":{_str(v["value"])}}},'
        f'{{"key":{_str(sc["key"])},"value":{_str(sc["value"])}}}]}}}}'
    )


#: ``alert.context`` as the agent writes an alert's first line (``class`` for multi-class
#: models; then the explanation, or why there is none); summaries, escalated alerts (a few
#: per attacker at most) and anything else go through ``json``. Every alert has carried
#: ``family`` since the family stage came: the template without it had stopped matching, so
#: every context went through ``json``.
_CONTEXT_HEAD = {("score", "threshold", "model", "family", "count"): False}
_CONTEXT_HEAD[("score", "threshold", "model", "class", "family", "count")] = True


def _context(c: Mapping[str, Any]) -> str:
    keys = tuple(c)
    tail = keys[-1] if keys else ""
    has_class = _CONTEXT_HEAD.get(keys[:-1] if tail in ("explanation", "explanation_skipped") else keys)
    if has_class is None:
        return _ENCODER.encode(c)
    m, score, thr = c["model"], c["score"], c["threshold"]
    # json writes no NaN or infinity (allow_nan=False) and a bool count as true
    if tuple(m) != ("name", "version") or type(c["count"]) is not int or not isfinite(score + thr):
        return _ENCODER.encode(c)
    cls = f',"class":{_str(c["class"])}' if has_class else ""
    if tail == "explanation":
        end = f',"explanation":{_ENCODER.encode(c[tail])}'  # at most 50 lines/s carry one
    elif tail == "explanation_skipped":
        end = f',"explanation_skipped":{_str(c[tail])}'
    else:
        end = ""
    return (
        f'{{"score":{_float(score)},"threshold":{_float(thr)},'
        f'"model":{{"name":{_str(m["name"])},"version":{_str(m["version"])}}}{cls},'
        f'"family":{_str(c["family"])},"count":{c["count"]}{end}}}'
    )


def _alert_event(r: Mapping[str, Any]) -> str:
    a = r["alert"]
    if tuple(a) != _ALERT_KEYS:
        raise KeyError("alert")
    ctx = _context(a["context"])
    return (
        f'{_common(r)},"alert":{{"action":{_str(a["action"])},"gid":{a["gid"]},'
        f'"signature_id":{a["signature_id"]},"rev":{a["rev"]},"signature":{_str(a["signature"])},'
        f'"category":{_str(a["category"])},"severity":{a["severity"]},"context":{ctx}}},'
        f'"flow":{_flow(r["flow"])}}}'
    )


def to_json(record: Mapping[str, Any]) -> str:
    """One compact JSON line (no trailing newline), key order kept.

    The agent's own flow and alert events (exactly the keys it writes) are formatted
    by templates, about twice as fast as the generic encoder and byte-identical to it
    (tests/agent/test_eve.py checks that on real replays; their integer fields are
    ints, as the pipeline builds them with ``int()``); any other record, or one whose
    nested keys differ, goes through ``json``.
    """
    if type(record) is dict:
        keys = tuple(record)
        try:
            if keys == _FLOW_EVENT_KEYS:
                return _flow_event(record)
            if keys == _ALERT_EVENT_KEYS:
                return _alert_event(record)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    return _ENCODER.encode(record)


def to_json_generic(record: Mapping[str, Any]) -> str:
    """:func:`to_json` without the templates (the reference they must equal)."""
    return _ENCODER.encode(record)
