"""Context of a flow: what its originator and its service did in the seconds before it started.

One flow of a port scan, a SYN flood or a password-guessing run looks like one
refused or short connection; those attacks are many flows from one source, or
to one service. ``ContextTracker`` keeps, per originator address and per
service (destination address, port, protocol), the last ``depth`` flows started
within ``window_us``, and gives each new flow, at its first packet, thirteen counts
of that recent history (``CONTEXT_COLUMNS``): bursts over 10 s, repeats of the same
service over 120 s, and decayed flow rates without a cap. Earlier flows are looked at as
they are at that moment (answered yet or not), so the values depend only on
the order and times of packets: the same in ``extract`` and in the agent,
whatever the batching or expiry timing.

Besides the model's columns, ``observe`` sets ``flow.sweep``: how many other
addresses of the destination's network (its /24, or /64 for IPv6; multicast and
broadcast destinations none) the originator started flows to in those 10 s, and
how many of those addresses have an unanswered flow among them. It is not a model
input: the agent's sweep rule reads it (``edge_nids.agent.escalate.SweepRule``),
because a host-discovery sweep (ICMP echo and connect probes across a subnet) is
flows that each look ordinary, and the distinct-hosts count alone cannot tell it
from a P2P client's peers, which are spread over the whole address space.

Memory is constant per key (a ring of ``depth`` references) and bounded: at
most ``max_keys`` originators and services each, least recently seen dropped
first, so a flood of spoofed sources costs at most ``max_keys`` rings.

``PortTracker`` counts a slower kind of scan, one host's ports probed over minutes
(nmap ``-T2`` waits 0.4 s between probes, ``-T1`` 15 s; the nDPI ``tcp_scan`` capture
probes 7 ports of one host over 40 s): per (originator, destination) pair, the TCP ports
of its last ``depth`` flows started within ``window_us`` (300 s), and gives each new TCP
flow ``flow.ports``: how many other ports of its destination its originator has an
unanswered latest flow to (refused, half-open, or a handshake that carried no data). The
flow table feeds it only flows seen from their first packet (a SYN, or a FIN, NULL or Xmas
probe): connections first seen mid-stream have no known originator, and idle keep-alive
ones carry no data. Not a model input either: the agent's port-scan rule reads it
(``edge_nids.agent.escalate.PortScanRule``).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from typing import Any

from edge_nids.flows.packet import TCP

__all__ = [
    "CONTEXT_COLUMNS",
    "CONTEXT_DEPTH",
    "CONTEXT_MAX_KEYS",
    "CONTEXT_WINDOW_US",
    "NO_CONTEXT",
    "NO_SWEEP",
    "PADDING_BYTES",
    "PORTS_DEPTH",
    "PORTS_MAX_KEYS",
    "PORTS_WINDOW_US",
    "SERVICE_WINDOW_US",
    "ContextTracker",
    "PortTracker",
    "unanswered",
    "unicast",
]

#: How far back the burst counts look, µs.
CONTEXT_WINDOW_US = 10_000_000
#: How far back the same-service counts look, µs (slow password guessing: one try in seconds).
SERVICE_WINDOW_US = 120_000_000
#: Time constant of the decayed flow counts, µs.
RATE_TAU_US = 10_000_000
#: Most recent flows kept per originator and per service (the counts saturate there).
CONTEXT_DEPTH = 32
#: Originators (and, separately, services) tracked at once.
CONTEXT_MAX_KEYS = 1024
#: How far back the port-scan count looks, µs (the login rule's window too).
PORTS_WINDOW_US = 300_000_000
#: Ports remembered per (originator, destination) pair: the count saturates there.
PORTS_DEPTH = 16
#: (originator, destination) pairs whose ports are remembered at once.
PORTS_MAX_KEYS = 1024
#: Largest payload that still counts as "no data": Ethernet pads a bare TCP
#: segment to 60 bytes, which the decoder counts as 6 payload bytes (CIC's rule).
PADDING_BYTES = 6

#: (name, unit, meaning) of the context values, in order.
CONTEXT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("Src Recent Flows", "flows", "flows the originator started in the 10 s before this one (≤ 32)"),
    ("Src Recent Dst Ports", "ports", "distinct destination ports among them"),
    ("Src Recent Dst Hosts", "hosts", "distinct destination addresses among them"),
    ("Src Recent Unanswered", "flows", "those unanswered so far (no reply, or TCP without data)"),
    ("Src Recent Span", "ms", "time from the oldest of them to this flow's start; 0 if none"),
    (
        "Src Same Service",
        "flows",
        "flows the originator started to this flow's destination address, port and protocol "
        "in the 120 s before (among its last 32)",
    ),
    (
        "Src Same Service Alike",
        "flows",
        "those whose payload (both ways, so far) is within 10 % + 16 bytes of the latest of them",
    ),
    ("Src Same Service Span", "ms", "time from the oldest of them to this flow's start; 0 if none"),
    ("Svc Recent Flows", "flows", "flows to this destination address, port and protocol in the 10 s before"),
    ("Svc Recent Sources", "hosts", "distinct originators among them"),
    ("Svc Recent Unanswered", "flows", "those unanswered so far"),
    (
        "Src Flow Rate",
        "flows/10 s",
        "flows the originator started before this one, exponentially decayed with a 10 s time "
        "constant (no cap: tells a burst of 30 from a flood of thousands)",
    ),
    ("Svc Flow Rate", "flows/10 s", "the same for this flow's destination address, port and protocol"),
)

#: The context of a flow that has none (first of its kind, or the ``cicids2017`` profile).
NO_CONTEXT: tuple[int, ...] = (0,) * len(CONTEXT_COLUMNS)
#: ``flow.sweep`` of a flow with no such history: (other subnet hosts, of them unanswered).
NO_SWEEP: tuple[int, int] = (0, 0)


def _network(addr: bytes) -> bytes | None:
    """The /24 (IPv4) or /64 (IPv6) that ``addr`` belongs to; None for a multicast or broadcast
    address (many groups of one link, ff02::1:ffXX:XXXX or 224.0.0.x, are no sweep)."""
    if len(addr) == 4:
        if addr[0] >= 224 or addr[3] == 255:  # multicast, reserved, limited or directed broadcast
            return None
        return addr[:3]
    if addr[0] == 0xFF:
        return None
    return addr[:8]


def unicast(addr: bytes) -> bool:
    """Whether ``addr`` is a unicast address (not multicast, reserved or a broadcast, as
    :func:`_network` tells them)."""
    return _network(addr) is not None


def unanswered(flow: Any) -> bool:
    """No packet back yet, or a TCP flow that carried no data either way (refused, half-open, probe)."""
    if flow.bwd_pkts == 0:
        return True
    return flow.proto == TCP and flow.fl_max <= PADDING_BYTES and flow.bl_max <= PADDING_BYTES


class _History:
    """One originator's or service's recent flows, and its decayed flow count."""

    __slots__ = ("count", "last_us", "ring")

    def __init__(self, depth: int) -> None:
        self.ring: deque[Any] = deque(maxlen=depth)
        self.count = 0.0
        self.last_us = 0

    def rate(self, t_us: int) -> int:
        """Flows before ``t_us``, each weighted exp(-age / 10 s); then count this one. A packet
        older than the last one (merged or reordered captures) decays nothing."""
        age = t_us - self.last_us
        if age > 0:
            c = self.count * math.exp(-age / RATE_TAU_US) if self.count else 0.0
            self.last_us = t_us
        else:
            c = self.count
        self.count = c + 1.0
        return round(c)


class ContextTracker:
    """Recent flows per originator and per service; ``observe`` gives a new flow its context."""

    def __init__(
        self,
        window_us: int = CONTEXT_WINDOW_US,
        service_window_us: int = SERVICE_WINDOW_US,
        depth: int = CONTEXT_DEPTH,
        max_keys: int = CONTEXT_MAX_KEYS,
    ) -> None:
        self.window_us = window_us
        self.service_window_us = service_window_us
        self.depth = depth
        self.max_keys = max_keys
        self._src: OrderedDict[bytes, _History] = OrderedDict()
        self._svc: OrderedDict[tuple[bytes, int, int], _History] = OrderedDict()

    def __len__(self) -> int:
        return len(self._src) + len(self._svc)

    def _ring(self, table: OrderedDict, key: Any) -> _History:
        hist = table.get(key)
        if hist is None:
            if len(table) >= self.max_keys:
                table.popitem(last=False)
            hist = table[key] = _History(self.depth)
        else:
            table.move_to_end(key)
        return hist

    def observe(self, flow: Any) -> tuple[int, ...]:
        """The context of ``flow`` at its first packet (``CONTEXT_COLUMNS`` order); then remember it."""
        t0 = flow.first_us
        recent = t0 - self.window_us
        src = self._ring(self._src, flow.src)
        src_ring = src.ring
        oldest = t0 - self.service_window_us
        while src_ring and src_ring[0].first_us < oldest:
            src_ring.popleft()
        n = failed = 0
        first = t0
        ports: set[int] = set()
        hosts: set[bytes] = set()
        same: list[Any] = []
        dst, dport, proto = flow.dst, flow.dport, flow.proto
        for e in src_ring:
            if e.dst == dst and e.dport == dport and e.proto == proto:
                same.append(e)
            if e.first_us < recent:
                continue
            if not n:
                first = e.first_us
            n += 1
            ports.add(e.dport)
            hosts.add(e.dst)
            if unanswered(e):
                failed += 1
        alike = 0
        if same:
            ref = same[-1].fwd_bytes + same[-1].bwd_bytes
            tol = ref // 10 + 16
            alike = sum(1 for e in same if abs(e.fwd_bytes + e.bwd_bytes - ref) <= tol)
        same_span = (t0 - same[0].first_us) // 1000 if same else 0
        svc = self._ring(self._svc, (dst, dport, proto))
        svc_ring = svc.ring
        while svc_ring and svc_ring[0].first_us < recent:
            svc_ring.popleft()
        sfailed = 0
        srcs: set[bytes] = set()
        for e in svc_ring:
            srcs.add(e.src)
            if unanswered(e):
                sfailed += 1
        if len(hosts) > 1 or (hosts and dst not in hosts):  # else no other host to count
            net = _network(dst)
            if net is not None:
                flow.sweep = self._sweep(src_ring, recent, dst, net)
        src_ring.append(flow)
        svc_ring.append(flow)
        return (
            n,
            len(ports),
            len(hosts),
            failed,
            (t0 - first) // 1000,
            len(same),
            alike,
            same_span,
            len(svc_ring) - 1,
            len(srcs),
            sfailed,
            src.rate(t0),
            svc.rate(t0),
        )

    @staticmethod
    def _sweep(ring: deque[Any], recent: int, dst: bytes, net: bytes) -> tuple[int, int]:
        """(other addresses of ``net`` that the ring's flows since ``recent`` went to, how many
        of those addresses have an unanswered flow among them)."""
        n = len(net)
        others: set[bytes] = set()
        failed: set[bytes] = set()
        for e in ring:
            d = e.dst
            if e.first_us < recent or d == dst or d[:n] != net or len(d) != len(dst):
                continue
            others.add(d)
            if unanswered(e):
                failed.add(d)
        return len(others), len(failed)


class PortTracker:
    """Per (originator, destination) pair, the latest TCP flow to each of its recent ports;
    ``observe`` gives a new TCP flow its ``flow.ports``.

    Bounded like the context: at most ``max_keys`` pairs, least recently seen dropped first,
    each with at most ``depth`` ports (a dict in order of their latest flow's start), so a
    spoofed flood costs at most ``max_keys`` one-entry dicts and a scan of thousands of
    ports ``depth`` entries.
    """

    def __init__(
        self, window_us: int = PORTS_WINDOW_US, depth: int = PORTS_DEPTH, max_keys: int = PORTS_MAX_KEYS
    ) -> None:
        self.window_us = window_us
        self.depth = depth
        self.max_keys = max_keys
        self._pairs: OrderedDict[tuple[bytes, bytes], dict[int, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pairs)

    def observe(self, flow: Any) -> int:
        """Other ports of ``flow``'s destination whose latest flow from its originator, started
        in the window before ``flow``, is unanswered at ``flow``'s first packet; then remember
        ``flow`` as its port's latest."""
        key = (flow.src, flow.dst)
        pairs = self._pairs
        ports = pairs.get(key)
        if ports is None:
            if len(pairs) >= self.max_keys:
                pairs.popitem(last=False)
            pairs[key] = {flow.dport: flow}
            return 0
        pairs.move_to_end(key)
        dport = flow.dport
        if len(ports) == 1 and dport in ports:  # the usual case: a client back at one service
            ports[dport] = flow
            return 0
        oldest = flow.first_us - self.window_us
        while ports:  # oldest first: drop those out of the window
            p = next(iter(ports))
            if ports[p].first_us >= oldest:
                break
            del ports[p]
        ports.pop(dport, None)
        # unanswered() inlined (all are TCP): a scan runs it for 16 entries per new flow, and
        # the call and generator made the observe of the SoP SYN scan's flows 4.8 µs a flow
        pad = PADDING_BYTES
        n = 0
        for e in ports.values():
            if e.bwd_pkts == 0 or (e.fl_max <= pad and e.bl_max <= pad):
                n += 1
        ports[dport] = flow
        if len(ports) > self.depth:
            del ports[next(iter(ports))]
        return n
