"""Alert suppression (``alerts.suppress``): alerts matching an entry are counted, not written.

An entry matches an alert when every key it sets matches (src/dest: the alert's
``src_ip``/``dest_ip`` lies in the address or CIDR; dest_port; proto; family); an alert
is suppressed when any entry matches. Like Suricata's ``suppress`` in
threshold.config, it silences only the alert: the flow is still classified and its
flow event (with its verdict) is still written. Entries are checked in config.py.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from edge_nids.agent.config import PROTO_BY_NAME, SuppressEntry
from edge_nids.agent.eve import PROTO_NAMES

__all__ = ["Suppressor", "alert_family"]

# (address length in bytes, network as int, netmask as int)
_Net = tuple[int, int, int]


def _net(text: str) -> _Net:
    n = ipaddress.ip_network(text, strict=False)
    return (n.max_prefixlen // 8, int(n.network_address), int(n.netmask))


def _addr_int(text: str) -> tuple[int, int] | None:
    """(length in bytes, value) of an address in text; None if it is not one."""
    try:
        b = socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
    except (OSError, TypeError):
        return None
    return len(b), int.from_bytes(b, "big")


def _in(net: _Net, addr: tuple[int, int] | None) -> bool:
    return addr is not None and addr[0] == net[0] and addr[1] & net[2] == net[1]


def alert_family(rec: Mapping[str, Any]) -> str | None:
    """The attack family an alert names (``alert.context.family``, ``alert.family`` or
    ``alert.metadata.family``), lower-cased; None when it has none."""
    a = rec.get("alert") or {}
    ctx, meta = a.get("context") or {}, a.get("metadata") or {}
    for v in (ctx.get("family"), a.get("family"), meta.get("family")):
        if isinstance(v, list) and v:
            v = v[0]
        if isinstance(v, str) and v:
            return v.strip().lower()
    return None


@dataclass(frozen=True)
class _Rule:
    src: _Net | None
    dest: _Net | None
    dest_port: int | None
    proto: str | None  # the EVE proto text
    family: str | None  # lower-case

    def matches(self, rec: Mapping[str, Any]) -> bool:
        if self.dest_port is not None and rec.get("dest_port") != self.dest_port:
            return False
        if self.proto is not None and rec.get("proto") != self.proto:
            return False
        if self.src is not None and not _in(self.src, _addr_int(str(rec.get("src_ip", "")))):
            return False
        if self.dest is not None and not _in(self.dest, _addr_int(str(rec.get("dest_ip", "")))):
            return False
        return self.family is None or alert_family(rec) == self.family


def _proto_text(proto: str) -> str:
    p = proto.strip().lower()
    if p in PROTO_BY_NAME:
        return PROTO_BY_NAME[p]
    return PROTO_NAMES.get(int(p), str(int(p)))


class Suppressor:
    """The compiled ``alerts.suppress`` list; false when empty."""

    def __init__(self, entries: Iterable[SuppressEntry] = ()) -> None:
        self.rules = [
            _Rule(
                _net(e.src) if e.src is not None else None,
                _net(e.dest) if e.dest is not None else None,
                e.dest_port,
                _proto_text(e.proto) if e.proto is not None else None,
                e.family.strip().lower() if e.family is not None else None,
            )
            for e in entries
        ]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def matches(self, rec: Mapping[str, Any]) -> bool:
        """True when an entry matches the alert record ``rec`` (EVE fields)."""
        return any(r.matches(rec) for r in self.rules)
