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

In the ``cicids2017`` profile, flows of one packet are dropped (as the 2017 build
did) whenever they end by a timeout, eviction or end of input; they are counted in
``FlowTable.dropped_single``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from edge_nids.flows.features import FlowFeatures
from edge_nids.flows.packet import ACK, FIN, RST, SYN, Packet, format_ip
from edge_nids.flows.schema import PROFILES

__all__ = ["END_REASONS", "Flow", "FlowConfig", "FlowTable"]

#: Why a flow ended.
END_REASONS: tuple[str, ...] = ("fin", "rst", "idle", "active", "evicted", "end-of-input")

#: Default idle timeout of the ``corrected`` profile, s.
DEFAULT_IDLE_TIMEOUT_S = 60.0


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

    __slots__ = ("closing", "dport", "dst", "end_reason", "proto", "sport", "src")

    def __init__(self, cic: bool, src: bytes, dst: bytes, sport: int, dport: int, proto: int) -> None:
        FlowFeatures.__init__(self, cic)  # not super(): one object fewer per new flow
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.proto = proto
        self.end_reason = ""
        self.closing = False

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

    def __len__(self) -> int:
        return len(self._flows)

    def open_flows(self) -> Iterator[Flow]:
        """The live flows, least recently seen first (a snapshot: safe to add while iterating)."""
        return iter(list(self._flows.values()))

    def _end(self, flow: Flow, reason: str, out: list[Flow]) -> None:
        if self._cic and reason != "fin" and flow.fwd_pkts + flow.bwd_pkts == 1:
            self.dropped_single += 1
            return
        flow.end_reason = reason
        self.ended[reason] += 1
        out.append(flow)

    def _new(self, key: tuple, pkt: Packet, out: list[Flow], orient: Flow | None = None) -> None:
        flows = self._flows
        if len(flows) >= self._max:
            _, old = flows.popitem(last=False)
            self.evicted += 1
            self._end(old, "evicted", out)
        if orient is None:
            flow = Flow(self._cic, pkt.src, pkt.dst, pkt.sport, pkt.dport, pkt.proto)
            fwd = True
        else:
            flow = Flow(self._cic, orient.src, orient.dst, orient.sport, orient.dport, orient.proto)
            fwd = pkt.src == flow.src and pkt.sport == flow.sport
        flow.first_packet(pkt, fwd)
        flows[key] = flow

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
            self._new(key, pkt, out)
            if pkt.flags & RST and not self._cic:
                self._end(flows.pop(key), "rst", out)
        elif ts - flow.first_us > self._active_us:
            del flows[key]
            self._end(flow, "active", out)
            self._new(key, pkt, out, flow)
        elif self._idle_us and ts - flow.last_us > self._idle_us:
            del flows[key]
            self._end(flow, "fin" if flow.closing else "idle", out)
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
                    # padding counts as payload): the old connection is over
                    del flows[key]
                    self._end(flow, "fin", out)
                    self._new(key, pkt, out)
                else:
                    flow.update(pkt, fwd)
                    del flows[key]
                    self._end(flow, "fin", out)
            else:
                flow.update(pkt, fwd)
                if flags & RST:
                    del flows[key]
                    self._end(flow, "rst", out)
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
            self._end(flow, reason, out)

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
