"""`edge-nids run` and `edge-nids learn` end to end: families, explanations and site files in EVE."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .helpers import agent_cmd
from .stage_helpers import DEMO_PCAP

MODELS = Path(__file__).resolve().parents[2] / "models"
ATTACKER = "198.51.100.21"  # lab/captures/demo.labels.csv


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(agent_cmd(*args), capture_output=True, text=True, timeout=120)


def test_demo_alerts_name_their_family_and_explain_themselves(agent_bundle: Path, tmp_path: Path) -> None:
    alerts = tmp_path / "alerts.json"
    r = _run("run", "--pcap", str(DEMO_PCAP), "--model", str(agent_bundle), "--alerts", str(alerts))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in alerts.read_text().splitlines()]
    from_attacker = [a["alert"] for a in lines if a["src_ip"] == ATTACKER]
    signatures = {a["signature"] for a in from_attacker}
    assert {"edge-nids: port scan", "edge-nids: SYN flood", "edge-nids: slow DoS (slowloris)"} <= signatures
    for a in from_attacker:
        if a["signature"] == "edge-nids: port scan":
            assert a["category"] == "Detection of a Network Scan" and a["signature_id"] == 9_000_101
            assert a["context"]["family"] == "scan"
    for rec in lines:
        exp = rec["alert"]["context"]["explanation"]
        assert len(exp) >= 3
        assert all(set(e) == {"feature", "value", "effect"} for e in exp)
        assert [abs(e["effect"]) for e in exp] == sorted((abs(e["effect"]) for e in exp), reverse=True)


def test_learn_then_run_with_the_site_file(agent_bundle: Path, tmp_path: Path) -> None:
    site = tmp_path / "site.json"
    r = _run("learn", str(DEMO_PCAP), "--model", str(agent_bundle), "-o", str(site))
    assert r.returncode == 1 and "refused" in r.stderr and ATTACKER in r.stderr
    assert "Traceback" not in r.stderr and not site.exists()
    r = _run("learn", str(DEMO_PCAP), "--model", str(agent_bundle), "-o", str(site), "--force")
    assert r.returncode == 0, r.stderr
    assert "highest-scoring sources" in r.stdout and ATTACKER in r.stdout
    doc = json.loads(site.read_text())
    assert doc["bundle"]["name"] == json.loads((agent_bundle / "bundle.json").read_text()).get("name", "")
    # a site file learnt for another model (another sha256): a clear error, no traceback
    doc["bundle"]["sha256"] = "0" * 64
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc), encoding="utf-8")
    r = _run(
        "run",
        "--pcap",
        str(DEMO_PCAP),
        "--model",
        str(agent_bundle),
        "--site",
        str(other),
        "--alerts",
        str(tmp_path / "a.json"),
    )
    assert r.returncode == 1 and "was learnt for model bundle" in r.stderr and "Traceback" not in r.stderr
