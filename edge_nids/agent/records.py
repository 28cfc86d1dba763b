"""Reading the agent's own fields back from its EVE records.

The records follow Suricata's EVE schema, which is closed except for a few open
objects, so the agent's own fields live there (see docs/agent.md):

* alert: ``alert.context`` holds ``score``, ``threshold``, ``model``, ``class``
  (multi-class models), ``count`` and ``aggregate`` (alert aggregation);
* flow: ``metadata.flowvars`` holds ``edge_nids.verdict`` and ``edge_nids.score``
  (``{"key": ..., "value": ...}`` items with string values, as the schema's flowvars);
* stats: ``stats`` uses Suricata's counter names (``decoder.pkts``,
  ``capture.kernel_drops``, ``detect.alert`` ...), the agent's other counters are
  under ``metadata.flowints.edge_nids``.

These helpers also read the layout written before the move (top-level ``verdict``,
``score``, ``count``, ``aggregate``; flat ``stats``), so old files stay readable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "OWN_STATS_KEY",
    "SCORE_VAR",
    "VERDICT_VAR",
    "alert_aggregate",
    "alert_context",
    "alert_count",
    "alert_score",
    "flow_score",
    "flow_vars",
    "flow_verdict",
    "stats_counters",
]

#: flowvars keys of a flow event.
VERDICT_VAR = "edge_nids.verdict"
SCORE_VAR = "edge_nids.score"
#: Key under ``metadata.flowints`` holding the agent's own counters in a stats event.
OWN_STATS_KEY = "edge_nids"


def flow_vars(ev: Mapping[str, Any]) -> dict[str, str]:
    """A flow event's ``metadata.flowvars`` as a dict (key -> value)."""
    items = (ev.get("metadata") or {}).get("flowvars") or []
    return {str(i["key"]): i.get("value", "") for i in items if isinstance(i, Mapping) and "key" in i}


def flow_verdict(ev: Mapping[str, Any]) -> str:
    """``attack``, ``benign`` or a multi-class label; ``benign`` when the record has none."""
    old = ev.get("verdict")
    if isinstance(old, str):
        return old
    return str(flow_vars(ev).get(VERDICT_VAR, "benign"))


def flow_score(ev: Mapping[str, Any]) -> float | None:
    """A flow event's attack score (0..1), or None when it has none."""
    old = ev.get("score")
    if isinstance(old, (int, float)):
        return float(old)
    v = flow_vars(ev).get(SCORE_VAR)
    return None if v is None else float(v)


def alert_context(ev: Mapping[str, Any]) -> dict[str, Any]:
    """``alert.context`` of an alert (empty when absent)."""
    return dict((ev.get("alert") or {}).get("context") or {})


def alert_count(ev: Mapping[str, Any]) -> int:
    """How many alerts an alert line stands for (1 unless it is an aggregation summary)."""
    ctx = alert_context(ev)
    return int(ctx.get("count", ev.get("count", 1)))


def alert_aggregate(ev: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``aggregate`` object (first, last, window_s) of a summary line, else None."""
    return alert_context(ev).get("aggregate", ev.get("aggregate"))


def alert_score(ev: Mapping[str, Any]) -> float:
    """An alert's attack score (0..1)."""
    a = ev.get("alert") or {}
    return float(alert_context(ev).get("score", a.get("score", 0.0)))


def stats_counters(ev: Mapping[str, Any]) -> dict[str, Any]:
    """A stats event's counters under the names of ``AgentStats.snapshot()``."""
    from edge_nids.agent.stats import SURICATA_COUNTERS

    st = ev.get("stats") or {}
    if "packets" in st:  # the flat layout
        return dict(st)
    out: dict[str, Any] = dict(((ev.get("metadata") or {}).get("flowints") or {}).get(OWN_STATS_KEY) or {})
    for name, (section, key) in SURICATA_COUNTERS.items():
        if key in (st.get(section) or {}):
            out[name] = st[section][key]
    return out
