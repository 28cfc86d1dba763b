"""EVE fields: Community ID v1 against the spec's published vectors, timestamps, flow ids."""

from __future__ import annotations

import pytest

from edge_nids.agent.eve import community_id, eve_timestamp, flow_id_int

# Vectors from the Community ID spec's reference baseline (corelight/community-id-spec), as
# also used by Zeek's and Suricata's test suites.
V6A = "fe80:0001:0203:0405:0607:0809:0A0B:0C0D"
V6B = "fe80:1011:1213:1415:1617:1819:1A1B:1C1D"


@pytest.mark.parametrize(
    ("src", "dst", "proto", "sport", "dport", "seed", "expected"),
    [
        ("1.2.3.4", "5.6.7.8", 6, 1122, 3344, 0, "1:wCb3OG7yAFWelaUydu0D+125CLM="),
        ("5.6.7.8", "1.2.3.4", 6, 3344, 1122, 0, "1:wCb3OG7yAFWelaUydu0D+125CLM="),
        ("1.2.3.4", "5.6.7.8", 17, 1122, 3344, 0, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="),
        ("5.6.7.8", "1.2.3.4", 17, 3344, 1122, 0, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="),
        ("1.2.3.4", "5.6.7.8", 1, 8, 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="),
        ("5.6.7.8", "1.2.3.4", 1, 0, 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="),
        (V6A, V6B, 58, 128, 0, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo="),
        ("1.2.3.4", "5.6.7.8", 46, None, None, 0, "1:ikv3kmf89luf73WPz1jOs49S768="),
        ("1.2.3.4", "5.6.7.8", 6, 1122, 3344, 1, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="),
        ("1.2.3.4", "5.6.7.8", 17, 1122, 3344, 1, "1:OShq+iKDAMVouh/4bMxB9Sz4amw="),
        ("1.2.3.4", "5.6.7.8", 1, 8, 0, 1, "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="),
    ],
)
def test_community_id_spec_vectors(src, dst, proto, sport, dport, seed, expected) -> None:
    assert community_id(src, dst, proto, sport, dport, seed) == expected


def test_community_id_one_way_icmp_keeps_direction() -> None:
    # destination unreachable (type 3) has no reply type: the tuple is not reordered
    a = community_id("1.2.3.4", "5.6.7.8", 1, 3, 1)
    b = community_id("5.6.7.8", "1.2.3.4", 1, 3, 1)
    assert a != b


def test_eve_timestamp_has_microseconds_and_offset() -> None:
    assert eve_timestamp(1499348412123456) == "2017-07-06T13:40:12.123456+0000"
    assert eve_timestamp(0) == "1970-01-01T00:00:00.000000+0000"


def test_flow_id_is_positive_int64_and_depends_on_start() -> None:
    a = flow_id_int("10.0.0.1", "10.0.0.2", 1000, 80, 6, 1)
    b = flow_id_int("10.0.0.1", "10.0.0.2", 1000, 80, 6, 2)
    assert 0 < a < 2**63 and 0 < b < 2**63 and a != b
    assert a == flow_id_int("10.0.0.1", "10.0.0.2", 1000, 80, 6, 1)


def test_timestamps_across_second_boundaries_and_cache_resets() -> None:
    """The cached per-second prefix never leaks into another second (µs carried over)."""
    import datetime as dt

    from edge_nids.agent import eve

    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    eve._TS_PREFIX.clear()
    for ts in [1_499_348_412_999_999, 1_499_348_413_000_000, 1_499_348_412_000_001, -1, 0, 2**41 + 7]:
        want = (epoch + dt.timedelta(microseconds=ts)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "+0000"
        assert eve_timestamp(ts) == want
    for sec in range(eve._TS_PREFIX_MAX + 10):  # more seconds than the cache holds
        eve_timestamp(sec * 1_000_000 + 5)
    assert len(eve._TS_PREFIX) <= eve._TS_PREFIX_MAX
    assert eve_timestamp(12_000_005) == "1970-01-01T00:00:12.000005+0000"


def test_packed_community_id_equals_the_text_one_for_real_flows(tmp_path) -> None:
    """On every flow of the scenario captures (TCP, UDP; both orders) and IPv6/ICMP tuples."""
    import socket

    from edge_nids.agent.eve import community_id_packed
    from edge_nids.flows.decode import Decoder
    from edge_nids.flows.pcap import open_capture
    from edge_nids.flows.table import FlowConfig, FlowTable

    from .scenarios import write_scenarios

    flows = []
    for pcap in write_scenarios(tmp_path):
        dec, table = Decoder(), FlowTable(FlowConfig(profile="corrected"))
        with open_capture(pcap) as cap:
            for ts, lt, frame, wire in cap:
                pkt = dec.decode(lt, frame, ts, wire)
                if pkt is not None:
                    flows += table.add(pkt)
        flows += table.flush()
    assert len(flows) > 200
    for f in flows:
        assert community_id_packed(f.src, f.dst, f.proto, f.sport, f.dport) == community_id(
            f.src_ip, f.dst_ip, f.proto, f.sport, f.dport
        )
    for src, dst, proto, sp, dp in [(V6A, V6B, 58, 128, 0), (V6B, V6A, 58, 129, 0), ("::1", "::1", 6, 9, 8)]:
        packed = (socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst))
        assert community_id_packed(*packed, proto, sp, dp) == community_id(src, dst, proto, sp, dp)


def test_templated_json_is_byte_identical_to_the_generic_encoder(tmp_path, agent_bundle) -> None:
    """Every line of real replays (demo capture, scenarios; alerts, summaries, flows, stats)
    re-encodes to itself both ways, and most lines took the template path."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from edge_nids.agent import eve

    from .scenarios import write_scenarios

    demo = Path(__file__).resolve().parents[2] / "lab" / "captures" / "demo.pcap"
    pcaps = [*([demo] if demo.is_file() else []), *write_scenarios(tmp_path)]
    templated = total = 0
    contexts: set[tuple[str, ...]] = set()
    for pcap in pcaps:
        out = tmp_path / f"{pcap.stem}.json"
        cmd = [
            sys.executable,
            "-m",
            "edge_nids.cli",
            "run",
            "--pcap",
            str(pcap),
            "--model",
            str(agent_bundle),
        ]
        cmd += ["--alerts", str(out), "--flows", str(out), "--stats-eve", "--stats-interval", "0"]
        subprocess.run(cmd, check=True, capture_output=True)
        for line in out.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            rec["host"] = 'sensor "ü"'  # a name that needs escaping, in its place
            want = eve.to_json_generic(rec)
            assert eve.to_json(rec) == want
            assert json.loads(want) == rec
            total += 1
            templated += tuple(rec) in (eve._FLOW_EVENT_KEYS, eve._ALERT_EVENT_KEYS)
            if rec["event_type"] == "alert":
                contexts.add(tuple(rec["alert"]["context"]))
    assert total > 3000 and templated > 0.9 * total
    # every first alert line's context (explained) has a template; summaries and the rare
    # escalated alert (its source's count below the threshold) go through json
    firsts = {c for c in contexts if "aggregate" not in c and "escalated" not in c}
    assert firsts and all(c[:-1] in eve._CONTEXT_HEAD and c[-1] == "explanation" for c in firsts)
    assert len(contexts) > len(firsts)


def test_templated_alert_context_is_json_or_falls_back_to_it() -> None:
    """The alert context template writes what json writes (skipped and given explanations,
    text to escape); values it cannot write as json does (NaN, a bool count, a numpy int,
    an unknown key, a summary) go through json: the same text or the same error."""
    import json

    import numpy as np
    import pytest

    from edge_nids.agent import eve

    ctx = {"score": 0.5, "threshold": 0.5, "model": {"name": "m", "version": "1"}, "family": "scan"}
    base = {k: 0 for k in eve._COMMON_KEYS} | {"timestamp": "t", "community_id": "c", "event_type": "alert"}
    base |= {"in_iface": "", "host": "h", "src_ip": "a", "dest_ip": "b", "proto": "TCP"}
    flow = {k: 0 for k in eve._FLOW_KEYS} | {"start": "s", "end": "e", "reason": "open"}
    alert = {k: 1 for k in eve._ALERT_KEYS} | {"action": "allowed", "signature": "x", "category": "y"}
    for extra in (
        {"count": 3, "explanation_skipped": 'too many "lines"'},
        {"count": 2, "aggregate": {"first": "f", "last": "l", "window_s": 60.0}, "explanation": []},
        {"count": True},
        {"count": np.int64(4)},
        {"count": 1, "explanation": [{"feature": "ü", "value": None, "effect": -0.5}]},
        {"count": 1, "note": "unknown key"},
        {"count": 1, "aggregate": {"first": "f", "last": "l", "window_s": 60}},
    ):
        rec = base | {"alert": alert | {"context": ctx | extra}, "flow": flow}
        try:
            want = eve.to_json_generic(rec)
        except TypeError:  # numpy ints are not JSON to json either
            with pytest.raises(TypeError):
                eve.to_json(rec)
            continue
        assert eve.to_json(rec) == want
        assert json.loads(want)["alert"]["context"] == json.loads(json.dumps(ctx | extra, default=int))
    multi = {"score": 0.25, "threshold": 0.5, "model": ctx["model"], "class": 'Dö"S', "family": "other"}
    for c in (multi | {"count": 1}, multi | {"count": 1, "explanation_skipped": "n"}):
        rec = base | {"alert": alert | {"context": c}, "flow": flow}
        assert eve.to_json(rec) == eve.to_json_generic(rec)
    rec = base | {"alert": alert | {"context": ctx | {"score": float("nan"), "count": 1}}, "flow": flow}
    with pytest.raises(ValueError):
        eve.to_json(rec)
