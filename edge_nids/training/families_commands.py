"""``edge-nids families`` and ``edge-nids references``: the stages after the detector (light).

``families`` fits, measures and exports the attack-family trees; ``references`` writes the
benign reference values the explanations substitute.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _families(args: argparse.Namespace) -> int:
    from edge_nids.agent.config import ConfigError, load_config, with_overrides
    from edge_nids.agent.service import AgentError, load_model
    from edge_nids.training.datasets import DataError, data_root
    from edge_nids.training.families import run_families

    command = "edge-nids families " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    datasets = Path(args.datasets) if args.datasets else data_root()
    if datasets is None:
        print(
            "edge-nids families: no shared datasets (give --datasets or set EDGE_NIDS_DATA)", file=sys.stderr
        )
        return 2
    try:
        overrides = {"model.path": args.model} if args.model else {}
        cfg = with_overrides(load_config(args.config), overrides)
        model = load_model(cfg)
        reports = run_families(
            datasets,
            [Path(r) for r in args.lab_runs],
            Path(args.lab_test),
            Path(args.cache),
            model,
            cfg,
            Path(args.out) if args.out else None,
            Path(args.write) if args.write else None,
            command.strip(),
        )
    except (ConfigError, AgentError, DataError, ValueError, OSError) as exc:
        print(f"edge-nids families: {exc}", file=sys.stderr)
        return 2
    for r in reports:
        print(r.name)
        print(f"  {'family':<12} {'flows':>7} {'precision':>10} {'recall':>8}")
        for fam, n, p, rc in r.rows():
            ps = "-" if p is None else f"{100 * p:.1f} %"
            rs = "-" if rc is None else f"{100 * rc:.1f} %"
            print(f"  {fam:<12} {n:>7} {ps:>10} {rs:>8}")
    return 0


def _references(args: argparse.Namespace) -> int:
    from edge_nids.bundle import BundleError
    from edge_nids.training.datasets import DataError
    from edge_nids.training.references import write_references

    source = args.source or "benign rows of " + ", ".join(args.data)
    try:
        out = write_references(args.bundle, args.data, source)
    except (DataError, BundleError, ValueError, OSError) as exc:
        print(f"edge-nids references: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``edge-nids families`` and ``edge-nids references`` to the command line."""
    p = subparsers.add_parser(
        "families",
        help="fit the attack-family stage on lab runs and public attacks, measure it, export its JSON",
        description=(
            "Replay the lab runs and the public attack captures through the agent pipeline, fit the "
            "attack-family trees on every classification of the training runs and public captures, "
            "measure per-family precision/recall on the lab test run and on each public capture held "
            "out, write the model JSON and a docs page."
        ),
    )
    p.add_argument(
        "--lab-runs", nargs="+", required=True, metavar="DIR", help="lab training runs (lab/out/<run>)"
    )
    p.add_argument("--lab-test", required=True, metavar="DIR", help="the lab test run (never trained on)")
    p.add_argument("--datasets", metavar="DIR", help="shared datasets (default: $EDGE_NIDS_DATA)")
    p.add_argument("--cache", default="runs/families", metavar="DIR", help="snapshot cache (runs/families)")
    p.add_argument("--model", metavar="BUNDLE", help="bundle the snapshots are taken with (default: shipped)")
    p.add_argument("--config", metavar="YAML", help="agent config (flow settings) for the snapshots")
    p.add_argument(
        "--out", metavar="JSON", help="write the model here (e.g. edge_nids/agent/data/families.json)"
    )
    p.add_argument("--write", metavar="MD", help="write the measured tables here (e.g. docs/families.md)")
    p.set_defaults(func=_families)

    q = subparsers.add_parser(
        "references",
        help="write a bundle's benign reference values (references.json) for alert explanations",
        description="Median of each of the bundle's input columns over the benign rows of flow CSVs.",
    )
    q.add_argument("bundle", metavar="BUNDLE", help="model bundle directory")
    q.add_argument("--data", nargs="+", required=True, metavar="CSV", help="flow CSVs or folders of them")
    q.add_argument("--source", metavar="TEXT", help="what the data is, recorded in the file")
    q.set_defaults(func=_references)
