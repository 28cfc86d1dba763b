"""Explanation cost per alert: µs to explain one flagged flow, per bundle, against the verdict itself.

For each bundle it takes the flagged flows of a capture (default: the demo capture,
``lab/captures/demo.pcap``, flows by the bundle's own flow-meter profile), then times
on the same flows, in the same run: the verdict (``Classifier.scores`` of one flow),
one explanation (``Explainer.explain``: one batched call of the substituted rows, a
second only for saturated scores), and the family (``FamilyModel.predict`` of one
row). Prints a markdown table: µs per alert, p50 and p99, and rows scored per
explanation.

Usage: ``python bench/bench_explain.py [--pcap PCAP] [--alerts N] [BUNDLE ...]``
(default bundles: the shipped default and ``models/cnn-lstm-edge-cic-int8``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_nids.agent.classifier import Classifier  # noqa: E402
from edge_nids.agent.explain import Explainer  # noqa: E402
from edge_nids.agent.families import load_family_model  # noqa: E402
from edge_nids.bundle import default_bundle_path  # noqa: E402
from edge_nids.flows.decode import Decoder  # noqa: E402
from edge_nids.flows.pcap import open_capture  # noqa: E402
from edge_nids.flows.schema import EDGE_FLOWS  # noqa: E402
from edge_nids.flows.table import FlowConfig, FlowTable  # noqa: E402

__all__ = ["main"]


def _flows(pcap: Path, profile: str) -> list[Any]:
    table, decoder, out = FlowTable(FlowConfig(profile=profile)), Decoder(), []
    with open_capture(pcap) as cap:
        for ts, lt, frame, wire in cap:
            pkt = decoder.decode(lt, frame, ts, wire)
            if pkt is not None:
                out += table.add(pkt)
    return out + table.flush()


def _times(fn: Callable[[int], object], items: np.ndarray) -> np.ndarray:
    t = []
    for it in items:
        t0 = time.perf_counter_ns()
        fn(it)
        t.append((time.perf_counter_ns() - t0) / 1000.0)
    return np.array(t)


def bench(bundle: Path, pcap: Path, n_alerts: int) -> list[str]:
    clf = Classifier(bundle)
    ex = Explainer(clf)
    fam = load_family_model()
    flows = _flows(pcap, clf.bundle.profile or "cicids2017")
    edge = clf.bundle.schema_name == EDGE_FLOWS.name
    X = np.array([f.edge_features() if edge else f.features() for f in flows], dtype=np.float64)
    E = np.array([f.edge_features() for f in flows], dtype=np.float64)
    s = clf.scores(X)
    idx = np.flatnonzero(s >= clf.threshold)
    if not len(idx):
        return [f"| {clf.bundle.name} | no flagged flow in {pcap.name} | | | | |"]
    rng = np.random.default_rng(0)
    pick = rng.choice(idx, size=min(n_alerts, len(idx)), replace=False)
    for i in pick[:5]:  # warm-up: interpreter resizes, first invokes
        ex.explain(X[i], float(s[i]))
    calls: list[int] = []
    real = clf.scores
    clf.scores = lambda rows: (calls.append(len(rows)), real(rows))[1]
    t_exp = _times(lambda i: ex.explain(X[i], float(s[i])), pick)
    clf.scores = real
    t_verdict = _times(lambda i: clf.scores(X[i : i + 1]), pick)
    t_family = _times(lambda i: fam.predict(E[i : i + 1]), pick)
    rows = sum(calls) / len(pick)
    name = clf.bundle.name
    out = []
    for what, t in (("verdict (1 flow)", t_verdict), ("family (1 flow)", t_family), ("explanation", t_exp)):
        extra = f"{rows:.1f} rows, {len(calls) / len(pick):.2f} calls" if what == "explanation" else ""
        p50, p99 = np.percentile(t, [50, 99])
        out.append(f"| {name} | {what} | {len(pick)} | {p50:.0f} | {p99:.0f} | {extra} |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="*", type=Path)
    ap.add_argument("--pcap", type=Path, default=REPO / "lab" / "captures" / "demo.pcap")
    ap.add_argument("--alerts", type=int, default=300, help="flagged flows to time (sampled)")
    args = ap.parse_args(argv)
    bundles = args.bundles or [default_bundle_path(), REPO / "models" / "cnn-lstm-edge-cic-int8"]
    print(f"Explanation cost per alert on {args.pcap.name} (µs, this machine, 1 interpreter thread)\n")
    print("| bundle | step | alerts | p50 µs | p99 µs | per explanation |")
    print("|---|---|---:|---:|---:|---|")
    for b in bundles:
        for line in bench(Path(b), args.pcap, args.alerts):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
