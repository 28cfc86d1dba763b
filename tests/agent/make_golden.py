"""Regenerate the agent's golden outputs (tests/agent/data/golden/).

Run from the repository root: ``python -m tests.agent.make_golden [BUNDLE]``. The scenario
captures are built by tests/agent/scenarios.py (deterministic, so they are not
committed); the goldens are the agent's EVE alert and flow lines for each with the
shipped default model, ``host`` removed (it is the machine's name). Review the diff
before committing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .scenarios import write_scenarios

DATA = Path(__file__).resolve().parent / "data"


def normalise(lines: list[str]) -> list[dict]:
    """Parsed EVE lines without the host name."""
    out = []
    for line in lines:
        rec = json.loads(line)
        rec.pop("host", None)
        out.append(rec)
    return out


def run_agent(
    pcap: Path, model: Path | None = None, extra: list[str] | None = None
) -> tuple[list, list, str]:
    """(alerts, flow events, stderr) of ``edge-nids run --pcap`` with ``model`` (default: the shipped one)."""
    with tempfile.TemporaryDirectory() as tmp:
        alerts, flows = Path(tmp) / "alerts.json", Path(tmp) / "flows.json"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "edge_nids.cli",
                "run",
                "--pcap",
                str(pcap),
                "--alerts",
                str(alerts),
                "--flows",
                str(flows),
                "--stats-interval",
                "0",
                *(["--model", str(model)] if model else []),
                *(extra or []),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"agent failed on {pcap}: {proc.stderr}")
        read = lambda p: normalise(p.read_text().splitlines()) if p.exists() else []  # noqa: E731
        return read(alerts), read(flows), proc.stderr


def shared_captures() -> list[Path]:
    """Real captures from the shared data folder that get goldens too (when it is there)."""
    import os

    root = Path(os.environ.get("EDGE_NIDS_DATA", Path(__file__).resolve().parents[3] / "shared" / "datasets"))
    pcap = root / "pcaps" / "gold_cicflowmeter4_slowloris" / "slowloris.pcap"
    return [pcap] if pcap.is_file() else []


def main() -> None:
    tmp = tempfile.TemporaryDirectory()
    for pcap in [*write_scenarios(Path(tmp.name)), *shared_captures()]:
        alerts, flows, _ = run_agent(pcap, Path(sys.argv[1]) if len(sys.argv) > 1 else None)
        for kind, recs in (("alerts", alerts), ("flows", flows)):
            out = DATA / "golden" / f"{pcap.stem}.{kind}.json"
            out.parent.mkdir(exist_ok=True)
            out.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in recs))
        print(f"{pcap.name}: {len(flows)} flows, {len(alerts)} alert lines")
        if pcap.name == "port_scan.pcap":  # also the packaged demo capture (edge-nids run --demo)
            (Path(__file__).resolve().parents[2] / "edge_nids/agent/data/demo_port_scan.pcap").write_bytes(
                pcap.read_bytes()
            )


if __name__ == "__main__":
    main()
