"""alerts.suppress: matching alerts are counted, not written; their flows are still flagged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_nids.agent.config import ConfigError, from_dict
from edge_nids.agent.records import alert_count, flow_verdict, stats_counters
from edge_nids.agent.suppress import Suppressor

from .make_golden import run_agent
from .scenarios import write_scenarios

SCANNER = "203.0.113.66"  # the port_scan scenario's source


@pytest.fixture(scope="module")
def scan_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("suppress")
    return next(p for p in write_scenarios(out) if p.stem == "port_scan")


def _replay(pcap: Path, bundle: Path, tmp: Path, suppress: list[dict[str, Any]] | None) -> tuple[list, list]:
    args = ["--stats-eve"]
    if suppress is not None:
        cfg = tmp / "config.yaml"
        cfg.write_text(json.dumps({"alerts": {"suppress": suppress}}))  # JSON is YAML
        args += ["--config", str(cfg)]
    alerts, flows, _ = run_agent(pcap, bundle, args)
    return alerts, flows


def _split(alerts: list[dict]) -> tuple[list[dict], dict[str, Any]]:
    return [a for a in alerts if a["event_type"] == "alert"], stats_counters(
        [a for a in alerts if a["event_type"] == "stats"][-1]
    )


def test_suppressing_a_source_silences_its_alerts_but_not_its_verdicts(
    scan_pcap: Path, agent_bundle: Path, tmp_path: Path
) -> None:
    base_alerts, base_flows = _replay(scan_pcap, agent_bundle, tmp_path, None)
    base_lines, base_stats = _split(base_alerts)
    flagged = [f for f in base_flows if flow_verdict(f) == "attack"]
    assert len(flagged) >= 140 and base_lines and all(a["src_ip"] == SCANNER for a in base_lines)

    alerts, flows = _replay(scan_pcap, agent_bundle, tmp_path, [{"src": "203.0.113.0/24"}])
    lines, stats = _split(alerts)
    assert lines == []  # nothing written for the scanner
    assert stats["suppressed"] == stats["alerts"] == sum(alert_count(a) for a in base_lines) == len(flagged)
    # the flows are still classified, flagged and written, unchanged
    assert [flow_verdict(f) for f in flows] == [flow_verdict(f) for f in base_flows]
    assert flows == base_flows
    assert base_stats["suppressed"] == 0


def test_an_unrelated_entry_changes_nothing(scan_pcap: Path, agent_bundle: Path, tmp_path: Path) -> None:
    base_alerts, base_flows = _replay(scan_pcap, agent_bundle, tmp_path, None)
    unrelated = [
        {"src": "192.0.2.0/24"},  # another source
        {"src": SCANNER, "dest_port": 8443, "proto": "tcp"},  # every key must match: 8443 is not scanned
        {"dest": "2001:db8::/32"},  # an IPv6 network never matches IPv4 alerts
        {"family": "port scan"},  # today's alerts carry no family: no match
    ]
    alerts, flows = _replay(scan_pcap, agent_bundle, tmp_path, unrelated)
    assert flows == base_flows
    assert [a for a in alerts if a["event_type"] == "alert"] == [
        a for a in base_alerts if a["event_type"] == "alert"
    ]
    assert _split(alerts)[1]["suppressed"] == 0


def test_entries_match_on_every_key_they_set(scan_pcap: Path, agent_bundle: Path) -> None:
    """The first real alert of the scan against entries of each kind."""
    alerts, _, _ = run_agent(scan_pcap, agent_bundle, ["--aggregate-window", "0"])
    rec = alerts[0]
    assert rec["src_ip"] == SCANNER and rec["proto"] == "TCP"

    def hit(**entry: Any) -> bool:
        cfg = from_dict({"alerts": {"suppress": [entry]}})
        return Suppressor(cfg.alerts.suppress).matches(rec)

    assert hit(src=SCANNER) and hit(src="203.0.113.64/30") and hit(dest=rec["dest_ip"])
    assert hit(dest_port=rec["dest_port"], proto="TCP") and hit(proto="6") and hit(proto="tcp")
    assert not hit(proto="udp") and not hit(dest_port=(rec["dest_port"] + 1) % 65536)
    assert not hit(src="203.0.113.64/31") and not hit(src="::/0") and not hit(src=SCANNER, dest=SCANNER)
    assert not hit(family="port scan")
    with_family = {
        **rec,
        "alert": {**rec["alert"], "context": {**rec["alert"]["context"], "family": "Port Scan"}},
    }
    cfg = from_dict({"alerts": {"suppress": [{"family": "port scan"}]}})
    assert Suppressor(cfg.alerts.suppress).matches(with_family)
    assert not Suppressor(from_dict({}).alerts.suppress)


def test_pipeline_update_takes_a_new_suppress_list(scan_pcap: Path, agent_bundle: Path) -> None:
    """What SIGHUP does (service reload -> Pipeline.update): the new list applies from then on."""
    from edge_nids.agent.pipeline import Pipeline
    from edge_nids.agent.service import load_model
    from edge_nids.agent.stats import AgentStats
    from edge_nids.flows.pcap import open_capture

    class Sink:
        errors = 0

        def __init__(self) -> None:
            self.records: list[dict[str, Any]] = []

        def emit(self, r: dict[str, Any]) -> None:
            self.records.append(r)

        def flush(self) -> None: ...
        def reopen(self) -> None: ...
        def close(self) -> None: ...

    base = {"model": {"path": str(agent_bundle)}, "alerts": {"aggregate_window_s": 0}}
    cfg = from_dict(base)
    model = load_model(cfg)
    alerts, flows = Sink(), Sink()
    pipe = Pipeline(cfg, model, alerts, flows, AgentStats(), None)
    with open_capture(scan_pcap) as cap:
        recs = list(cap)
    half = len(recs) // 2
    for r in recs[:half]:
        pipe.packet(r)
    pipe.tick(recs[half - 1][0] + 1_000_000)  # classify what has ended so far
    before = len(alerts.records)
    assert before > 0 and pipe.stats.suppressed == 0
    pipe.update(
        from_dict({**base, "alerts": {"aggregate_window_s": 0, "suppress": [{"src": SCANNER}]}}), model
    )
    for r in recs[half:]:
        pipe.packet(r)
    pipe.finish()
    assert len(alerts.records) == before  # nothing more written after the reload
    assert pipe.stats.suppressed == pipe.stats.alerts - before > 0
    assert sum(flow_verdict(f) == "attack" for f in flows.records) == pipe.stats.alerts


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"source": "10.0.0.1"}, "alerts.suppress[1].source: unknown key"),
        ({"src": "10.0.0.0/33"}, "alerts.suppress[1].src: not an IP address or CIDR"),
        ({"dest": "2001:db8::/129"}, "alerts.suppress[1].dest: not an IP address or CIDR"),
        ({"dest": "example.org"}, "alerts.suppress[1].dest: not an IP address or CIDR"),
        ({"dest_port": 65536}, "alerts.suppress[1].dest_port: must be a port in 0..65535"),
        ({"dest_port": "ssh"}, "alerts.suppress[1].dest_port: must be a non-negative integer"),
        ({"proto": "tcpp"}, "alerts.suppress[1].proto: must be one of tcp"),
        ({}, "alerts.suppress[1]: set at least one of"),
        ("10.0.0.1", "alerts.suppress[1]: must be a mapping"),
    ],
)
def test_bad_entries_are_refused_naming_the_key(entry: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        from_dict({"alerts": {"suppress": [{"src": "10.0.0.1"}, entry]}})
    with pytest.raises(ConfigError, match=r"alerts\.suppress: must be a list"):
        from_dict({"alerts": {"suppress": {"src": "10.0.0.1"}}})
