"""Replay lab captures through ``edge-nids run --pcap`` and score a model per attack type.

For each model bundle and each lab run directory (``*.pcap`` + ``labels.csv``),
every capture is replayed with ``--flows`` (every classified flow with its final
verdict) and ``--alerts`` without aggregation (alerts raised while a flow is
still open). A flow counts as flagged when it raised an alert or its final
verdict is not benign. Flows are labelled with the labels file exactly as
``edge-nids extract --labels`` does (address pair, first packet in the window).

Reported per model, set and scenario: flows, share flagged (for attacks the
detection rate, for benign traffic the false-positive rate) and, per attack,
the capture time from the attack's start to its first alert. One command
regenerates the table in docs/lab.md (between the ``lab-eval`` markers)::

    .venv/bin/python -m lab.evaluate lab/out/test lab/out/train lab/out/demo --shared --write docs/lab.md

``--shared [DIR]`` adds the set ``shared``: the two real captures under the
shared datasets' ``pcaps/`` (not made by this lab), every flow between their
attacker and victim labelled as the attack they record. Their replays are
written under ``--work`` (never next to the shared files).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from edge_nids.agent.records import flow_verdict
from lab.labels import LabelError, LabelRow, read_labels
from lab.pcapcheck import capture_stats
from lab.report import ReportError, replace_block

__all__ = [
    "EVAL_BEGIN",
    "EVAL_END",
    "SHARED_CAPTURES",
    "ScenarioScore",
    "label_of",
    "main",
    "render_scores",
    "score_replay",
    "shared_runs",
]

#: Real captures in the shared datasets (``pcaps/``): path, label row (all flows between the
#: two addresses; the window is set to the capture's span when it is read). Not lab traffic:
#: other networks, other tools, other years.
SHARED_CAPTURES: tuple[tuple[str, LabelRow], ...] = (
    (
        "gold_cicflowmeter4_slowloris/slowloris.pcap",
        LabelRow("shared_slowloris", "DoS slowloris", "10.0.2.15", "192.168.56.102", 0.0, 2e9),
    ),
    (
        "gold_cicids2017_sqlinj/WebattackSQLinj.pcap",
        LabelRow("cicids2017_sqlinj", "Web Attack - Sql Injection", "172.16.0.1", "192.168.10.50", 0.0, 2e9),
    ),
)

EVAL_BEGIN = "<!-- lab-eval:begin -->"
EVAL_END = "<!-- lab-eval:end -->"


@dataclass
class ScenarioScore:
    """Flows of one scenario and label in one set, and how many the model flagged.

    first_alert_s: seconds (capture time) from the attack's start to its first
    alert, per attack run; empty for benign traffic or when nothing was flagged.
    """

    flows: int = 0
    flagged: int = 0
    first_alert_s: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Share of flows flagged (0..1)."""
        return self.flagged / self.flows if self.flows else 0.0


def _epoch(ts: str) -> float:
    """EVE timestamp text → epoch seconds."""
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def label_of(rows: Sequence[LabelRow], src: str, dst: str, first: float) -> LabelRow | None:
    """The labels row of a flow (endpoints either way, first packet in the window), or None (benign)."""
    return next((row for row in rows if row.covers(first, src, dst)), None)


def score_replay(
    flows_jsonl: Path, alerts_jsonl: Path, rows: Sequence[LabelRow], scenario: str
) -> dict[tuple[str, str], ScenarioScore]:
    """Score one replay: ``(scenario, label) → ScenarioScore`` (benign flows under ``scenario``)."""
    alert_time: dict[int, float] = {}
    for line in alerts_jsonl.read_text(encoding="utf-8").splitlines():
        ev = json.loads(line)
        if ev.get("event_type") == "alert":
            t = _epoch(ev["timestamp"])
            alert_time[ev["flow_id"]] = min(t, alert_time.get(ev["flow_id"], t))
    scores: dict[tuple[str, str], ScenarioScore] = {}
    first_alert: dict[LabelRow, float] = {}
    for line in flows_jsonl.read_text(encoding="utf-8").splitlines():
        ev = json.loads(line)
        if ev.get("event_type") != "flow":
            continue
        row = label_of(rows, ev["src_ip"], ev["dest_ip"], _epoch(ev["flow"]["start"]))
        key = (row.scenario, row.label) if row else (scenario, "BENIGN")
        sc = scores.setdefault(key, ScenarioScore())
        sc.flows += 1
        flagged_at = alert_time.get(ev["flow_id"])
        if flagged_at is None and flow_verdict(ev).lower() != "benign":
            flagged_at = _epoch(ev["timestamp"])
        if flagged_at is not None:
            sc.flagged += 1
            if row is not None:
                first_alert[row] = min(flagged_at, first_alert.get(row, flagged_at))
    for row, t in first_alert.items():
        scores[(row.scenario, row.label)].first_alert_s.append(max(0.0, t - row.start))
    return scores


def shared_runs(datasets: Path) -> list[tuple[Path, list[LabelRow]]]:
    """``(pcap, label rows)`` of the shared captures that exist under ``datasets/pcaps``."""
    found = []
    for rel, row in SHARED_CAPTURES:
        pcap = datasets / "pcaps" / rel
        if pcap.is_file():
            span = capture_stats(pcap)
            found.append((pcap, [replace(row, start=span.first, end=span.last)]))
    if not found:
        raise ReportError(f"--shared: none of the shared captures is under {datasets / 'pcaps'}")
    return found


def _replay(bundle: Path, pcap: Path, work: Path) -> tuple[Path, Path]:
    flows, alerts = work / f"{pcap.stem}.flows.jsonl", work / f"{pcap.stem}.alerts.jsonl"
    for path in (flows, alerts):
        path.unlink(missing_ok=True)  # the agent appends to EVE files
    argv = [
        sys.executable, "-m", "edge_nids.cli", "run", "--pcap", str(pcap), "--model", str(bundle),
        "--alerts", str(alerts), "--flows", str(flows), "--aggregate-window", "0",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ReportError(f"edge-nids run --pcap {pcap} failed: {done.stderr.strip()[-300:]}")
    return flows, alerts


def _model_name(bundle: Path) -> str:
    """Bundle directory name and the first 12 hex digits of its model.tflite's sha256."""
    meta = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
    sha = str(meta.get("sha256", {}).get("model.tflite", ""))[:12]
    return f"{bundle.name} ({sha})" if sha else bundle.name


def render_scores(results: dict[tuple[str, str], dict[tuple[str, str], ScenarioScore]]) -> str:
    """Markdown: one line per (model, set, scenario, label)."""
    lines = [
        "| model | set | scenario | label | flows | flagged | flagged % | first alert after start, s |",
        "|---|---|---|---|---:|---:|---:|---|",
    ]
    for (model, run), scores in results.items():
        benign = ScenarioScore()
        for (scenario, label), sc in sorted(scores.items(), key=lambda kv: (kv[0][1] != "BENIGN", kv[0])):
            first = ", ".join(f"{t:.2f}" for t in sc.first_alert_s) or ("-" if label == "BENIGN" else "none")
            lines.append(
                f"| {model} | {run} | {scenario} | {label} | {sc.flows} | {sc.flagged} | {100 * sc.rate:.1f} "
                f"| {first} |"
            )
            if label == "BENIGN":
                benign.flows += sc.flows
                benign.flagged += sc.flagged
        if benign.flows:
            lines.append(
                f"| {model} | {run} | **all benign (FPR)** | BENIGN | {benign.flows} | {benign.flagged} "
                f"| {100 * benign.rate:.2f} | - |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: replay, score, print or write the table."""
    p = argparse.ArgumentParser(prog="python -m lab.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="lab run directories (pcaps + labels.csv)")
    p.add_argument(
        "--model",
        type=Path,
        action="append",
        help="model bundle directory (default: every bundle in models/)",
    )
    p.add_argument(
        "--shared",
        type=Path,
        nargs="?",
        const=Path(
            os.environ.get("EDGE_NIDS_DATA") or Path(__file__).resolve().parents[2] / "shared" / "datasets"
        ),
        metavar="DIR",
        help="also replay the real captures of the shared datasets (default DIR: $EDGE_NIDS_DATA, "
        "else ../shared/datasets)",
    )
    p.add_argument(
        "--work",
        type=Path,
        default=Path(__file__).resolve().parent / "out" / "shared-replay",
        help="where the replays of --shared go (default lab/out/shared-replay)",
    )
    p.add_argument("--write", type=Path, metavar="MD", help="replace the table between the lab-eval markers")
    args = p.parse_args(argv)
    results: dict[tuple[str, str], dict[tuple[str, str], ScenarioScore]] = {}
    t0 = time.monotonic()
    models = args.model or sorted(
        b.parent for b in (Path(__file__).resolve().parents[1] / "models").glob("*/bundle.json")
    )
    try:
        if not models:
            raise ReportError("no model bundles given and none found in models/")
        sets: list[tuple[str, Path, list[tuple[Path, list[LabelRow]]]]] = []
        for run in args.runs:
            pcaps = sorted(run.glob("*.pcap"))
            if not pcaps:
                raise ReportError(f"{run}: no .pcap files")
            labels = run / "labels.csv"
            rows = read_labels(labels) if labels.is_file() else []
            sets.append((run.name, run, [(pcap, rows) for pcap in pcaps]))
        if args.shared is not None:
            sets.append(("shared", args.work, shared_runs(args.shared)))
        for bundle in models:
            if not (bundle / "bundle.json").is_file():
                raise ReportError(f"{bundle}: not a model bundle (no bundle.json)")
            for name, where, captures in sets:
                work = where / f"replay-{bundle.name}"
                work.mkdir(parents=True, exist_ok=True)
                merged: dict[tuple[str, str], ScenarioScore] = {}
                for pcap, rows in captures:
                    print(f"[{time.monotonic() - t0:6.1f} s] {bundle.name}: {pcap}", file=sys.stderr)
                    flows, alerts = _replay(bundle, pcap, work)
                    for key, sc in score_replay(flows, alerts, rows, pcap.stem).items():
                        m = merged.setdefault(key, ScenarioScore())
                        m.flows += sc.flows
                        m.flagged += sc.flagged
                        m.first_alert_s += sc.first_alert_s
                results[(_model_name(bundle), name)] = merged
        table = render_scores(results)
        if args.write:
            text = replace_block(args.write.read_text(encoding="utf-8"), table, EVAL_BEGIN, EVAL_END)
            args.write.write_text(text, encoding="utf-8")
            print(f"wrote the table into {args.write} ({time.monotonic() - t0:.1f} s)", file=sys.stderr)
        else:
            sys.stdout.write(table)
    except (ReportError, LabelError, OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
