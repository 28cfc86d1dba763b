"""Escalation: hosts that keep raising alerts have their next flows judged at a lower threshold.

A scan, a flood or a password-guessing run is many flows from one source to its victim, and
the model scores each on its own: on the public attack captures many of a scanner's or a
guesser's flows score just below the threshold (masscan, held out: 55 % of its 600 flows
under the threshold of 0.934, and 94 % of all of them at 0.5 or more). Once a source has
raised ``alerts`` alerts against one destination within ``window_s`` seconds, its next flows
to that destination alert from score ``threshold`` (below the model's) on, and say so in
``alert.context.escalated``. On the held-out ``benign_public`` replays, 6 alerts in 300 s
flagged no benign flow that the model's own threshold (0.934) had not, whether escalated
flows then alert from 0.5, 0.1 or 0.05 (the shipped rule, docs/detection.md "Escalation
sweep": 87.4 % of the attacker flows of the public scan, flood, brute-force and slow-DoS
captures flagged against 84.0 % at 0.5; an SSH password guesser 97.6 % against 32 %). The
300 s window (against 60 s) keeps a slow DoS escalated, whose connections alert minutes
apart: ``kihy_slowloris`` 91.7 → 99.7 %, and no benign flow more in seven trainings.

Keyed by the (source, destination) pair, measured against the alternatives on the held-out
replays of two trainings of the same recipe (seeds 42 and 43, docs/detection.md):

* by the source alone, a benign host the model misjudges has all its other flows escalated
  too: the seed-43 model, which flags a P2P client's peer connections (``ndpi_gnutella``),
  went from 4.6 to 8.6 % of benign flows flagged; keyed by the pair, to 4.9 %, with the same
  gains on the attacks (a scanner, a flood or a guesser works against one victim; a sweep
  across hosts scores high on its own);
* by the destination alone, a server under attack has its benign clients' flows escalated
  (tried on the lab test runs: 9 benign flows flagged instead of 1).

A spoofed flood's sources raise one alert each and never escalate as pairs. The rule's
``flood`` part covers it: once alerts against one destination were raised by ``sources``
distinct sources within its window, every flow to that destination alerts from its own
``threshold`` on. 10 sources in 10 s, then 0.5: ``sop_syn_flood`` (held out) 89.8 → 95.3 %,
and not one benign flow more on the held-out replays of seven trainings, nor on the lab
test runs (docs/detection.md "Flood escalation sweep", docs/agent.md). Counting distinct
sources is what keeps a single loud client from escalating its server; the high score keeps
a flooded server's own clients from alerting on anything but unusual flows.

Both need alerts to start from. The ``volume`` part does not: a flow whose service
(destination address, port, protocol) had started ``rate`` flows per 10 s (the decayed
``Svc Flow Rate``), with ``sources`` distinct originators and ``unanswered`` unanswered
flows among its last 32, alerts whatever its score. 200 flows, 16 sources, 16 unanswered:
no held-out benign flow of ``benign_public`` reaches a rate of 125, the lab's busiest
benign service has 5 sources; THC-IPv6 neighbour-discovery floods, which the model scores
as ordinary router and neighbour advertisements, are caught 97-99 % (docs/agent.md). It
reads the flow's context, which the flow meter keeps bounded, and keeps nothing itself.

The ``sweep`` part is the same for one source sweeping a subnet (Angry IP's pings and
connect probes, which the model scores as ordinary flows): a flow whose source had, in the
10 s before, started flows to ``hosts`` other addresses of the flow's destination /24 (/64),
``unanswered`` of them with an unanswered flow (``flow.sweep``, ``edge_nids.flows.context``),
alerts whatever its score. 8 hosts, 6 unanswered: Angry IP (held out) 0 → 66 % of its flows,
no benign flow of seven trainings' held-out replays, of the lab test runs or of the other
packages' test captures more (docs/detection.md "Sweep rule sweep"); a P2P client's many
unanswered peers never share a /24. With ``source_s`` (60 s), every flow of a source whose
flow met it and alerted alerts too for that long: Angry IP's reverse-DNS lookups of the
hosts it probes, 190 -> 280 of its 286 flows with no model score counted.

The ``logins`` part reads what a server said, and what an HTTP client tried: a flow whose
server had refused its client ``refused`` logins more than it accepted in the 300 s up to
one of its replies (MQTT CONNACK "not authorised", HTTP 401, FTP 530, SMTP 535, and POP3,
IMAP, Telnet, MySQL, PostgreSQL, SMB and Redis failures, SSH's late answers), or whose client had submitted
``tried`` distinct user/password pairs to that server in HTTP requests in those 300 s (a
login form answers every try with a 200 page; ``flow.logins``, ``edge_nids.flows.logins``),
alerts whatever its score from then on, as brute force. 5 and 5: the slow MQTT guesser of
``mqttset_bruteforce`` (held out; one try every 1.5 s, each connection shaped like a
sensor's reconnect) 0 → 99.7 % of its flows, Burp Intruder against a login form 9.4 → 96.2
%, no benign flow of seven trainings' held-out replays, of the lab test runs or of the other
packages' test captures more (docs/detection.md "Login rule sweep"); in all of
``benign_public`` two refusals and no password submitted.

The ``ports`` part is a slow port scan's: a TCP flow whose source's latest connections to
``ports`` other ports of its destination, started in the 300 s before, went unanswered, or
that opens with a FIN, NULL or Xmas probe (``flow.ports``, ``flow.stealth``,
``edge_nids.flows.context.PortTracker``), alerts whatever its score, as a port scan. 4 ports:
nDPI's 7-probe scan over 40 s (held out: the model flagged 2) alerts on its last three,
no flow of ``benign_public``, of the other packages' test captures or of the demo's benign
traffic has more than 1 such port, and none opens with such a probe (docs/agent.md).

The ``rate`` part is a flood inside one 5-tuple, which is one flow however many packets it
carries: a flow one side of which has sent ``packets`` packets of one payload size, at
``pps`` a second or more on average, to a unicast address that sent back at most one for
every ten, alerts whatever its score (:class:`RateRule`). 1,000 and 1,000: the agent's
``udp_flood`` scenario (2,000 datagrams a second, scored 0.04) alerts 1 s in, THC-IPv6's
``flood_unreach6`` and ``flood_redir6`` alert; no flow of ``benign_public``, of the other
packages' test captures or of the demo capture sends 1,000 packets one way at that rate
(docs/agent.md).

Memory is bounded: at most ``max_keys`` pairs (least recently alerting forgotten first),
each with its last ``alerts`` alert times, and at most ``max_keys`` destinations, each with
its last ``flood.sources`` distinct alerting sources.

The agent's pipeline and the evaluation (``edge-nids detection``, which replays captures and
judges every threshold afterwards) use this same class, so the figures describe the agent.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edge_nids.flows.context import PORTS_WINDOW_US, unicast
from edge_nids.flows.logins import APP_NAMES, LOGIN_WINDOW_US
from edge_nids.flows.schema import EDGE_FLOWS

__all__ = [
    "DEFAULT_MAX_KEYS",
    "VOLUME_COLUMNS",
    "VOLUME_IDX",
    "EscalationRule",
    "Escalator",
    "FloodRule",
    "LoginRule",
    "PortScanRule",
    "RateRule",
    "SweepRule",
    "VolumeRule",
    "flag_checks",
    "rate_values",
]

#: (source, destination) pairs whose recent alerts are remembered (~0.3 KiB each), and as
#: many destinations with their recently alerting sources.
DEFAULT_MAX_KEYS = 1024


def _number(d: Mapping[str, Any], name: str, where: str, lo: float, hi: float | None, strict: bool) -> float:
    v = d[name]
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) and (v > lo if strict else v >= lo)
    if ok and hi is not None:
        ok = v <= hi
    if not ok:
        want = f"in [{lo:g}, {hi:g}]" if hi is not None else f"a number > {lo:g}"
        raise ValueError(f"{where}.{name} must be {want}, got {v!r}")
    return float(v)


def _whole(d: Mapping[str, Any], name: str, where: str) -> int:
    v = d[name]
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{where}.{name} must be a whole number >= 1, got {v!r}")
    return v


def _object(d: Any, where: str, keys: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise ValueError(f"{where} must be an object, got {type(d).__name__}")
    missing = [k for k in keys if k not in d]
    if missing:
        raise ValueError(f"{where} lacks {', '.join(missing)}")
    return d


@dataclass(frozen=True)
class FloodRule:
    """Alerts against one destination from ``sources`` distinct sources within ``window_s`` s
    lower the threshold of every flow to that destination to ``threshold``."""

    sources: int
    window_s: float
    threshold: float

    @classmethod
    def from_dict(cls, d: Any) -> FloodRule:
        """From a bundle's ``escalation.flood`` object; ValueError naming what is wrong."""
        w = "escalation.flood"
        d = _object(d, w, ("sources", "window_s", "threshold"))
        return cls(
            _whole(d, "sources", w),
            _number(d, "window_s", w, 0, None, True),
            _number(d, "threshold", w, 0, 1, False),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"sources": self.sources, "window_s": self.window_s, "threshold": self.threshold}


@dataclass(frozen=True)
class VolumeRule:
    """A flow whose service (destination address, port, protocol) started at least ``rate``
    flows per 10 s (``Svc Flow Rate``), from at least ``sources`` distinct originators and
    with at least ``unanswered`` of them unanswered among its last 32 flows in 10 s (``Svc
    Recent Sources``, ``Svc Recent Unanswered``), alerts whatever its score: a flood from
    spoofed sources that the model scores as ordinary one-packet flows."""

    rate: float
    sources: int
    unanswered: int

    @classmethod
    def from_dict(cls, d: Any) -> VolumeRule:
        """From a bundle's ``escalation.volume`` object; ValueError naming what is wrong."""
        w = "escalation.volume"
        d = _object(d, w, ("rate", "sources", "unanswered"))
        return cls(_number(d, "rate", w, 0, None, True), _whole(d, "sources", w), _whole(d, "unanswered", w))

    def to_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "sources": self.sources, "unanswered": self.unanswered}

    def matches(self, rate: Any, sources: Any, unanswered: Any) -> Any:
        """Whether a flow's context values meet the rule: a bool for numbers, a bool array for
        arrays (one element per flow)."""
        return (rate >= self.rate) & (sources >= self.sources) & (unanswered >= self.unanswered)

    @staticmethod
    def why(rate: float, sources: float, unanswered: float) -> dict[str, Any]:
        """The ``alert.context.escalated`` object of a flow the rule flags: its own values."""
        return {
            "service_flow_rate": round(rate),
            "service_sources": int(sources),
            "service_unanswered": int(unanswered),
        }


@dataclass(frozen=True)
class SweepRule:
    """A flow whose originator, in the 10 s before it, started flows to at least ``hosts``
    other addresses of the flow's destination network (its /24, or /64 for IPv6), at least
    ``unanswered`` of those addresses with an unanswered flow, alerts whatever its score: a
    host-discovery sweep (ICMP echo and connect probes across a subnet), whose flows each
    look ordinary. Reads ``flow.sweep`` (``edge_nids.flows.context``). With ``source_s``,
    every flow of a source that had a flow meeting it alert in the ``source_s`` seconds
    before alerts too, wherever it goes: a sweeping host's reverse-DNS lookups of the hosts
    it probes, and its other probes, are the sweep's."""

    hosts: int
    unanswered: int
    source_s: float = 0.0

    @classmethod
    def from_dict(cls, d: Any) -> SweepRule:
        """From a bundle's ``escalation.sweep`` object; ValueError naming what is wrong."""
        w = "escalation.sweep"
        d = _object(d, w, ("hosts", "unanswered"))
        source_s = _number(d, "source_s", w, 0, None, False) if d.get("source_s") is not None else 0.0
        rule = cls(_whole(d, "hosts", w), _whole(d, "unanswered", w), source_s)
        if rule.unanswered > rule.hosts:
            raise ValueError(f"{w}.unanswered ({rule.unanswered}) cannot exceed {w}.hosts ({rule.hosts})")
        return rule

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"hosts": self.hosts, "unanswered": self.unanswered}
        if self.source_s:
            d["source_s"] = self.source_s
        return d

    def matches(self, hosts: int, unanswered: int) -> bool:
        """Whether a flow's ``sweep`` values meet the rule."""
        return hosts >= self.hosts and unanswered >= self.unanswered

    @staticmethod
    def why(hosts: int, unanswered: int) -> dict[str, Any]:
        """The ``alert.context.escalated`` object of a flow the rule flags: its own values."""
        return {"subnet_hosts": int(hosts), "subnet_unanswered": int(unanswered)}


@dataclass(frozen=True)
class PortScanRule:
    """A TCP flow alerts whatever its score, as a port scan, when its originator's latest
    flows to at least ``ports`` other ports of its destination, started in the 300 s before
    it, were left unanswered (refused, half-open, or a handshake without data), or, with
    ``stealth``, when its first packet carried none of SYN, ACK and RST (nmap's FIN, NULL
    and Xmas probes, which no TCP stack sends). Reads ``flow.ports`` and ``flow.stealth``
    (``edge_nids.flows.context.PortTracker``): a slow scan, whose probes come seconds apart
    and each look like one refused connection."""

    ports: int
    stealth: bool = True

    @classmethod
    def from_dict(cls, d: Any) -> PortScanRule:
        """From a bundle's ``escalation.ports`` object; ValueError naming what is wrong."""
        w = "escalation.ports"
        d = _object(d, w, ("ports",))
        stealth = d.get("stealth", True)
        if not isinstance(stealth, bool):
            raise ValueError(f"{w}.stealth must be true or false, got {stealth!r}")
        return cls(_whole(d, "ports", w), stealth)

    def to_dict(self) -> dict[str, Any]:
        return {"ports": self.ports, "stealth": self.stealth}

    def matches(self, ports: int, stealth: bool) -> bool:
        """Whether a flow's ``ports`` and ``stealth`` meet the rule."""
        return ports >= self.ports or (self.stealth and stealth)

    @staticmethod
    def why(ports: int, stealth: bool) -> dict[str, Any]:
        """The ``alert.context.escalated`` object of a flow the rule flags: its own values."""
        return {
            "host_ports_unanswered": int(ports),
            "stealth_probe": bool(stealth),
            "window_s": PORTS_WINDOW_US // 1_000_000,
        }


def rate_values(flow: Any) -> tuple[int, int, int, bool, bool, bool]:
    """What a rate rule reads of a flow now, for its busier side: the packets that side sent,
    the packets the other side sent, the flow's age (µs), whether that side's packets all
    carried the same payload size, whether they went to a unicast address, and whether that
    side is the flow's source. Either side: an ICMPv6 flood shares its flow (ICMP has no
    ports) with the victim's neighbour advertisement, which can come first and make the
    victim the flow's source (THC-IPv6's ``flood_unreach6``, docs/agent.md)."""
    fwd = flow.bwd_pkts <= flow.fwd_pkts
    if fwd:
        sent, back, same, to = flow.fwd_pkts, flow.bwd_pkts, flow.fl_min == flow.fl_max, flow.dst
    else:
        sent, back, same, to = flow.bwd_pkts, flow.fwd_pkts, flow.bl_min == flow.bl_max, flow.src
    return sent, back, flow.last_us - flow.first_us, same, unicast(to), fwd


@dataclass(frozen=True)
class RateRule:
    """A flow alerts whatever its score once one side of it has sent at least ``packets``
    packets, at ``pps`` packets per second or more on average since the flow's first, all with
    the same payload size, to a unicast address that sent back at most one packet for every
    ten: a flood inside one 5-tuple (one source port, one destination port), which is one flow
    however many packets it carries, and which the model scores as one busy flow. Reads the
    flow's own counters (:func:`rate_values`)."""

    packets: int
    pps: float

    @classmethod
    def from_dict(cls, d: Any) -> RateRule:
        """From a bundle's ``escalation.rate`` object; ValueError naming what is wrong."""
        w = "escalation.rate"
        d = _object(d, w, ("packets", "pps"))
        return cls(_whole(d, "packets", w), _number(d, "pps", w, 0, None, True))

    def to_dict(self) -> dict[str, Any]:
        return {"packets": self.packets, "pps": self.pps}

    def matches(
        self, sent: int, back: int, age_us: int, same_size: bool, to_unicast: bool, from_source: bool = True
    ) -> bool:
        """Whether a flow's :func:`rate_values` meet the rule (whichever side sent them)."""
        return (
            to_unicast
            and same_size
            and sent >= self.packets
            and 10 * back <= sent
            and sent * 1_000_000 >= self.pps * max(age_us, 1)
        )

    @staticmethod
    def why(
        sent: int, back: int, age_us: int, same_size: bool, to_unicast: bool, from_source: bool = True
    ) -> dict[str, Any]:
        """The ``alert.context.escalated`` object of a flow the rule flags: its own values."""
        return {
            "flow_packets": int(sent),
            "packets_back": int(back),
            "packets_per_s": round(sent * 1_000_000 / max(age_us, 1)),
            "sent_by": "source" if from_source else "destination",
        }


@dataclass(frozen=True)
class LoginRule:
    """A flow alerts whatever its score, from one of its replies or requests on, as brute
    force, when at that moment its server had refused its client at least ``refused`` logins
    more than it accepted in the 300 s before (MQTT CONNACK "not authorised", HTTP 401, FTP
    530, SMTP 535, and the failures of the other protocols ``flows.logins`` reads), or its
    client had submitted at least ``tried`` distinct credentials to that server in HTTP
    requests in those 300 s (a login form, which answers a wrong password with an ordinary
    page). Reads ``flow.logins`` (``edge_nids.flows.logins``): a password
    guesser, however slow, whose connections each look like an ordinary login."""

    refused: int
    tried: int | None = None

    @classmethod
    def from_dict(cls, d: Any) -> LoginRule:
        """From a bundle's ``escalation.logins`` object; ValueError naming what is wrong."""
        w = "escalation.logins"
        d = _object(d, w, ("refused",))
        tried = _whole(d, "tried", w) if d.get("tried") is not None else None
        return cls(_whole(d, "refused", w), tried)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"refused": self.refused}
        if self.tried is not None:
            d["tried"] = self.tried
        return d

    def since(self, logins: Sequence[tuple[int, int, int]]) -> int | None:
        """The capture time (µs) of the first of a flow's ``logins`` that meets the rule, or None."""
        tried = self.tried if self.tried is not None else 1 << 62
        return next((t for t, n, c in logins if n >= self.refused or c >= tried), None)

    @staticmethod
    def why(logins: Sequence[tuple[int, int, int]], app: int) -> dict[str, Any]:
        """The ``alert.context.escalated`` object of a flow the rule flags: the most refused
        logins and distinct credentials tried that its replies and requests counted, the
        window and the protocol."""
        return {
            "refused_logins": max(n for _, n, _ in logins),
            "credentials_tried": max(c for _, _, c in logins),
            "window_s": LOGIN_WINDOW_US // 1_000_000,
            "protocol": APP_NAMES.get(abs(app), "tcp"),
        }


#: The flow context columns a :class:`VolumeRule` reads (schema ``edge-flows-94``), in order,
#: and where they are in an ``EDGE_FLOWS`` row.
VOLUME_COLUMNS = ("Svc Flow Rate", "Svc Recent Sources", "Svc Recent Unanswered")
VOLUME_IDX = [EDGE_FLOWS.index(c) for c in VOLUME_COLUMNS]


@dataclass(frozen=True)
class EscalationRule:
    """``alerts`` alerts from one source against one destination within ``window_s`` s lower
    the threshold of its flows to that destination to ``threshold``; with ``flood``, alerts
    against one destination from many sources lower the threshold of all its flows; with
    ``volume``, a flow to a service flooded by many unanswered sources alerts at any score;
    with ``sweep``, so does a flow of a source sweeping the destination's subnet; with
    ``logins``, so does a flow whose server keeps refusing its client's logins; with
    ``ports``, so does a TCP flow of a source probing many ports of its destination."""

    alerts: int
    window_s: float
    threshold: float
    flood: FloodRule | None = None
    volume: VolumeRule | None = None
    sweep: SweepRule | None = None
    logins: LoginRule | None = None
    ports: PortScanRule | None = None
    rate: RateRule | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EscalationRule:
        """From a bundle's ``escalation`` object; ValueError naming what is wrong."""
        w = "escalation"
        d = _object(d, w, ("alerts", "window_s", "threshold"))
        flood = FloodRule.from_dict(d["flood"]) if d.get("flood") is not None else None
        volume = VolumeRule.from_dict(d["volume"]) if d.get("volume") is not None else None
        sweep = SweepRule.from_dict(d["sweep"]) if d.get("sweep") is not None else None
        logins = LoginRule.from_dict(d["logins"]) if d.get("logins") is not None else None
        ports = PortScanRule.from_dict(d["ports"]) if d.get("ports") is not None else None
        rate = RateRule.from_dict(d["rate"]) if d.get("rate") is not None else None
        return cls(
            _whole(d, "alerts", w),
            _number(d, "window_s", w, 0, None, True),
            _number(d, "threshold", w, 0, 1, False),
            flood,
            volume,
            sweep,
            logins,
            ports,
            rate,
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"alerts": self.alerts, "window_s": self.window_s, "threshold": self.threshold}
        if self.flood is not None:
            d["flood"] = self.flood.to_dict()
        if self.volume is not None:
            d["volume"] = self.volume.to_dict()
        if self.sweep is not None:
            d["sweep"] = self.sweep.to_dict()
        if self.logins is not None:
            d["logins"] = self.logins.to_dict()
        if self.ports is not None:
            d["ports"] = self.ports.to_dict()
        if self.rate is not None:
            d["rate"] = self.rate.to_dict()
        return d

    @property
    def any_score(self) -> bool:
        """Whether a part alerts whatever the score (volume, sweep, logins, ports, rate)."""
        return any(p is not None for p in (self.volume, self.sweep, self.logins, self.ports, self.rate))

    @property
    def low(self) -> float:
        """The lowest score an escalated flow can alert from."""
        return min(self.threshold, self.flood.threshold) if self.flood is not None else self.threshold

    def describe(self) -> str:
        """For the log: ``6 alerts in 60 s between two hosts, then from 0.05; ...``."""
        text = f"{self.alerts} alerts in {self.window_s:g} s between two hosts, then from {self.threshold:g}"
        if self.flood is not None:
            f = self.flood
            text += f"; alerts from {f.sources} sources against one host in {f.window_s:g} s"
            text += f", then from {f.threshold:g}"
        if self.volume is not None:
            v = self.volume
            text += (
                f"; any flow to a service of >= {v.rate:g} flows/10 s from >= {v.sources} sources, "
                f">= {v.unanswered} unanswered"
            )
        if self.sweep is not None:
            sw = self.sweep
            text += (
                f"; any flow of a source that just contacted >= {sw.hosts} other hosts of the "
                f"destination's subnet, >= {sw.unanswered} unanswered"
            )
            if sw.source_s:
                text += f", then any flow of that source for {sw.source_s:g} s"
        if self.logins is not None:
            lg = self.logins
            text += f"; any flow whose server refused its client >= {lg.refused} logins in 300 s"
            if lg.tried is not None:
                text += f", or whose client tried >= {lg.tried} credentials on it"
        if self.ports is not None:
            pr = self.ports
            text += (
                f"; any TCP flow of a source that left >= {pr.ports} other ports of its destination "
                "unanswered in 300 s"
            )
            if pr.stealth:
                text += ", or that opens with a FIN, NULL or Xmas probe"
        if self.rate is not None:
            rt = self.rate
            text += (
                f"; any flow one side of which sent >= {rt.packets} same-size packets at >= "
                f"{rt.pps:g}/s to a unicast address with <= 1 in 10 back"
            )
        return text


class Escalator:
    """The recent alerts of each (source, destination) pair and of each destination, and
    whether a flow is escalated now.

    Keys are any hashable (the agent and the evaluation use ``(src, dst)`` packed addresses;
    a rule with ``flood`` needs that pair).
    """

    def __init__(self, rule: EscalationRule, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.rule = rule
        self._k = rule.alerts
        self._window_us = int(rule.window_s * 1_000_000)
        self._max = max(1, int(max_keys))
        # key -> its last (up to k) alert times, µs; a plain dict in least-recently-alerting
        # order (a tuple per key: a 30,000-source spoofed flood churns this, and a deque in an
        # OrderedDict cost 4 MiB more peak memory there, 17.6 against 13.7 MiB)
        self._recent: dict[Hashable, tuple[int, ...]] = {}
        # destination -> {source: its last alert time, µs}: the destination's most recently
        # alerting distinct sources, at most flood.sources of them, oldest first. Enough to
        # tell whether that many sources alerted within the window: the oldest of them did
        # last alert inside it. Bounded like the pairs: at most max_keys destinations.
        self._flood = rule.flood
        self._flood_window_us = int(rule.flood.window_s * 1_000_000) if rule.flood else 0
        self._dsts: dict[Hashable, dict[Hashable, int]] = {}
        # source -> the last time one of its flows that met the sweep rule alerted, µs: with
        # the rule's source_s, its other flows alert too (at most max_keys sources, the least
        # recently sweeping forgotten first)
        sweep = rule.sweep
        self._sweep_us = int(sweep.source_s * 1_000_000) if sweep is not None and sweep.source_s else 0
        self._sweeping: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self._recent)

    def escalated(self, key: Hashable, now_us: int) -> int:
        """How many alerts ``key`` raised in the window before ``now_us`` if that is at least
        the rule's count (its flows are escalated), else 0."""
        q = self._recent.get(key)
        if q is None or len(q) < self._k or now_us - q[0] > self._window_us:
            return 0
        return len(q)

    def flooded(self, dst: Hashable, now_us: int) -> int:
        """How many distinct sources alerted against ``dst`` within the flood rule's window
        before ``now_us`` if that is at least its count, else 0 (and 0 without a flood rule)."""
        srcs = self._dsts.get(dst)
        if srcs is None or self._flood is None or len(srcs) < self._flood.sources:
            return 0
        if now_us - next(iter(srcs.values())) > self._flood_window_us:
            return 0
        return len(srcs)

    def sweeping(self, src: Hashable, now_us: int) -> dict[str, Any] | None:
        """With the sweep rule's ``source_s``: the ``alert.context.escalated`` object of a flow
        of ``src`` at ``now_us`` if a flow of ``src`` that met the sweep rule alerted in the
        ``source_s`` before, else None."""
        t = self._sweeping.get(src)
        if t is None or now_us - t > self._sweep_us:
            return None
        return {"source_sweeping": True, "last_sweep_alert_s": round((now_us - t) / 1e6, 3)}

    def why(self, key: tuple[Hashable, Hashable], score: float, now_us: int) -> dict[str, Any] | None:
        """Why a flow of ``key`` = ``(src, dst)`` scoring ``score`` (below the model's
        threshold) alerts now: its ``alert.context.escalated`` object, or None (it does not)."""
        rule = self.rule
        if score >= rule.threshold:
            n = self.escalated(key, now_us)
            if n:
                return {"pair_alerts": n, "window_s": rule.window_s, "threshold": rule.threshold}
        f = self._flood
        if f is not None and score >= f.threshold:
            n = self.flooded(key[1], now_us)
            if n:
                return {"destination_sources": n, "window_s": f.window_s, "threshold": f.threshold}
        return None

    def alerted(self, key: Hashable, now_us: int, swept: bool = False) -> None:
        """Record an alert raised by ``key`` at ``now_us``; ``swept``: by a flow that meets the
        sweep rule (whatever made it alert), which marks its source as sweeping."""
        if swept and self._sweep_us:
            src = key[0]  # type: ignore[index]
            self._sweeping.pop(src, None)
            if len(self._sweeping) >= self._max:
                del self._sweeping[next(iter(self._sweeping))]
            self._sweeping[src] = now_us
        recent = self._recent
        q = recent.pop(key, None)
        if q is None:
            if len(recent) >= self._max:
                del recent[next(iter(recent))]  # the least recently alerting key
            recent[key] = (now_us,)
        else:
            recent[key] = (*q[1:], now_us) if len(q) >= self._k else (*q, now_us)  # len(q) <= k
        if self._flood is not None:
            src, dst = key  # type: ignore[misc]
            dsts = self._dsts
            srcs = dsts.pop(dst, None)
            if srcs is None:
                if len(dsts) >= self._max:
                    del dsts[next(iter(dsts))]  # the least recently alerted-against destination
                srcs = {}
            srcs.pop(src, None)
            srcs[src] = now_us
            if len(srcs) > self._flood.sources:
                del srcs[next(iter(srcs))]  # the least recently alerting source
            dsts[dst] = srcs


def flag_checks(
    checks: Sequence[Sequence[tuple[int, float]]],
    keys: Sequence[Hashable],
    threshold: float,
    rule: EscalationRule | None,
    forced: Sequence[int | None] | None = None,
    swept: Sequence[bool] | None = None,
) -> list[int | None]:
    """Per flow, the capture time (µs) of its first check that alerts, or None.

    ``checks[i]``: flow ``i``'s classifications (time µs, score) as the agent made them (a
    replay with nothing alerting, so every check is made); ``keys[i]``: its escalation key
    (``(src, dst)``); ``forced[i]``: the capture time from which the flow meets a part of
    ``rule`` that alerts whatever the score (0 for ``volume``, ``sweep`` and ``ports``, which
    its context meets from its start; its reply's time for ``logins``), or None. A check alerts at
    ``threshold``, at any score from ``forced[i]`` on, or when :meth:`Escalator.why` says it
    is escalated by the alerts before it, taken in time order as the agent takes them.
    ``swept[i]``: flow ``i`` meets ``rule.sweep``; with its ``source_s``, a check also alerts
    when :meth:`Escalator.sweeping` says its source is sweeping.
    """
    if rule is None or not rule.any_score:
        forced = None
    tagging = rule is not None and rule.sweep is not None and bool(rule.sweep.source_s) and bool(swept)
    if rule is None or (rule.low >= threshold and forced is None and not tagging):
        return [next((t for t, s in c if s >= threshold), None) for c in checks]
    esc = Escalator(rule)
    low = -1.0 if tagging else min(rule.low, threshold)  # a sweeping source's flows alert at any score
    never = 1 << 62
    due = [never if f is None else f for f in forced] if forced is not None else [never] * len(checks)
    sw = swept if tagging else [False] * len(checks)
    events: Iterable[tuple[int, int, float]] = sorted(
        (t, i, s) for i, c in enumerate(checks) for t, s in c if s >= low or t >= due[i]
    )
    out: list[int | None] = [None] * len(checks)
    for t, i, s in events:
        if out[i] is not None:
            continue
        k = keys[i]
        if (
            s >= threshold
            or t >= due[i]
            or esc.why(k, s, t) is not None  # type: ignore[arg-type]
            or (tagging and esc.sweeping(k[0], t) is not None)  # type: ignore[index]
        ):
            out[i] = t
            esc.alerted(k, t, sw[i])  # type: ignore[index]
    return out
