"""`edge-nids run --pcap` on the scenario captures against golden EVE outputs (default model).

Goldens: tests/agent/data/golden, written by ``python -m tests.agent.make_golden``.
Scores are compared to 1e-4 (LiteRT kernels may differ in the last digits across CPUs);
everything else must match exactly.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from edge_nids.agent.records import SCORE_VAR, alert_count, flow_verdict

from .make_golden import DATA, run_agent
from .scenarios import SCENARIOS, write_scenarios


def _pop_score(rec: dict) -> float:
    """Remove and return a record's score (alert.context.score, or the flow's score flowvar)."""
    if rec["event_type"] == "alert":
        return float(rec["alert"]["context"].pop("score"))
    fv = rec["metadata"]["flowvars"]
    item = next(i for i in fv if i["key"] == SCORE_VAR)
    fv.remove(item)
    return float(item["value"])


def _same(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert _pop_score(g) == pytest.approx(_pop_score(w), abs=1e-4)
        assert g == w


@pytest.fixture(scope="module")
def scenario_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scenarios")
    write_scenarios(out)
    return out


def _check_golden(name: str, pcap: Path, bundle: Path) -> tuple[list[dict], list[dict]]:
    golden = DATA / "golden"
    alerts, flows, err = run_agent(pcap, bundle)
    want_alerts = [json.loads(x) for x in (golden / f"{name}.alerts.json").read_text().splitlines()]
    want_flows = [json.loads(x) for x in (golden / f"{name}.flows.json").read_text().splitlines()]
    assert "final stats" in err
    # nothing lost: each alert is one flow, merged alerts are counted
    assert sum(alert_count(a) for a in alerts) <= len(flows)
    _same(flows, want_flows)
    _same(alerts, want_alerts)
    return alerts, flows


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_replay_matches_golden(name: str, agent_bundle: Path, scenario_dir: Path) -> None:
    alerts, flows = _check_golden(name, scenario_dir / f"{name}.pcap", agent_bundle)
    if name == "port_scan":
        # the shipped model flags the scan's flows; 150 alerts become 2 lines, none lost
        flagged = [f for f in flows if flow_verdict(f) == "attack"]
        assert len(flagged) >= 140
        assert len(alerts) == 2 and [alert_count(a) for a in alerts] == [1, len(flagged) - 1]
        assert alerts[1]["alert"]["context"]["aggregate"]["window_s"] == 60.0


def test_the_slow_scan_alerts_by_the_port_scan_rule_alone(agent_bundle: Path, scenario_dir: Path) -> None:
    """scenarios.slow_scan, with the model's threshold out of reach: the port-scan rule alone
    alerts, from the 5th port refused within 300 s (4 others before it) and on every FIN,
    NULL and Xmas probe, each saying why; the client's HTTP connections to the same host
    never (one port)."""
    alerts, flows, _ = run_agent(
        scenario_dir / "slow_scan.pcap", agent_bundle, ["--threshold", "1.0", "--aggregate-window", "0"]
    )
    assert len(flows) == 12
    assert [f["dest_port"] for f in flows if flow_verdict(f) == "attack"] == [53, 80, 110, 111, 135]
    assert {f["src_ip"] for f in flows if flow_verdict(f) == "benign" and f["dest_port"] == 80} >= {
        "192.0.2.10"
    }
    assert [(a["dest_port"], a["alert"]["signature"]) for a in alerts] == [
        (p, "edge-nids: port scan") for p in (53, 80, 110, 111, 135)
    ]
    assert [a["alert"]["context"]["escalated"] for a in alerts] == [
        {"host_ports_unanswered": n, "stealth_probe": n >= 6, "window_s": 300} for n in range(4, 9)
    ]


@pytest.mark.shared_data
def test_replay_real_slowloris_matches_golden(gold_slowloris_pcap: Path, agent_bundle: Path) -> None:
    """The CICFlowMeter-4.0 slowloris lab capture: 150 attack connections from one host."""
    _, flows = _check_golden("slowloris", gold_slowloris_pcap, agent_bundle)
    assert len(flows) == 300  # the reference CSV beside the capture has 300 flows too


def test_flood_inside_one_flow_alerts_within_two_seconds(agent_bundle: Path, scenario_dir: Path) -> None:
    """An open flow is classified while active: threshold 0 makes its first classification an
    alert, which must come within 2 s (capture time) of the flow's first packet, not at its end."""
    alerts, flows, _ = run_agent(
        scenario_dir / "udp_flood.pcap", agent_bundle, ["--threshold", "0", "--aggregate-window", "0"]
    )
    assert len(flows) == 1 and flows[0]["flow"]["pkts_toserver"] == 8000
    assert len(alerts) == 1 and alerts[0]["flow"]["reason"] == "open"
    start = datetime.strptime(alerts[0]["flow"]["start"], "%Y-%m-%dT%H:%M:%S.%f%z")
    at = datetime.strptime(alerts[0]["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert 0 < (at - start).total_seconds() <= 2.0
    assert alerts[0]["flow"]["pkts_toserver"] < 8000


def test_demo_replays_the_packaged_port_scan(agent_bundle: Path, scenario_dir: Path, repo_root: Path) -> None:
    """`edge-nids run --demo` (the README quickstart) shows the port scan's alerts on stdout."""
    import subprocess
    import sys

    demo = repo_root / "edge_nids" / "agent" / "data" / "demo_port_scan.pcap"
    assert demo.read_bytes() == (scenario_dir / "port_scan.pcap").read_bytes(), "run make_golden"
    out = subprocess.run(
        [sys.executable, "-m", "edge_nids.cli", "run", "--demo"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert [x["event_type"] for x in lines] == ["alert", "alert"]
    assert lines[0]["src_ip"] == "203.0.113.66" and sum(alert_count(x) for x in lines) >= 140
