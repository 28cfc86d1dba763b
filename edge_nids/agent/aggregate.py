"""Alert aggregation: repeats of (src_ip, dest_ip, signature_id) are merged per time window.

The first alert of a group is emitted at once with ``count: 1``. Alerts for the
same group within the window are counted; when the window ends (capture time)
one summary line is emitted with ``count`` = alerts merged into it, plus an
``aggregate`` object (first/last alert time, window). Both go in
``alert.context`` (Suricata's schema closes the top level and ``alert``). Nothing
is lost: the sum of ``count`` over every emitted line equals the alerts received,
once :meth:`Aggregator.flush` has run.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from edge_nids.agent.eve import eve_timestamp

__all__ = ["Aggregator"]

Emit = Callable[[Mapping[str, Any]], None]
#: An alert record, or a function that builds it (called only if the alert is written).
AlertLike = dict[str, Any] | Callable[[], dict[str, Any]]


@dataclass(eq=False)
class _Group:
    window_start_us: int
    count: int  # alerts merged since the last emitted line
    first_us: int
    last_us: int
    last: AlertLike | None  # the latest merged alert (None while count is 0: nothing to summarise)
    seq: int = 0  # creation order (the order of the groups dict)
    #: "destination": merges every source's alerts against one destination; "source": one
    #: source's alerts against every destination (a sweep); None: one source and destination
    by: str | None = None


def _record(alert: AlertLike) -> dict[str, Any]:
    return alert() if callable(alert) else alert


def _counted(alert: dict[str, Any], n: int) -> dict[str, Any]:
    """Set ``alert.context.count`` to ``n`` (in place: each alert record is fresh)."""
    a = alert["alert"]
    ctx = a.get("context")
    if ctx is None:
        ctx = a["context"] = {}
    ctx["count"] = n
    return alert


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
        # (window start µs, seq, key, group): when each group's window ends, so a tick looks
        # only at the groups that are due, not at all of them; stale entries are skipped
        self._due: list[tuple[int, int, tuple[str, str, int], _Group]] = []
        self._seq = 0
        self.received = 0  #: alerts given to add()
        self.emitted_lines = 0  #: lines written (first alerts + summaries)
        self.merged = 0  #: alerts that went into a summary instead of their own line

    def __len__(self) -> int:
        return len(self._groups)

    def add(
        self, alert: AlertLike, ts_us: int, key: tuple[str | None, str | None, int] | None = None
    ) -> None:
        """One alert at capture time ``ts_us`` (µs).

        ``alert`` may be a function building the record, with its group ``key`` (src_ip,
        dest_ip, signature_id): most alerts of a flood are merged into a summary and never
        written, so their records need not be built. A key whose src_ip is None groups the
        destination's alerts of that signature from every source (a flood from many sources);
        its summary says ``"by": "destination"``. One whose dest_ip is None groups the source's
        alerts of that signature against every destination (a sweep): ``"by": "source"``.
        """
        self.received += 1
        if self.window_us <= 0:
            self._out(_counted(_record(alert), 1))
            return
        if self._due and ts_us - self._due[0][0] >= self.window_us:
            self.tick(ts_us)
        if key is None:
            rec = _record(alert)
            key = (str(rec.get("src_ip")), str(rec.get("dest_ip")), int(rec["alert"]["signature_id"]))
        g = self._groups.get(key)
        if g is None:
            self._out(_counted(_record(alert), 1))
            self._seq += 1
            # the group keeps no record until an alert is merged into it: a spoofed flood makes
            # a group per alert, up to max_groups of them (and as many in stale heap entries)
            by = "destination" if key[0] is None else "source" if key[1] is None else None
            g = _Group(ts_us, 0, ts_us, ts_us, None, self._seq, by)
            self._groups[key] = g
            self._push(key, g)
            while len(self._groups) > self.max_groups:
                _, old = self._groups.popitem(last=False)
                self._summary(old)
                old.last = None  # its heap entry stays (stale) until the heap is rebuilt
            return
        g.count += 1
        g.last = alert
        if g.count == 1:
            g.first_us = g.last_us = ts_us
        else:
            # alerts come in the order flows are classified, not of their times: a flow that
            # ended earlier may be judged later (at its idle timeout), so keep the span
            g.first_us = min(g.first_us, ts_us)
            g.last_us = max(g.last_us, ts_us)
        self.merged += 1

    def next_close_us(self) -> int | None:
        """Earliest capture time (µs) at which :meth:`tick` may close a window (None: none
        open); a stale entry can make it early, never late."""
        if self.window_us <= 0 or not self._due:
            return None
        return self._due[0][0] + self.window_us

    def tick(self, now_us: int) -> None:
        """Close windows that ended at or before ``now_us`` (µs, capture time)."""
        if self.window_us <= 0 or not self._groups:
            return
        due = self._due
        groups = self._groups
        done: list[tuple[int, tuple[str, str, int], _Group]] = []
        while due and now_us - due[0][0] >= self.window_us:
            start, seq, k, g = heapq.heappop(due)
            if groups.get(k) is g and g.window_start_us == start:
                done.append((seq, k, g))
        done.sort(key=lambda d: d[0])  # in the order of the groups dict, as before
        for _, k, g in done:
            if g.count:
                self._summary(g)
                g.count = 0
                g.last = None
                g.window_start_us = now_us
                self._push(k, g)
            else:
                del groups[k]

    def flush(self) -> None:
        """Emit a summary for every group with merged alerts (at exit); forget all groups."""
        for g in self._groups.values():
            self._summary(g)
        self._groups.clear()
        self._due.clear()

    def _push(self, key: tuple[str, str, int], g: _Group) -> None:
        due = self._due
        if len(due) > 2 * len(self._groups) + 64:  # mostly stale (evicted groups): rebuild
            due[:] = [(x.window_start_us, x.seq, k, x) for k, x in self._groups.items() if x is not g]
            heapq.heapify(due)
        heapq.heappush(due, (g.window_start_us, g.seq, key, g))

    def _summary(self, g: _Group) -> None:
        if not g.count or g.last is None:
            return
        rec = dict(_record(g.last))
        rec["alert"] = dict(rec["alert"])
        rec["alert"]["context"] = dict(rec["alert"].get("context") or {})
        ctx = _counted(rec, g.count)["alert"]["context"]
        ctx["aggregate"] = {
            "first": eve_timestamp(g.first_us),
            "last": eve_timestamp(g.last_us),
            "window_s": self.window_us / 1_000_000,
        }
        if g.by is not None:  # src_ip (dest_ip) is the last merged alert's, one of many
            ctx["aggregate"]["by"] = g.by
        self._out(rec)

    def _out(self, rec: Mapping[str, Any]) -> None:
        self.emitted_lines += 1
        self._emit(rec)
