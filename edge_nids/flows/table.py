"""The flow table: bidirectional flows, LRU order, expiry, bounded size.

Packets are grouped by a canonical, direction-agnostic key (protocol, address
pair, port pair); the first packet of a flow defines its forward direction.
Expiry is driven by packet timestamps only (never the wall clock):

* active timeout: a flow older than ``active_timeout_s`` (from its first packet)
  ends when its next packet arrives, and a new flow with the same orientation
  starts with that packet (CICFlowMeter's rule), or when ``expire`` finds it;
* idle timeout (``corrected`` only by default): no packet for ``idle_timeout_s``;
* TCP termination: ``cicids2017`` ends a flow at the first FIN in either
  direction (that packet included; later packets start a new flow) and ignores
  RST; ``corrected`` ends it at an RST, or once FIN was seen from both sides,
  with the final ACK of the close included;
* the table holds at most ``max_flows`` flows: when full, the least recently
  seen flow ends with reason ``evicted`` (counted in ``FlowTable.evicted``);
* ``flush`` ends all flows with reason ``end-of-input``.

``corrected`` also fits real traffic (docs/features.md has the measurements):

* remnants: a packet without SYN for a TCP connection that ended by FIN or RST
  less than ``REMNANT_US`` ago (the last ACK, a repeated FIN or RST) is absorbed,
  counted in ``FlowTable.remnants``, and starts no flow;
* originator: a TCP flow's forward direction is the sender of its SYN; a flow
  first seen at a SYN-ACK is turned round; one first seen mid-stream (TCP) or at
  a packet from a service port (TCP or UDP) is oriented by ports: the lower port
  is the service when it is below 1024, or below 32768 with the other one at or
  above (the ephemeral ranges of Linux and Windows); ``Flow.handshake`` says
  whether the originator's SYN was seen;
* continuation: a flow that starts, without SYN, on the key of a flow that ended
  by idle or active timeout keeps that flow's orientation and is marked
  ``Flow.continued`` (counted in ``FlowTable.continued``);
* context: each flow gets, at its first packet, counts of what its originator
  and its service did in the 10 s before (``edge_nids.flows.context``), and a TCP
  flow seen from its first packet the other ports of its destination that its
  originator left unanswered in the 300 s before (``Flow.ports``, ``Flow.stealth``).

In the ``cicids2017`` profile, flows of one packet are dropped (as the 2017 build
did) whenever they end by a timeout, eviction or end of input; they are counted in
``FlowTable.dropped_single``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from edge_nids.flows.context import NO_CONTEXT, NO_SWEEP, PADDING_BYTES, ContextTracker, PortTracker
from edge_nids.flows.features import FlowFeatures
from edge_nids.flows.logins import HTTP as HTTP_APP
from edge_nids.flows.logins import SSH as SSH_APP
from edge_nids.flows.logins import LoginTracker
from edge_nids.flows.packet import ACK, FIN, RST, SYN, TCP, UDP, Packet, format_ip
from edge_nids.flows.schema import PROFILES

__all__ = ["END_REASONS", "REMNANT_US", "Flow", "FlowConfig", "FlowTable", "service_side"]

#: Why a flow ended.
END_REASONS: tuple[str, ...] = ("fin", "rst", "idle", "active", "evicted", "end-of-input")

#: Default idle timeout of the ``corrected`` profile, s.
DEFAULT_IDLE_TIMEOUT_S = 60.0

#: How long after a TCP close trailing packets are absorbed, µs (netflower 1.1.0 measured
#: 99.7 % of them within 1 s of the close in benign IoT captures).
REMNANT_US = 1_000_000
#: Closed and timed-out connections remembered for remnants and continuations (each); about
#: 280 bytes an entry, so at most ~4.5 MB each under a flood of short connections.
_MEMORY_KEYS = 16_384


def service_side(sport: int, dport: int) -> bool:
    """True when ``sport`` looks like the service end and ``dport`` like the client's."""
    if sport >= dport:
        return False
    return sport < 1024 or (sport < 32768 <= dport)


@dataclass(frozen=True)
class FlowConfig:
    """Flow table settings.

    profile: ``cicids2017`` or ``corrected`` (see edge_nids.flows.features).
    active_timeout_s: maximum flow length from its first packet, s.
    idle_timeout_s: maximum gap without packets, s; ``None`` = the profile's
        default (none for ``cicids2017``, 60 s for ``corrected``); 0 = none.
    max_flows: maximum number of flows held at once.
    """

    profile: str = "cicids2017"
    active_timeout_s: float = 120.0
    idle_timeout_s: float | None = None
    max_flows: int = 100_000

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown flow profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        if not self.active_timeout_s > 0:
            raise ValueError(f"active_timeout_s must be > 0, got {self.active_timeout_s!r}")
        if self.idle_timeout_s is not None and self.idle_timeout_s < 0:
            raise ValueError(f"idle_timeout_s must be >= 0, got {self.idle_timeout_s!r}")
        if self.max_flows < 1:
            raise ValueError(f"max_flows must be >= 1, got {self.max_flows!r}")

    @property
    def active_us(self) -> int:
        """Active timeout, µs."""
        return round(self.active_timeout_s * 1e6)

    @property
    def idle_us(self) -> int:
        """Idle timeout, µs; 0 = none."""
        idle = self.idle_timeout_s
        if idle is None:
            idle = 0.0 if self.profile == "cicids2017" else DEFAULT_IDLE_TIMEOUT_S
        return round(idle * 1e6)


class Flow(FlowFeatures):
    """One bidirectional flow: endpoints (forward = src -> dst) and its feature state."""

    __slots__ = (
        "app",
        "closing",
        "context",
        "continued",
        "dport",
        "dst",
        "end_reason",
        "handshake",
        "logins",
        "ports",
        "proto",
        "replies",
        "sport",
        "src",
        "ssh",
        "stealth",
        "sweep",
    )

    def __init__(self, cic: bool, src: bytes, dst: bytes, sport: int, dport: int, proto: int) -> None:
        FlowFeatures.__init__(self, cic)  # not super(): one object fewer per new flow
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.proto = proto
        self.end_reason = ""
        self.closing = False
        self.handshake = False
        self.continued = False
        self.context: tuple[int, ...] = NO_CONTEXT
        #: (other addresses of the destination's subnet the originator just contacted, of them
        #: unanswered): ``flows.context``, read by the agent's sweep rule, not a model input
        self.sweep: tuple[int, int] = NO_SWEEP
        #: the protocol whose logins are read (``flows.logins``: 0 not decided yet, -1 none, a
        #: code's negative once no more is read), the segments read, and per login reply or
        #: request and at a TCP connection's start (capture time µs, the client's net refused
        #: logins at this service in the last 300 s, the distinct credentials it tried there):
        #: the login rule's
        self.app = 0
        self.replies = 0
        #: an SSH connection's [time of its client's last segment µs, size of its server's last
        #: delayed answer] (``flows.logins``), else None
        self.ssh: list[int] | None = None
        self.logins: tuple[tuple[int, int, int], ...] = ()
        #: other ports of the destination that the originator's latest TCP flows in the last
        #: 300 s left unanswered (``flows.context.PortTracker``), and whether the first packet
        #: was an empty TCP segment with none of SYN, ACK and RST (nmap's FIN, NULL and Xmas
        #: probes: no TCP stack sends one, every segment after the SYN carries ACK): the
        #: agent's port-scan rule's, not model inputs
        self.ports = 0
        self.stealth = False

    @property
    def src_ip(self) -> str:
        """Forward source address as text."""
        return format_ip(self.src)

    @property
    def dst_ip(self) -> str:
        """Forward destination address as text."""
        return format_ip(self.dst)

    @property
    def packets(self) -> int:
        """Packets in both directions."""
        return self.fwd_pkts + self.bwd_pkts

    @property
    def flow_id(self) -> str:
        """CICFlowMeter's flow id: ``srcip-dstip-sport-dport-proto``."""
        return f"{self.src_ip}-{self.dst_ip}-{self.sport}-{self.dport}-{self.proto}"

    def features(self) -> list[float]:
        """The 78 feature values (``schema.CIC_IDS2017`` order); works on live flows too."""
        return self.vector(self.dport)

    def state(self) -> list[int]:
        """The values of ``schema.STATE_COLUMNS`` (protocol, handshake, continuation)."""
        return [self.proto, int(self.handshake), int(self.continued)]

    def edge_features(self) -> list[float]:
        """The values of ``schema.EDGE_FLOWS`` (the 78, then state and context); live flows too."""
        v = self.vector(self.dport)
        v.extend(self.state())
        v.extend(self.context)
        return v

    def __repr__(self) -> str:
        return (
            f"Flow({self.flow_id}, first_us={self.first_us}, fwd={self.fwd_pkts}, bwd={self.bwd_pkts}, "
            f"end_reason={self.end_reason!r})"
        )


class FlowTable:
    """Bidirectional flows keyed canonically, in least-recently-seen order."""

    def __init__(self, config: FlowConfig | None = None) -> None:
        self.config = config or FlowConfig()
        self._cic = self.config.profile == "cicids2017"
        self._active_us = self.config.active_us
        self._idle_us = self.config.idle_us
        self._max = self.config.max_flows
        self._flows: OrderedDict[tuple, Flow] = OrderedDict()
        self._next_expire = 0
        #: flows ended because the table was full
        self.evicted = 0
        #: one-packet flows dropped (``cicids2017``), not emitted
        self.dropped_single = 0
        #: emitted flows by end reason
        self.ended: dict[str, int] = dict.fromkeys(END_REASONS, 0)
        #: packets trailing a closed TCP connection, absorbed (``corrected``)
        self.remnants = 0
        #: flows that continue a timed-out one (``corrected``)
        self.continued = 0
        # corrected: key -> close time of connections ended by FIN/RST, and key ->
        # orientation of flows ended by a timeout (bounded, oldest dropped first)
        self._closed: OrderedDict[tuple, int] = OrderedDict()
        self._resume: OrderedDict[tuple, tuple[bytes, bytes, int, int]] = OrderedDict()
        self.context: ContextTracker | None = None if self._cic else ContextTracker()
        self.logins: LoginTracker | None = None if self._cic else LoginTracker()
        self.ports: PortTracker | None = None if self._cic else PortTracker()

    def __len__(self) -> int:
        return len(self._flows)

    def open_flows(self) -> Iterator[Flow]:
        """The live flows, least recently seen first (a snapshot: safe to add while iterating)."""
        return iter(list(self._flows.values()))

    def _end(self, flow: Flow, reason: str, out: list[Flow], key: tuple | None = None) -> None:
        if self._cic:
            if reason != "fin" and flow.fwd_pkts + flow.bwd_pkts == 1:
                self.dropped_single += 1
                return
        elif key is not None:
            if reason in ("fin", "rst"):
                if flow.proto == TCP:
                    closed = self._closed
                    # only the last second matters: drop older closes first (insertion = time order)
                    while closed:
                        old_key, t = next(iter(closed.items()))
                        if flow.last_us - t <= REMNANT_US:
                            break
                        del closed[old_key]
                    _remember(closed, key, flow.last_us)
            elif reason in ("idle", "active"):
                _remember(self._resume, key, (flow.src, flow.dst, flow.sport, flow.dport))
        flow.end_reason = reason
        self.ended[reason] += 1
        out.append(flow)

    def _new(self, key: tuple, pkt: Packet, out: list[Flow], orient: Flow | None = None) -> None:
        flows = self._flows
        if len(flows) >= self._max:
            old_key, old = flows.popitem(last=False)
            self.evicted += 1
            self._end(old, "evicted", out, old_key)
        if orient is not None:
            flow = Flow(self._cic, orient.src, orient.dst, orient.sport, orient.dport, orient.proto)
            fwd = pkt.src == flow.src and pkt.sport == flow.sport
            if not self._cic:
                flow.continued = True
                self.continued += 1
        elif self._cic:
            flow = Flow(True, pkt.src, pkt.dst, pkt.sport, pkt.dport, pkt.proto)
            fwd = True
        else:
            flow, fwd = self._oriented(key, pkt)
        flow.first_packet(pkt, fwd)
        flows[key] = flow
        if self.context is not None:
            flow.context = self.context.observe(flow)
            if flow.proto == TCP:
                # an empty segment: fuzzed test captures (tcpdump's *-oobr.pcap) carry garbage
                # flags with a payload; nmap's probes carry none
                flow.stealth = not pkt.flags & (SYN | ACK | RST) and pkt.payload_len <= PADDING_BYTES
                if flow.handshake or flow.stealth:
                    # only connections seen from their first packet: a capture started
                    # mid-traffic sees idle keep-alive connections (no data: "unanswered") to
                    # one server from many client ports (Angry IP's capture: 6 of them)
                    flow.ports = self.ports.observe(flow)  # type: ignore[union-attr]
                if self.logins.keys:  # type: ignore[union-attr]
                    self.logins.opened(flow)  # type: ignore[union-attr]
            if pkt.data_end > pkt.data:
                self.logins.segment(flow, pkt, fwd)  # type: ignore[union-attr]

    def _oriented(self, key: tuple, pkt: Packet) -> tuple[Flow, bool]:
        """A new ``corrected`` flow for ``pkt`` with its originator (see the module docstring)."""
        proto, flags = pkt.proto, pkt.flags
        syn = proto == TCP and flags & SYN
        if not syn:
            prev = self._resume.pop(key, None)
            if prev is not None:
                src, dst, sport, dport = prev
                flow = Flow(False, src, dst, sport, dport, proto)
                flow.continued = True
                self.continued += 1
                return flow, pkt.src == src and pkt.sport == sport
        if syn and not flags & ACK:
            flow = Flow(False, pkt.src, pkt.dst, pkt.sport, pkt.dport, proto)
            flow.handshake = True
            return flow, True
        if (syn or proto in (TCP, UDP)) and (syn or service_side(pkt.sport, pkt.dport)):
            # a SYN-ACK, or a packet from the service end: the receiver is the originator
            return Flow(False, pkt.dst, pkt.src, pkt.dport, pkt.sport, proto), False
        return Flow(False, pkt.src, pkt.dst, pkt.sport, pkt.dport, proto), True

    def _remnant(self, key: tuple, pkt: Packet) -> bool:
        """True (and counted) when ``pkt`` trails a TCP connection closed less than 1 s ago."""
        closed = self._closed.get(key)
        if closed is None:
            return False
        if pkt.flags & SYN or pkt.ts_us - closed > REMNANT_US:
            del self._closed[key]
            return False
        self.remnants += 1
        return True

    def add(self, pkt: Packet) -> list[Flow]:
        """Add a packet; returns the flows that ended at or before its time.

        The packet's own flow is handled first (so an active timeout continues it
        with the same orientation); then, once per second of capture time, the
        least recently seen flows are checked for timeouts.
        """
        # Runs for every packet: one if/elif chain in one function (no helper call
        # for the common case of a packet of a live flow), attributes read once.
        out: list[Flow] = []
        ts = pkt.ts_us
        src = pkt.src
        dst = pkt.dst
        sp = pkt.sport
        dp = pkt.dport
        if src < dst or (src == dst and sp <= dp):
            key = (pkt.proto, src, sp, dst, dp)
        else:
            key = (pkt.proto, dst, dp, src, sp)
        flows = self._flows
        flow = flows.get(key)
        if flow is None:
            if self._cic:
                self._new(key, pkt, out)
            elif not (self._closed and self._remnant(key, pkt)):
                self._new(key, pkt, out)
                if pkt.flags & RST:
                    self._end(flows.pop(key), "rst", out, key)
        elif ts - flow.first_us > self._active_us:
            del flows[key]
            self._end(flow, "active", out, key)
            if not self._cic:
                self._resume.pop(key, None)
            self._new(key, pkt, out, flow)
        elif self._idle_us and ts - flow.last_us > self._idle_us:
            del flows[key]
            self._end(flow, "fin" if flow.closing else "idle", out, key)
            if not (self._closed and self._remnant(key, pkt)):
                self._new(key, pkt, out)
        else:
            fwd = src == flow.src and sp == flow.sport
            flags = pkt.flags
            if self._cic:
                if flags & FIN:
                    flow.update(pkt, fwd)
                    del flows[key]
                    self._end(flow, "fin", out)
                else:
                    flow.update(pkt, fwd, True)  # with the 2017 active/idle update first
                    flows.move_to_end(key)
            # corrected TCP termination
            elif flow.closing:
                if flags & (SYN | FIN | RST) or not flags & ACK:
                    # not the final ACK of the close (its payload is not checked: Ethernet
                    # padding counts as payload): the old connection is over, and this
                    # packet trails it unless it opens a new one
                    del flows[key]
                    self._end(flow, "fin", out, key)
                    if not self._remnant(key, pkt):
                        self._new(key, pkt, out)
                else:
                    flow.update(pkt, fwd)
                    del flows[key]
                    self._end(flow, "fin", out, key)
            else:
                flow.update(pkt, fwd)
                # logins: the first payload decides the protocol, then the server's segments
                # are read, and an HTTP client's (a protocol none are read for: app < 0)
                if (
                    flow.app >= 0
                    and pkt.data_end > pkt.data
                    and (not fwd or not flow.app or flow.app == HTTP_APP or flow.app == SSH_APP)
                ):
                    self.logins.segment(flow, pkt, fwd)  # type: ignore[union-attr]
                if flags & RST:
                    del flows[key]
                    self._end(flow, "rst", out, key)
                else:
                    if flags & FIN and flow.fin_fwd and flow.fin_bwd:
                        flow.closing = True
                    flows.move_to_end(key)
        if ts >= self._next_expire:
            self._next_expire = ts + 1_000_000
            self._expire(ts, out)
        return out

    def _expire(self, now_us: int, out: list[Flow]) -> None:
        flows = self._flows
        active = self._active_us
        idle = self._idle_us
        while flows:
            key, flow = next(iter(flows.items()))
            if now_us - flow.first_us > active:
                reason = "active"
            elif idle and now_us - flow.last_us > idle:
                reason = "fin" if flow.closing else "idle"
            else:
                break
            del flows[key]
            self._end(flow, reason, out, key)

    def expire(self, now_us: int) -> list[Flow]:
        """End flows that timed out by ``now_us`` (µs, capture time).

        Only the least recently seen end of the table is examined, so the call is
        cheap; a flow past its active timeout but seen recently ends at its next
        packet or when it reaches that end.
        """
        out: list[Flow] = []
        self._expire(now_us, out)
        return out

    def flush(self) -> list[Flow]:
        """End every flow (reason ``end-of-input``), oldest first."""
        out: list[Flow] = []
        flows = self._flows
        self._flows = OrderedDict()
        for flow in flows.values():
            self._end(flow, "fin" if flow.closing else "end-of-input", out)
        return out


def _remember(memory: OrderedDict, key: tuple, value: object) -> None:
    """Set ``memory[key]`` as its newest entry, dropping the oldest past ``_MEMORY_KEYS``."""
    if key in memory:
        memory.move_to_end(key)
    elif len(memory) >= _MEMORY_KEYS:
        memory.popitem(last=False)
    memory[key] = value
