"""lab.evaluate: joining replayed flows and alerts with the labels, per scenario."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.evaluate import ScenarioScore, label_of, main, render_scores, score_replay
from lab.labels import LabelRow

ROWS = [
    LabelRow("nmap_syn", "PortScan", "198.51.100.66", "192.0.2.10", 1000.0, 1003.0),
    LabelRow("syn_flood", "DoS SYN Flood", "198.51.100.66", "192.0.2.10", 1010.0, 1015.0),
]


def _ts(epoch: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


def _flow(fid: int, src: str, dst: str, start: float, end: float, verdict: str) -> dict[str, object]:
    return {"event_type": "flow", "flow_id": fid, "src_ip": src, "dest_ip": dst, "timestamp": _ts(end),
            "flow": {"start": _ts(start), "end": _ts(end)}, "verdict": verdict}  # fmt: skip


def test_label_of_follows_the_extract_rule() -> None:
    assert label_of(ROWS, "192.0.2.10", "198.51.100.66", 1001.0) is ROWS[0]
    assert label_of(ROWS, "198.51.100.66", "192.0.2.10", 1015.0) is ROWS[1]
    assert label_of(ROWS, "198.51.100.66", "192.0.2.10", 1005.0) is None  # between the windows
    assert label_of(ROWS, "203.0.113.7", "192.0.2.10", 1001.0) is None  # another host


def test_score_counts_flagged_flows_and_time_to_first_alert(tmp_path: Path) -> None:
    flows = [
        _flow(1, "198.51.100.66", "192.0.2.10", 1000.5, 1000.6, "attack"),  # final verdict only
        _flow(2, "198.51.100.66", "192.0.2.10", 1000.2, 1002.0, "benign"),  # alerted while open
        _flow(3, "198.51.100.66", "192.0.2.10", 1001.0, 1001.1, "benign"),  # missed
        _flow(4, "198.51.100.66", "192.0.2.10", 1011.0, 1011.1, "benign"),  # flood, missed
        _flow(5, "203.0.113.7", "192.0.2.10", 1000.0, 1001.0, "attack"),  # false positive
        _flow(6, "203.0.113.7", "192.0.2.10", 1002.0, 1003.0, "benign"),
    ]
    alerts = [{"event_type": "alert", "flow_id": 2, "timestamp": _ts(1000.4)}]
    fpath, apath = tmp_path / "f.jsonl", tmp_path / "a.jsonl"
    fpath.write_text("".join(json.dumps(f) + "\n" for f in flows))
    apath.write_text("".join(json.dumps(a) + "\n" for a in alerts))
    scores = score_replay(fpath, apath, ROWS, "mixed")
    scan = scores[("nmap_syn", "PortScan")]
    assert (scan.flows, scan.flagged) == (3, 2)
    assert scan.first_alert_s == [
        pytest.approx(0.4)
    ]  # the open-flow alert at 1000.4 beats the verdict at 1000.6
    flood = scores[("syn_flood", "DoS SYN Flood")]
    assert (flood.flows, flood.flagged, flood.first_alert_s) == (1, 0, [])
    benign = scores[("mixed", "BENIGN")]
    assert (benign.flows, benign.flagged) == (2, 1)
    table = render_scores({("m", "test"): scores}).splitlines()
    assert "| m | test | syn_flood | DoS SYN Flood | 1 | 0 | 0.0 | none |" in table
    assert "| m | test | **all benign (FPR)** | BENIGN | 2 | 1 | 50.00 | - |" in table


def test_rate_of_empty_score_is_zero() -> None:
    assert ScenarioScore().rate == 0.0


@pytest.mark.shared_data
def test_shared_captures_are_replayed_and_labelled(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--shared replays the two real captures; every flow of each is its attack, none is benign."""
    bundle = Path(__file__).resolve().parents[2] / "models" / "cnn-lstm-edge-cic-int8"
    empty_run = tmp_path / "run"
    empty_run.mkdir()
    (empty_run / "none.pcap").write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    rc = main(
        [str(empty_run), "--shared", str(shared_data), "--work", str(tmp_path / "w"), "--model", str(bundle)]
    )
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    slow = next(line for line in lines if "| shared | shared_slowloris | DoS slowloris |" in line)
    # the cicids2017 meter splits each of the 150 connections at its first FIN, as CICFlowMeter-4.0 did
    assert slow.split("|")[5].strip() == "300"
    sql = next(line for line in lines if "| shared | cicids2017_sqlinj |" in line)
    # 9 connections, each split in two: the 16 official rows plus the two trailing rows the
    # shared README says were labelled differently and left out of its file
    assert sql.split("|")[5].strip() == "18"
    assert not any("| shared |" in line and "BENIGN" in line for line in lines)
    assert not list(shared_data.rglob("replay-*"))  # nothing written next to the shared files
