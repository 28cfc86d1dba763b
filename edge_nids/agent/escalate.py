"""Escalation: two hosts that keep raising alerts have their next flows judged at a lower threshold.

A scan, a flood or a password-guessing run is many flows from one source to its victim, and
the model scores each on its own: on the public attack captures many of a scanner's or a
guesser's flows score just below the threshold (masscan, held out: 55 % of its 600 flows
under the threshold of 0.934, and 94 % of all of them at 0.5 or more). Once a source has
raised ``alerts`` alerts against one destination within ``window_s`` seconds, its next flows
to that destination alert from score ``threshold`` (below the model's) on, and say so in
``alert.context.escalated``. On the held-out ``benign_public`` replays, 6 alerts in 60 s
flagged no benign flow that the model's own threshold (0.934) had not, whether escalated
flows then alert from 0.5 or from 0.1 (the shipped rule, docs/detection.md "Escalation
sweep": 84.7 % of the attacker flows of the public scan, flood, brute-force and slow-DoS
captures flagged against 82.6 % at 0.5; an SSH password guesser 72 % against 32 %).

Keyed by the (source, destination) pair, measured against the alternatives on the held-out
replays of two trainings of the same recipe (seeds 42 and 43, docs/detection.md):

* by the source alone, a benign host the model misjudges has all its other flows escalated
  too: the seed-43 model, which flags a P2P client's peer connections (``ndpi_gnutella``),
  went from 4.6 to 8.6 % of benign flows flagged; keyed by the pair, to 4.9 %, with the same
  gains on the attacks (a scanner, a flood or a guesser works against one victim; a sweep
  across hosts scores high on its own);
* by the destination alone, a server under attack has its benign clients' flows escalated
  (tried on the lab test runs: 9 benign flows flagged instead of 1).

A spoofed flood's sources raise one alert each and never escalate: such a flood is caught by
the scores of its own flows (``sop_syn_flood``: 90 %).

Memory is bounded: at most ``max_keys`` pairs (least recently alerting forgotten first),
each with its last ``alerts`` alert times.

The agent's pipeline and the evaluation (``edge-nids detection``, which replays captures and
judges every threshold afterwards) use this same class, so the figures describe the agent.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_MAX_KEYS", "EscalationRule", "Escalator", "flag_checks"]

#: (source, destination) pairs whose recent alerts are remembered (~0.3 KiB each).
DEFAULT_MAX_KEYS = 1024


@dataclass(frozen=True)
class EscalationRule:
    """``alerts`` alerts from one source against one destination within ``window_s`` s lower
    the threshold of its flows to that destination to ``threshold``."""

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

    def describe(self) -> str:
        """For the log: ``6 alerts in 60 s between two hosts, then from 0.1``."""
        return f"{self.alerts} alerts in {self.window_s:g} s between two hosts, then from {self.threshold:g}"


class Escalator:
    """The recent alerts of each (source, destination) pair, and whether a pair is escalated now.

    Keys are any hashable (the agent and the evaluation use ``(src, dst)`` packed addresses).
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

    def __len__(self) -> int:
        return len(self._recent)

    def escalated(self, key: Hashable, now_us: int) -> int:
        """How many alerts ``key`` raised in the window before ``now_us`` if that is at least
        the rule's count (its flows are escalated), else 0."""
        q = self._recent.get(key)
        if q is None or len(q) < self._k or now_us - q[0] > self._window_us:
            return 0
        return len(q)

    def alerted(self, key: Hashable, now_us: int) -> None:
        """Record an alert raised by ``key`` at ``now_us``."""
        recent = self._recent
        q = recent.pop(key, None)
        if q is None:
            if len(recent) >= self._max:
                del recent[next(iter(recent))]  # the least recently alerting key
            recent[key] = (now_us,)
        else:
            recent[key] = (*q[1:], now_us) if len(q) >= self._k else (*q, now_us)  # len(q) <= k


def flag_checks(
    checks: Sequence[Sequence[tuple[int, float]]],
    keys: Sequence[Hashable],
    threshold: float,
    rule: EscalationRule | None,
) -> list[int | None]:
    """Per flow, the capture time (µs) of its first check that alerts, or None.

    ``checks[i]``: flow ``i``'s classifications (time µs, score) as the agent made them (a
    replay with nothing alerting, so every check is made); ``keys[i]``: its escalation key
    (``(src, dst)``). A check alerts at ``threshold``, or at ``rule.threshold`` when its key is
    escalated by the alerts before it, taken in time order as the agent takes them.
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
        if s >= threshold or esc.escalated(keys[i], t):
            out[i] = t
            esc.alerted(keys[i], t)
    return out
