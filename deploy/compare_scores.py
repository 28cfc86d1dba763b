#!/usr/bin/env python3
"""Compare two agent runs flow by flow: ``compare_scores.py A_FLOWS B_FLOWS [A_ALERTS B_ALERTS]``.

Each FLOWS file holds the EVE ``flow`` events of ``edge-nids run --flows``. Flows are matched on
(flow_id, community_id, flow start); prints a table (flows, matched, identical scores, largest
score difference, verdicts that differ) and, with the alert files, whether the alerts are the same
apart from the ``host`` field. Exit 0 when every flow is in both runs with the same verdict and
a score no further apart than ``--tolerance`` (default 1/256: one step of an int8 model's output;
the CPUs' integer kernels may round one step apart) and the alerts agree, else 1. Standard
library only (it reads the records with ``edge_nids.agent.records``, itself standard library
only), so it runs anywhere a check does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for edge_nids.agent.records
from edge_nids.agent.records import flow_score, flow_verdict

__all__ = ["main"]


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _by_key(events: list[dict]) -> dict[tuple, dict]:
    return {(e["flow_id"], e.get("community_id"), e["flow"]["start"]): e for e in events}


def _score(ev: dict) -> float:
    score = flow_score(ev)
    if score is None:
        raise SystemExit(f"flow event {ev.get('flow_id')} carries no score")
    return score


def _without_host(events: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "host"} for e in events]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a_flows", type=Path)
    p.add_argument("b_flows", type=Path)
    p.add_argument("a_alerts", type=Path, nargs="?")
    p.add_argument("b_alerts", type=Path, nargs="?")
    p.add_argument("--names", default="A,B", help="column names for the two runs (default: A,B)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=1 / 256,
        help="largest score difference that still counts as the same (default 1/256, one int8 step)",
    )
    args = p.parse_args(argv)
    name_a, name_b = args.names.split(",", 1)
    a, b = _by_key(_events(args.a_flows)), _by_key(_events(args.b_flows))
    common = a.keys() & b.keys()
    diffs = [abs(_score(a[k]) - _score(b[k])) for k in common]
    same = sum(1 for d in diffs if d == 0.0)
    verdicts = sum(1 for k in common if flow_verdict(a[k]) != flow_verdict(b[k]))
    rows = [
        (f"flows ({name_a})", len(a)),
        (f"flows ({name_b})", len(b)),
        ("matched", len(common)),
        ("identical scores", same),
        ("largest |score difference|", f"{max(diffs, default=0.0):.6f}"),
        (f"scores within {args.tolerance:.6f}", sum(1 for d in diffs if d <= args.tolerance + 1e-9)),
        ("verdicts that differ", verdicts),
        (f"attack verdicts ({name_a})", sum(1 for e in a.values() if flow_verdict(e) == "attack")),
    ]
    close = all(d <= args.tolerance + 1e-9 for d in diffs)
    good = len(common) == len(a) == len(b) and close and verdicts == 0
    if args.a_alerts and args.b_alerts:
        aa, ba = _without_host(_events(args.a_alerts)), _without_host(_events(args.b_alerts))
        rows.append((f"alert lines ({name_a} / {name_b})", f"{len(aa)} / {len(ba)}"))
        rows.append(("alerts identical (host aside)", "yes" if aa == ba else "no"))
        good = good and aa == ba
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    print(f"  {'result':<{width}}  {'same' if good else 'DIFFERENT'}")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
