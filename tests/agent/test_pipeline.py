"""The pipeline in-process with the shipped model: micro-batch bounds, one final verdict per flow,
alerts once per flow, everything flushed at the end."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from edge_nids.agent.config import from_dict
from edge_nids.agent.records import flow_verdict
from edge_nids.agent.stats import AgentStats
from edge_nids.flows.pcap import open_capture

from .scenarios import write_scenarios


class _Recorder:
    """Collects what a sink receives."""

    errors = 0

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def emit(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def flush(self) -> None:
        pass

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        pass


def _run(
    pcap: Path, bundle: Path, cfg: dict, defer_us: int = 0
) -> tuple[Any, _Recorder, _Recorder, list[tuple[int, int]]]:
    from edge_nids.agent.pipeline import Pipeline
    from edge_nids.agent.service import load_model

    config = from_dict({"model": {"path": str(bundle)}, **cfg})
    model = load_model(config)
    calls: list[tuple[int, int]] = []  # (capture time of the call, flows in it)
    real_scores = model.classifier.scores

    alerts, flows = _Recorder(), _Recorder()
    pipe = Pipeline(config, model, alerts, flows, AgentStats(), None)
    pipe.defer_us = defer_us

    def scores(X: np.ndarray) -> np.ndarray:  # the real classifier, with its calls noted
        calls.append((pipe.now_us, len(X)))
        return real_scores(X)

    model.classifier.scores = scores
    # explanations score substituted rows through the same classifier when an alert line is
    # written; these tests count the pipeline's own batches, so they run without them
    model.stages.explainer = None
    with open_capture(pcap) as cap:
        for rec in cap:
            pipe.packet(rec)
    pipe.finish()
    return pipe, alerts, flows, calls


def test_batches_are_bounded_by_size_and_time(tmp_path: Path, agent_bundle: Path) -> None:
    pcap = next(p for p in write_scenarios(tmp_path) if p.stem == "http_dos")
    pipe, _, flows, calls = _run(pcap, agent_bundle, {"batch": {"max_flows": 16, "max_wait_ms": 50}})
    assert all(n <= 16 for _, n in calls)
    assert pipe.stats.batches == len(calls) and sum(n for _, n in calls) == len(flows.records)
    # every flow that ended at a packet (FIN) was classified at most 50 ms of capture time later
    # (at the first packet at or after that time; packets here are 50 µs apart)
    call_times = sorted(t for t, _ in calls)
    fin = [f for f in flows.records if f["flow"]["reason"] == "fin"]
    assert len(fin) >= 80
    for f in fin:
        end = datetime.strptime(f["flow"]["end"], "%Y-%m-%dT%H:%M:%S.%f%z")
        end_us = round(end.timestamp() * 1e6)
        waited = min(t - end_us for t in call_times if t >= end_us)
        assert waited <= 50_000 + 50, f


def test_each_flow_gets_one_verdict_and_at_most_one_alert(tmp_path: Path, agent_bundle: Path) -> None:
    pcap = next(p for p in write_scenarios(tmp_path) if p.stem == "port_scan")
    pipe, alerts, flows, _ = _run(pcap, agent_bundle, {"alerts": {"aggregate_window_s": 0}})
    ids = [f["flow_id"] for f in flows.records]
    assert len(ids) == len(set(ids)) == 150 == pipe.stats.flows
    flagged = {f["flow_id"] for f in flows.records if flow_verdict(f) == "attack"}
    alerted = [a["flow_id"] for a in alerts.records]
    assert len(alerted) == len(set(alerted)) == len(flagged) == pipe.stats.alerts
    assert set(alerted) == flagged
    assert len(pipe.table) == 0 and not pipe._pending


def _arrays_held(obj: Any, out: dict[int, int]) -> None:
    """The numpy buffers ``obj`` keeps alive (through dicts, tuples, lists and partials; not
    into flows), as id of the owning array -> its bytes."""
    import functools

    if isinstance(obj, np.ndarray):
        owner = obj if obj.base is None else obj.base
        out[id(owner)] = owner.nbytes
    elif isinstance(obj, functools.partial):
        for a in (*obj.args, *obj.keywords.values()):
            _arrays_held(a, out)
    elif isinstance(obj, dict):
        for v in obj.values():
            _arrays_held(v, out)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            _arrays_held(v, out)


def test_waiting_alerts_keep_only_their_own_rows(tmp_path: Path, agent_bundle: Path) -> None:
    """A scan of one host after another: each (scanner, host) group holds its latest merged
    alert, to be written at the end of its window with its raw inputs for the explanation.
    That is its own row (94 float32), not a view that keeps its whole classifier batch alive
    (256 float64 rows: 68 MiB held for 2,000 hosts x 40 ports before this was fixed)."""
    from edge_nids.agent.pipeline import Pipeline
    from edge_nids.agent.service import load_model

    from .pcapgen import ACK, RST, SYN, ipv4_tcp, write_pcap

    records, t = [], 1_700_000_000_000_000
    for h in range(300):
        dst = f"10.1.{h // 250}.{h % 250 + 1}"
        for port in range(1, 21):
            records.append((t, ipv4_tcp("10.0.0.1", dst, 40000, port, SYN)))
            records.append((t + 5, ipv4_tcp(dst, "10.0.0.1", port, 40000, RST | ACK)))
            t += 100
    pcap = tmp_path / "host_by_host_scan.pcap"
    write_pcap(pcap, records)
    config = from_dict({"model": {"path": str(agent_bundle)}})
    pipe = Pipeline(config, load_model(config), None, None, AgentStats(), None)
    with open_capture(pcap) as cap:
        for rec in cap:
            pipe.packet(rec)
    groups = list(pipe.aggregator._groups.values())
    merged = [g for g in groups if g.count]
    assert len(merged) >= 250, (len(groups), pipe.stats.alerts)
    held: dict[int, int] = {}
    for g in groups:
        _arrays_held(g.last, held)
    assert sum(held.values()) <= len(groups) * 94 * 4


def test_a_merged_open_alert_shows_its_flow_as_it_was_when_it_alerted(
    tmp_path: Path, agent_bundle: Path
) -> None:
    """Eight open UDP flows between two hosts alert while open (threshold 0): per group the
    first is written at once, the rest merged; the summary written at the end carries the
    latest merged alert, whose record is built only then but shows its flow when it alerted
    (open, its packets then), not the 30 packets the flow had when it ended."""
    from edge_nids.agent.records import alert_count

    from .pcapgen import ipv4_udp, write_pcap

    t0, records = 1_700_000_000_000_000, []
    for k in range(30):  # 100 ms apart, 3 s
        for port in range(1000, 1008):
            records.append((t0 + k * 100_000 + port, ipv4_udp("10.0.0.1", "10.0.0.2", port, 53, b"q")))
    pcap = tmp_path / "open_flows.pcap"
    write_pcap(pcap, records)
    _, alerts, flows, _ = _run(pcap, agent_bundle, {"model": {"path": str(agent_bundle), "threshold": 0.0}})
    assert [f["flow"]["pkts_toserver"] for f in flows.records] == [30] * 8
    assert sum(alert_count(a) for a in alerts.records) == 8
    summaries = [a for a in alerts.records if alert_count(a) > 1]
    assert summaries
    for a in alerts.records:
        assert a["flow"]["reason"] == "open"
        assert 5 <= a["flow"]["pkts_toserver"] < 30, a["flow"]
        assert a["flow"]["end"] == a["timestamp"]


def test_cached_score_text_is_the_rounded_score_repr() -> None:
    """A flow event's score flowvar is cached per score: the text of round(score, 6) every
    time, zero of either sign and NaN included (never cached)."""
    from edge_nids.agent.pipeline import _score_text

    for v in (0.953125, 0.953125, 0.1234567, 1e-9, 1.0, 0.0, -0.0, 0.0, float("nan")):
        assert _score_text(v) == repr(round(v, 6))


def _poll_and_stream(path: Path) -> Path:
    """40 short HTTP connections 0.6 s apart (a poller), and a UDP flow sending every 0.2 s
    alongside for 20 s (checked while open), in one capture."""
    from .pcapgen import ipv4_udp, write_pcap
    from .scenarios import T0, _http_conn

    frames = []
    for i in range(40):
        frames += _http_conn(T0 + i * 600_000, "192.0.2.10", "198.51.100.80", 41000 + i)
    frames += [
        (T0 + 3_000 + k * 200_000, ipv4_udp("192.0.2.20", "198.51.100.9", 5000, 9999, b"x" * 40))
        for k in range(100)
    ]
    write_pcap(path, sorted(frames, key=lambda r: r[0]))
    return path


def test_an_offline_replay_holds_ended_flows_back_with_the_same_records(
    tmp_path: Path, agent_bundle: Path
) -> None:
    """``run --pcap`` holds batches of ended flows back (``Pipeline.defer_us``) so a sparse
    capture's flows share model calls; every record is what the agent writes without that,
    in the same order: alerts merged in windows that close during the capture (threshold 0:
    every flow alerts, 2 s windows), open-flow checks in between, and on the shipped
    threshold the scenario captures with their escalation."""
    from edge_nids.agent.pipeline import REPLAY_DEFER_US
    from edge_nids.agent.records import alert_count

    from .pcapgen import ipv4_udp, write_pcap
    from .scenarios import T0, _http_conn

    pcap = _poll_and_stream(tmp_path / "poll.pcap")
    every = {"model": {"path": str(agent_bundle), "threshold": 0.0}, "alerts": {"aggregate_window_s": 2}}
    _, a0, f0, calls0 = _run(pcap, agent_bundle, every)
    _, a1, f1, calls1 = _run(pcap, agent_bundle, every, REPLAY_DEFER_US)
    assert len(f0.records) == 41 and len(a0.records) > 10
    assert f1.records == f0.records
    assert a1.records == a0.records
    assert len(calls1) * 2 < len(calls0), (len(calls1), len(calls0))  # 14 against 40
    assert sum(n for _, n in calls1) == sum(n for _, n in calls0)
    # an idle flow ends long after its last packet: its alert (at that time) opens a group of
    # its own in the live agent, as the window of the two connections' alerts closed at 2 s
    late = tmp_path / "late.pcap"
    write_pcap(
        late,
        sorted(
            _http_conn(T0, "192.0.2.10", "198.51.100.80", 41000)
            + _http_conn(T0 + 500_000, "192.0.2.10", "198.51.100.80", 41001)
            + [(T0 + 1_000_000 + k, ipv4_udp("192.0.2.10", "198.51.100.80", 5000, 53, b"q")) for k in (0, 9)]
            + [(T0 + 9_000_000, ipv4_udp("192.0.2.99", "198.51.100.9", 1, 2, b"end"))],
            key=lambda r: r[0],
        ),
    )
    every["flows"] = {"idle_timeout_s": 1.5, "classify_active_s": 5}  # no open-flow check
    _, a0, f0, _ = _run(late, agent_bundle, every)
    _, a1, f1, _ = _run(late, agent_bundle, every, REPLAY_DEFER_US)
    assert [alert_count(a) for a in a0.records] == [1, 1, 1, 1]  # first, summary (1), udp, last
    assert (a1.records, f1.records) == (a0.records, f0.records)
    for scenario in write_scenarios(tmp_path / "scenarios"):
        _, a0, f0, calls0 = _run(scenario, agent_bundle, {})
        _, a1, f1, calls1 = _run(scenario, agent_bundle, {}, REPLAY_DEFER_US)
        assert (a1.records, f1.records) == (a0.records, f0.records), scenario.stem
        assert len(calls1) <= len(calls0)
