"""Flow tables of lab runs: ``edge-nids extract --labels`` per capture and profile, counted.

One command regenerates the lab table in docs/lab.md (between the
``<!-- lab-flows:begin -->`` and ``<!-- lab-flows:end -->`` markers)::

    .venv/bin/python -m lab.report lab/out/train lab/out/test --write docs/lab.md

For every run directory (``*.pcap`` + ``labels.csv`` written by ``lab.run_lab``)
and every profile, each capture is extracted to
``RUN/flows-<profile>/<scenario>.csv`` and its flows are counted per label.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "BEGIN",
    "CAPTURES_BEGIN",
    "CAPTURES_END",
    "END",
    "PROFILES",
    "ReportError",
    "count_labels",
    "extract_run",
    "main",
    "render_captures",
    "render_table",
    "replace_block",
]

BEGIN = "<!-- lab-flows:begin -->"
END = "<!-- lab-flows:end -->"
CAPTURES_BEGIN = "<!-- lab-captures:begin -->"
CAPTURES_END = "<!-- lab-captures:end -->"
PROFILES = ("cicids2017", "corrected")


class ReportError(RuntimeError):
    """A run directory or extraction problem; the message names it."""


def extract_run(run: Path, profile: str) -> dict[str, Path]:
    """Extract every capture of ``run`` with ``profile`` and its labels; returns scenario → CSV path."""
    labels = run / "labels.csv"
    pcaps = sorted(run.glob("*.pcap"))
    if not pcaps:
        raise ReportError(f"{run}: no .pcap files (is it a lab run directory?)")
    out_dir = run / f"flows-{profile}"
    out_dir.mkdir(exist_ok=True)
    result: dict[str, Path] = {}
    for pcap in pcaps:
        out = out_dir / f"{pcap.stem}.csv"
        argv = [
            sys.executable,
            "-m",
            "edge_nids.cli",
            "extract",
            str(pcap),
            "-o",
            str(out),
            "--profile",
            profile,
        ]
        if labels.is_file():
            argv += ["--labels", str(labels)]
        done = subprocess.run([*argv, "-q"], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ReportError(f"edge-nids extract {pcap} failed: {done.stderr.strip()[-300:]}")
        result[pcap.stem] = out
    return result


def count_labels(csv_path: Path) -> collections.Counter[str]:
    """Flows per ``Label`` in a CIC-style flow CSV."""
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader)]
        col = header.index("Label")
        return collections.Counter(row[col] for row in reader if row)


def render_table(counts: dict[tuple[str, str, str], dict[str, int]]) -> str:
    """Markdown: one line per (run, scenario, label) with flows per profile."""
    lines = [
        "| set | scenario | label | flows (cicids2017) | flows (corrected) |",
        "|---|---|---|---:|---:|",
    ]
    totals: dict[tuple[str, str], dict[str, int]] = collections.defaultdict(lambda: collections.Counter())
    for (run, scenario, label), per_profile in counts.items():
        cells = " | ".join(str(per_profile.get(p, "")) for p in PROFILES)
        lines.append(f"| {run} | {scenario} | {label} | {cells} |")
        for p, n in per_profile.items():
            totals[(run, label)][p] += n
    lines.append("")
    lines.append("| set | label | flows (cicids2017) | flows (corrected) |")
    lines.append("|---|---|---:|---:|")
    for (run, label), per_profile in sorted(totals.items()):
        cells = " | ".join(str(per_profile.get(p, 0)) for p in PROFILES)
        lines.append(f"| {run} | {label} | {cells} |")
    return "\n".join(lines) + "\n"


def render_captures(runs: Sequence[Path]) -> str:
    """Markdown: per run and scenario, packets, duration, pcap size, drops (from ``summary.json``)."""
    lines = [
        "| set | seed | scale | scenario | packets | kernel drops | duration s | pcap MB "
        "| attacker pkts outside |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        path = run / "summary.json"
        if not path.is_file():
            continue
        summary = json.loads(path.read_text(encoding="utf-8"))
        for sc in summary["scenarios"]:
            lines.append(
                f"| {run.name} | {summary['seed']} | {summary['scale']} | {sc['name']} | {sc['packets']} | "
                f"{sc['dropped']} | {sc['duration_s']:.1f} | {sc['pcap_bytes'] / 1e6:.2f} "
                f"| {sc['attacker_outside']} |"
            )
        lines.append(f"| {run.name} | | | **whole run (wall clock)** | | | {summary['seconds']:.0f} | | |")
    return "\n".join(lines) + "\n"


def replace_block(text: str, block: str, begin: str = BEGIN, end: str = END) -> str:
    """``text`` with the part between the markers ``begin`` and ``end`` replaced by ``block``."""
    if begin not in text or end not in text:
        raise ReportError(f"markers {begin} / {end} not found")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{block}{end}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: extract and count; print the table or write it into a markdown file."""
    p = argparse.ArgumentParser(prog="python -m lab.report", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="lab run directories (pcaps + labels.csv)")
    p.add_argument("--profile", choices=PROFILES, action="append", help="profile(s) (default both)")
    p.add_argument("--write", type=Path, metavar="MD", help="replace the table between the markers in MD")
    args = p.parse_args(argv)
    profiles = args.profile or list(PROFILES)
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    t0 = time.monotonic()
    try:
        for run in args.runs:
            if not run.is_dir():
                raise ReportError(f"{run}: not a directory")
            for profile in profiles:
                for scenario, path in extract_run(run, profile).items():
                    for label, n in sorted(count_labels(path).items()):
                        counts.setdefault((run.name, scenario, label), {})[profile] = n
        table = render_table(counts)
        if args.write:
            text = replace_block(args.write.read_text(encoding="utf-8"), table)
            text = replace_block(text, render_captures(args.runs), CAPTURES_BEGIN, CAPTURES_END)
            args.write.write_text(text, encoding="utf-8")
            print(f"wrote the table into {args.write} ({time.monotonic() - t0:.1f} s)", file=sys.stderr)
        else:
            sys.stdout.write(render_captures(args.runs) + "\n" + table)
    except (ReportError, OSError, ValueError, StopIteration) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
