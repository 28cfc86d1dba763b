"""Every alert, flow and stats event of a real replay validates against Suricata's own EVE schema.

The schema (Suricata's ``etc/schema.json``, GPL-2.0) is read from the shared reference
folder (``$EDGE_NIDS_DATA/../reference``, else ``../shared/reference`` beside the
repository); it is not copied into this project, and the test skips where it is absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from edge_nids.agent.records import alert_count, flow_score, flow_verdict, stats_counters

from .make_golden import run_agent
from .scenarios import SCENARIOS, write_scenarios

REPO = Path(__file__).resolve().parents[2]
SCHEMA_NAME = "suricata-eve-schema.json"


def _schema_path() -> Path | None:
    places = []
    if os.environ.get("EDGE_NIDS_DATA"):
        places.append(Path(os.environ["EDGE_NIDS_DATA"]).parent / "reference")
    places.append(REPO.parent / "shared" / "reference")
    return next((p / SCHEMA_NAME for p in places if (p / SCHEMA_NAME).is_file()), None)


@pytest.fixture(scope="module")
def validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the dev extra")
    path = _schema_path()
    if path is None:
        pytest.skip(f"Suricata's EVE schema ({SCHEMA_NAME}) not found in the shared reference folder")
    schema = json.loads(path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def _captures(tmp: Path) -> list[Path]:
    demo = REPO / "lab" / "captures" / "demo.pcap"
    # the slow MQTT guessing of attacks_public: alerts of the login rule (refused logins)
    mqtt = REPO.parent / "shared" / "datasets" / "pcaps" / "attacks_public" / "mqttset_bruteforce.pcapng"
    return [*(p for p in (demo, mqtt) if p.is_file()), *write_scenarios(tmp)]


def _errors(validator: Any, rec: dict[str, Any]) -> list[str]:
    where = lambda e: "/".join(map(str, e.absolute_path)) or "(top)"  # noqa: E731
    return [f"{where(e)}: {e.message}" for e in validator.iter_errors(rec)]


def test_suricata_schema_accepts_every_event_of_a_replay(
    validator: Any, agent_bundle: Path, tmp_path: Path
) -> None:
    """Demo capture and the agent's scenario captures: alerts (aggregated and not), flow
    events and stats events all validate; our own fields are where the schema leaves room."""
    pcaps = _captures(tmp_path)
    assert len(pcaps) >= len(SCENARIOS)
    kinds: dict[str, int] = {}
    summaries = 0
    for pcap in pcaps:
        alerts, flows, _ = run_agent(pcap, agent_bundle, ["--stats-eve"])
        for rec in [*alerts, *flows]:
            rec["host"] = "sensor"  # run_agent drops the machine's name; the schema allows it
            errs = _errors(validator, rec)
            assert not errs, f"{pcap.name}: {rec['event_type']} event fails the schema: {errs[:5]}"
            kinds[rec["event_type"]] = kinds.get(rec["event_type"], 0) + 1
        events = [a for a in alerts if a["event_type"] == "alert"]
        summaries += sum("aggregate" in a["alert"]["context"] for a in events)
        stats = stats_counters([a for a in alerts if a["event_type"] == "stats"][-1])
        # the counters read back from their new places agree with the records written
        assert sum(alert_count(a) for a in events) == stats["alerts"] - stats["suppressed"]
        assert stats["flows"] == len(flows)
        assert all(flow_verdict(f) in ("attack", "benign") for f in flows)
        scores = [flow_score(f) for f in flows]
        assert all(s is not None and 0.0 <= s <= 1.0 for s in scores)
    assert kinds.get("alert", 0) > 0 and kinds.get("flow", 0) > 1000 and kinds.get("stats", 0) >= len(pcaps)
    assert summaries > 0, "no aggregation summary was validated"


def test_the_old_layout_fails_the_schema(validator: Any) -> None:
    """The check has teeth: the fields this project wrote before are refused."""
    old_flow = {
        "timestamp": "2017-07-06T13:40:12.123456+0000",
        "event_type": "flow",
        "src_ip": "10.0.0.1",
        "dest_ip": "10.0.0.2",
        "verdict": "attack",
        "score": 0.9,
    }
    errs = _errors(validator, old_flow)
    assert any("verdict" in e for e in errs) and any("score" in e for e in errs)
    old_alert = {
        "timestamp": "2017-07-06T13:40:12.123456+0000",
        "event_type": "alert",
        "alert": {"signature_id": 1, "score": 0.9},
        "count": 1,
    }
    assert len(_errors(validator, old_alert)) == 2
