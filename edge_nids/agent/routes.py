"""The default route's interface, read from ``/proc/net/route`` and ``/proc/net/ipv6_route``.

``install-service`` writes it into the installed config as ``capture.iface``, so a
fresh install captures on the interface that carries the box's traffic (``end0``
on current Debian for a Pi, ``wlan0`` on a Wi-Fi Pi) without an extra step.
Standard library only.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["default_route_iface"]

_RTF_UP = 0x0001
_RTF_REJECT = 0x0200


def _ipv4_defaults(text: str) -> list[tuple[int, str]]:
    """(metric, iface) of each usable IPv4 default route in ``/proc/net/route`` text."""
    out: list[tuple[int, str]] = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        iface, dest, flags, metric, mask = f[0], f[1], int(f[3], 16), int(f[6]), f[7]
        if dest == "00000000" and mask == "00000000" and flags & _RTF_UP and not flags & _RTF_REJECT:
            out.append((metric, iface))
    return out


def _ipv6_defaults(text: str) -> list[tuple[int, str]]:
    """(metric, iface) of each usable IPv6 default route in ``/proc/net/ipv6_route`` text."""
    out: list[tuple[int, str]] = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 10:
            continue
        dest, plen, metric, flags, iface = f[0], f[1], int(f[5], 16), int(f[8], 16), f[9]
        if int(dest, 16) == 0 and plen == "00" and iface != "lo":
            if flags & _RTF_UP and not flags & _RTF_REJECT:
                out.append((metric, iface))
    return out


def default_route_iface(proc_net: str | Path = "/proc/net") -> str | None:
    """The interface of the lowest-metric default route (IPv4 first, then IPv6); None if there is none."""
    base = Path(proc_net)
    for name, parse in (("route", _ipv4_defaults), ("ipv6_route", _ipv6_defaults)):
        try:
            text = (base / name).read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        routes = parse(text)
        if routes:
            return min(routes)[1]
    return None
