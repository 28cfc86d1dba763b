"""The shipped demo capture, replayed through ``edge-nids run`` with the shipped model.

Every attack in it must raise an alert, and benign flows must stay below the
false-positive rate stated in models/README.md for this capture.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from edge_nids.agent.records import alert_aggregate, flow_verdict
from edge_nids.cli import main as cli_main
from lab.labels import LabelRow, read_labels

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "lab" / "captures" / "demo.pcap"
DEMO_LABELS = REPO / "lab" / "captures" / "demo.labels.csv"

#: The benign false-positive rate on the demo capture that models/README.md promises.
MAX_BENIGN_FPR = 0.03

pytest.importorskip("ai_edge_litert", reason="the agent extra (ai-edge-litert) is not installed")


def _epoch(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def _label_of(event: dict, rows: list[LabelRow]) -> str:
    """The label row whose address pair and time window hold this EVE event's flow."""
    pair = {event["src_ip"], event["dest_ip"]}
    start = _epoch(event["flow"]["start"])
    for row in rows:
        if pair == {row.attacker, row.victim} and row.start <= start <= row.end:
            return row.label
    return "BENIGN"


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], list[dict], list[LabelRow]]:
    out = tmp_path_factory.mktemp("demo")
    alerts, flows = out / "alerts.json", out / "flows.json"
    rc = cli_main(["run", "--pcap", str(DEMO), "--alerts", str(alerts), "--flows", str(flows)])
    assert rc == 0
    read = lambda p: [json.loads(line) for line in p.read_text().splitlines()]  # noqa: E731
    return read(alerts), read(flows), read_labels(DEMO_LABELS)


def _alert_span(alert: dict) -> tuple[float, float]:
    """Capture-time span an alert line reports: its aggregation window, or its one flow."""
    agg = alert_aggregate(alert)
    if agg:
        return _epoch(agg["first"]), _epoch(agg["last"])
    return _epoch(alert["flow"]["start"]), _epoch(alert["timestamp"])


def test_every_attack_in_the_demo_raises_an_alert(replay) -> None:
    # alerts are aggregated per (src, dest, signature), so one summary line with a
    # count may cover several attacks by the same attacker: an attack counts as
    # alerted when an alert line for its address pair spans part of its window
    alerts, _, rows = replay
    assert {a["event_type"] for a in alerts} == {"alert"}
    missed = []
    for row in rows:
        covered = False
        for a in alerts:
            first, last = _alert_span(a)
            if {a["src_ip"], a["dest_ip"]} == {row.attacker, row.victim} and (
                first <= row.end and last >= row.start
            ):
                covered = True
        if not covered:
            missed.append(row.scenario)
    assert not missed, f"no alert for {missed}"


def test_benign_flows_stay_below_the_stated_false_positive_rate(replay) -> None:
    _, flows, rows = replay
    benign = [f for f in flows if _label_of(f, rows) == "BENIGN"]
    assert len(benign) > 300  # the demo holds ~600 benign flows; fewer means the replay lost some
    flagged = sum(flow_verdict(f) == "attack" for f in benign)
    assert flagged / len(benign) <= MAX_BENIGN_FPR, f"{flagged}/{len(benign)} benign flows flagged"


def test_most_attack_flows_are_flagged(replay) -> None:
    _, flows, rows = replay
    attack = [f for f in flows if _label_of(f, rows) != "BENIGN"]
    assert attack, "no flow matched a label window"
    flagged = sum(flow_verdict(f) == "attack" for f in attack)
    assert flagged / len(attack) >= 0.5, f"only {flagged}/{len(attack)} attack flows flagged"
