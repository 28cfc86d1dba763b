"""Regenerate the golden flow CSVs in tests/data/golden/ from the scenario captures.

For every ``tests/data/*.pcap`` / ``*.pcapng`` and both profiles, writes
``golden/<capture>.<profile>.csv`` (what ``edge-nids extract --profile P`` writes,
Timestamp in UTC) and ``golden/<capture>.<profile>.summary.json`` (packets, decoded,
malformed by reason, flows by end reason). tests/flows/test_extract.py compares
the current output with them. Run from the repository root:

    .venv/bin/python tests/data/make_golden.py

The files are generated: review the diff by hand (see golden/README.md) before
committing a change to them.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
PROFILES = ("cicids2017", "corrected")

__all__ = ["GOLDEN", "PROFILES", "captures", "render"]


def captures() -> list[Path]:
    """The scenario captures, sorted by name."""
    return sorted([*HERE.glob("*.pcap"), *HERE.glob("*.pcapng")])


def render(capture: Path, profile: str) -> tuple[str, str]:
    """(CSV text, summary JSON text) of one capture in one profile."""
    from edge_nids.flows.extract import extract
    from edge_nids.flows.table import FlowConfig

    buf = io.StringIO()
    s = extract([capture], buf, FlowConfig(profile=profile))
    summary = {
        "capture": capture.name,
        "profile": profile,
        "packets": s.packets,
        "decoded": s.decoded,
        "malformed": dict(sorted(s.malformed.items())),
        "flows": s.flows,
        "end_reasons": {k: v for k, v in s.end_reasons.items() if v},
        "evicted": s.evicted,
        "dropped_single": s.dropped_single,
    }
    if profile == "corrected":
        summary["remnants"] = s.remnants
        summary["continued"] = s.continued
    return buf.getvalue(), json.dumps(summary, indent=1) + "\n"


def main() -> int:
    sys.path.insert(0, str(HERE.parent.parent))
    GOLDEN.mkdir(exist_ok=True)
    for cap in captures():
        for profile in PROFILES:
            text, summary = render(cap, profile)
            (GOLDEN / f"{cap.name}.{profile}.csv").write_text(text, encoding="utf-8")
            (GOLDEN / f"{cap.name}.{profile}.summary.json").write_text(summary, encoding="utf-8")
            print(f"{cap.name} {profile}: {text.count(chr(10)) - 1} flows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
