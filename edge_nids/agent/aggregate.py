"""Alert aggregation: repeats of (src_ip, dest_ip, signature_id) are merged per time window.

The first alert of a group is emitted at once with ``count: 1``. Alerts for the
same group within the window are counted; when the window ends (capture time)
one summary line is emitted with ``count`` = alerts merged into it, plus an
``aggregate`` object (first/last alert time, window). Nothing is lost: the sum
of ``count`` over every emitted line equals the alerts received, once
:meth:`Aggregator.flush` has run.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from edge_nids.agent.eve import eve_timestamp

__all__ = ["Aggregator"]

Emit = Callable[[Mapping[str, Any]], None]


@dataclass
class _Group:
    window_start_us: int
    count: int  # alerts merged since the last emitted line
    first_us: int
    last_us: int
    last: dict[str, Any]


class Aggregator:
    """Merges repeated alerts; ``window_s == 0`` passes every alert through unchanged.

    window_s: aggregation window, s (capture time).
    max_groups: most groups kept; beyond it the least recently started group is flushed.
    """

    def __init__(self, emit: Emit, window_s: float = 60.0, max_groups: int = 10_000) -> None:
        self._emit = emit
        self.window_us = int(window_s * 1_000_000)
        self.max_groups = max_groups
        self._groups: OrderedDict[tuple[str, str, int], _Group] = OrderedDict()
        self.received = 0  #: alerts given to add()
        self.emitted_lines = 0  #: lines written (first alerts + summaries)
        self.merged = 0  #: alerts that went into a summary instead of their own line

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, alert: dict[str, Any], ts_us: int) -> None:
        """One alert at capture time ``ts_us`` (µs)."""
        self.received += 1
        if self.window_us <= 0:
            self._out(dict(alert, count=1))
            return
        self.tick(ts_us)
        key = (str(alert.get("src_ip")), str(alert.get("dest_ip")), int(alert["alert"]["signature_id"]))
        g = self._groups.get(key)
        if g is None:
            self._out(dict(alert, count=1))
            self._groups[key] = _Group(ts_us, 0, ts_us, ts_us, alert)
            while len(self._groups) > self.max_groups:
                _, old = self._groups.popitem(last=False)
                self._summary(old)
            return
        g.count += 1
        g.last = alert
        g.last_us = ts_us
        if g.count == 1:
            g.first_us = ts_us
        self.merged += 1

    def tick(self, now_us: int) -> None:
        """Close windows that ended at or before ``now_us`` (µs, capture time)."""
        if self.window_us <= 0 or not self._groups:
            return
        done = [k for k, g in self._groups.items() if now_us - g.window_start_us >= self.window_us]
        for k in done:
            g = self._groups[k]
            if g.count:
                self._summary(g)
                g.count = 0
                g.window_start_us = now_us
            else:
                del self._groups[k]

    def flush(self) -> None:
        """Emit a summary for every group with merged alerts (at exit); forget all groups."""
        for g in self._groups.values():
            self._summary(g)
        self._groups.clear()

    def _summary(self, g: _Group) -> None:
        if not g.count:
            return
        rec = copy.deepcopy(g.last)
        rec["count"] = g.count
        rec["aggregate"] = {
            "first": eve_timestamp(g.first_us),
            "last": eve_timestamp(g.last_us),
            "window_s": self.window_us / 1_000_000,
        }
        self._out(rec)

    def _out(self, rec: Mapping[str, Any]) -> None:
        self.emitted_lines += 1
        self._emit(rec)
