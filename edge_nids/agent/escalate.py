"""Escalation: a source that keeps raising alerts has its next flows judged at a lower threshold.

A scan, a flood or a password-guessing run is many flows from one source, and the model
scores each on its own: on the public attack captures many of a scanner's or a guesser's
flows score just below the threshold (masscan, held out: 55 % of its 600 flows under the
threshold of 0.934, and 94 % of all of them at 0.5 or more). Once a source has raised
``alerts`` alerts within ``window_s`` seconds, a flow of it that scores at least
``threshold`` (below the model's) alerts too, and says so in ``alert.context.escalated``.
Benign sources rarely raise several alerts a minute, so their flows keep the model's
threshold: on the held-out ``benign_public`` replays, 6 alerts in 60 s at 0.5 flagged no
benign flow that the model's own threshold (0.934) had not; docs/detection.md gives the
measurement.

Keyed by the flow's source address only: keyed by its destination too, a server under
attack would have its benign clients' flows escalated (tried on the lab test runs at a
threshold of 0.9375: 9 benign flows flagged instead of 1). A spoofed flood's sources raise
one alert each and never escalate: such a flood is caught by the scores of its own flows
(`sop_syn_flood`: 90 %).

Memory is bounded: at most ``max_sources`` sources (least recently alerting forgotten first),
each with its last ``alerts`` alert times.

The agent's pipeline and the evaluation (``edge-nids detection``, which replays captures and
judges every threshold afterwards) use this same class, so the figures describe the agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_MAX_SOURCES", "EscalationRule", "Escalator", "flag_checks"]

#: Sources whose recent alerts are remembered (~0.3 KiB each).
DEFAULT_MAX_SOURCES = 1024


@dataclass(frozen=True)
class EscalationRule:
    """``alerts`` alerts from one source within ``window_s`` s lower its flows' threshold to
    ``threshold``."""

    alerts: int
    window_s: float
    threshold: float

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EscalationRule:
        """From a bundle's ``escalation`` object; ValueError naming what is wrong."""
        if not isinstance(d, Mapping):
            raise ValueError(f"escalation must be an object, got {type(d).__name__}")
        missing = [k for k in ("alerts", "window_s", "threshold") if k not in d]
        if missing:
            raise ValueError(f"escalation lacks {', '.join(missing)}")
        alerts, window, thr = d["alerts"], d["window_s"], d["threshold"]
        if isinstance(alerts, bool) or not isinstance(alerts, int) or alerts < 1:
            raise ValueError(f"escalation.alerts must be a whole number >= 1, got {alerts!r}")
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not window > 0:
            raise ValueError(f"escalation.window_s must be a number > 0, got {window!r}")
        if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0.0 <= thr <= 1.0:
            raise ValueError(f"escalation.threshold must be in [0, 1], got {thr!r}")
        return cls(alerts, float(window), float(thr))

    def to_dict(self) -> dict[str, Any]:
        return {"alerts": self.alerts, "window_s": self.window_s, "threshold": self.threshold}


class Escalator:
    """The recent alerts of each source, and whether a source is escalated now."""

    def __init__(self, rule: EscalationRule, max_sources: int = DEFAULT_MAX_SOURCES) -> None:
        self.rule = rule
        self._k = rule.alerts
        self._window_us = int(rule.window_s * 1_000_000)
        self._max = max(1, int(max_sources))
        # source -> its last (up to k) alert times, µs; a plain dict in least-recently-alerting
        # order (a tuple per source: a 30,000-source spoofed flood churns this, and a deque
        # each cost 624 bytes against ~250)
        self._recent: dict[bytes, tuple[int, ...]] = {}

    def __len__(self) -> int:
        return len(self._recent)

    def escalated(self, src: bytes, now_us: int) -> int:
        """How many alerts ``src`` raised in the window before ``now_us`` if that is at least
        the rule's count (its flows are escalated), else 0."""
        q = self._recent.get(src)
        if q is None or len(q) < self._k or now_us - q[0] > self._window_us:
            return 0
        return len(q)

    def alerted(self, src: bytes, now_us: int) -> None:
        """Record an alert raised by ``src`` at ``now_us``."""
        recent = self._recent
        q = recent.pop(src, None)
        if q is None:
            if len(recent) >= self._max:
                del recent[next(iter(recent))]  # the least recently alerting source
            recent[src] = (now_us,)
        else:
            recent[src] = (*q[1:], now_us) if len(q) >= self._k else (*q, now_us)  # len(q) <= k


def flag_checks(
    checks: Sequence[Sequence[tuple[int, float]]],
    srcs: Sequence[bytes],
    threshold: float,
    rule: EscalationRule | None,
) -> list[int | None]:
    """Per flow, the capture time (µs) of its first check that alerts, or None.

    ``checks[i]``: flow ``i``'s classifications (time µs, score) as the agent made them (a
    replay with nothing alerting, so every check is made); ``srcs[i]``: its source address. A
    check alerts at ``threshold``, or at ``rule.threshold`` when its source is escalated by
    the alerts before it, taken in time order as the agent takes them.
    """
    if rule is None or rule.threshold >= threshold:
        return [next((t for t, s in c if s >= threshold), None) for c in checks]
    esc = Escalator(rule)
    low = rule.threshold
    events: Iterable[tuple[int, int, float]] = sorted(
        (t, i, s) for i, c in enumerate(checks) for t, s in c if s >= low
    )
    out: list[int | None] = [None] * len(checks)
    for t, i, s in events:
        if out[i] is not None:
            continue
        if s >= threshold or esc.escalated(srcs[i], t):
            out[i] = t
            esc.alerted(srcs[i], t)
    return out
