"""The detection corpus and its evaluation: labels from the attack MANIFEST, grouped folds,
threshold choice, flow kinds, and the agent replay used to judge held-out captures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_nids.flows.labels import BENIGN
from edge_nids.flows.schema import EDGE_FLOWS
from edge_nids.training.corpus import Capture, attack_labeller, build_corpus, find_captures
from edge_nids.training.detection import (
    FLOW_KINDS,
    INPUTS,
    Replayed,
    Results,
    _run_to_run,
    assign_folds,
    attach_open_checks,
    flow_kind,
    lab_first_alerts,
    load_flows,
    parse_escalation,
    pick_threshold,
    pick_threshold_replayed,
    replay,
    training_rows,
)

ROOT = Path(__file__).resolve().parents[2]


def _x(**values: float) -> list[float]:
    x = [0.0] * len(EDGE_FLOWS)
    for k, v in values.items():
        x[EDGE_FLOWS.index(k.replace("_", " "))] = v
    return x


def test_flow_kinds() -> None:
    assert flow_kind(_x(Protocol=17, Destination_Port=5353, Total_Fwd_Packets=1)) == FLOW_KINDS[0]
    assert flow_kind(_x(Protocol=17, Destination_Port=53, Total_Fwd_Packets=1)) == "UDP, one packet, one way"
    assert flow_kind(_x(Protocol=17, Total_Fwd_Packets=1, Total_Backward_Packets=1)) == "UDP, both ways"
    assert flow_kind(_x(Protocol=6, Total_Fwd_Packets=8, Total_Backward_Packets=7, FIN_Flag_Count=2)) == (
        "TCP, > 10 packets, FIN seen"
    )
    assert flow_kind(_x(Protocol=6, Total_Fwd_Packets=1, Total_Backward_Packets=1, RST_Flag_Count=1)) == (
        "TCP, RST seen"
    )
    assert flow_kind(_x(Protocol=58)) == "ICMP / ICMPv6"


def test_inputs_are_schema_columns_without_ports_or_stack_fingerprints() -> None:
    assert set(INPUTS) <= set(EDGE_FLOWS.names)
    assert not {"Destination Port", "Init_Win_bytes_forward", "Init_Win_bytes_backward"} & set(INPUTS)


def test_pick_threshold_is_the_lowest_that_keeps_the_benign_share() -> None:
    benign = np.array([0.1] * 990 + [0.55] * 5 + [0.75] * 5)
    assert pick_threshold(benign, 0.01) == 0.5  # 10 of 1000 at 0.5: 1 %
    assert pick_threshold(benign, 0.005) == 141 / 256  # 5 of 1000 from the step above 0.55 on
    assert pick_threshold(np.array([0.999]), 0.0) == 255 / 256


def test_the_threshold_is_chosen_with_the_escalation_it_ships_with() -> None:
    # one benign pair: 4 flows at 0.96 then 8 at 0.6, 1 s apart; another pair: 88 flows at 0.1
    loud = Replayed(
        labels=[BENIGN] * 12,
        srcs=[b"\x01"] * 12,
        dsts=[b"\x09"] * 12,
        checks=[[(i * 1_000_000, 0.96 if i < 4 else 0.6)] for i in range(12)],
    )
    quiet = Replayed(
        labels=[BENIGN] * 88, srcs=[b"\x02"] * 88, dsts=[b"\x09"] * 88, checks=[[(i, 0.1)] for i in range(88)]
    )
    rule = parse_escalation("3,60,0.5")
    assert rule is not None and (rule.alerts, rule.window_s, rule.threshold) == (3, 60.0, 0.5)
    assert parse_escalation("none") is None
    with pytest.raises(ValueError, match="ALERTS,WINDOW_S,THRESHOLD"):
        parse_escalation("3,60")
    # on the command line: argparse's usage error naming the option, no traceback
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "edge_nids.cli", "detection", "--report-only", "--escalation", "3,60"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "argument --escalation: expected ALERTS,WINDOW_S,THRESHOLD or none" in done.stderr
    # without escalation 0.5 flags 12 of 100 and 0.6+ 4 of 100 (all the loud 0.96s)
    assert pick_threshold_replayed([loud, quiet], 0.04, None) == 154 / 256  # first step above 0.6
    # with it, the loud source escalates after 3 alerts: any threshold up to 0.96 flags 12
    assert loud.flagged(0.9, rule) == [True] * 12
    assert pick_threshold_replayed([loud, quiet], 0.04, rule) == 246 / 256  # first step above 0.96
    assert pick_threshold_replayed([loud, quiet], 0.12, rule) == 0.5


def test_the_flood_rule_is_parsed_with_the_pair_rule_and_judged_with_it() -> None:
    rule = parse_escalation("6,60,0.05", "10,10,0.5")
    assert rule is not None and rule.flood is not None
    assert (rule.flood.sources, rule.flood.window_s, rule.flood.threshold) == (10, 10.0, 0.5)
    assert parse_escalation("6,60,0.05", "none").flood is None  # type: ignore[union-attr]
    with pytest.raises(
        ValueError,
        match="--flood-escalation, --volume, --sweep, --logins, --ports and --rate need --escalation",
    ):
        parse_escalation("none", "10,10,0.5")
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "edge_nids.cli", "detection", "--report-only"]
    cmd += ["--flood-escalation", "10,x,0.5"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "argument --flood-escalation: expected SOURCES,WINDOW_S,THRESHOLD or none" in done.stderr
    # a spoofed flood: 12 sources, one flow each, 0.95 for the first 10 then 0.6; a benign
    # server's 30 clients at 0.6 that never alerted
    flood = Replayed(
        labels=["DoS"] * 12,
        srcs=[bytes([10, 0, 0, i]) for i in range(12)],
        dsts=[b"\x09"] * 12,
        checks=[[(i * 1000, 0.95 if i < 10 else 0.6)] for i in range(12)],
    )
    quiet = Replayed(
        labels=[BENIGN] * 30,
        srcs=[bytes([10, 1, 0, i]) for i in range(30)],
        dsts=[b"\x08"] * 30,
        checks=[[(i * 1000, 0.6)] for i in range(30)],
    )
    vol = parse_escalation("6,60,0.05", "10,10,0.5", "200,16,16")
    assert vol is not None and vol.volume is not None
    assert (vol.volume.rate, vol.volume.sources, vol.volume.unanswered) == (200.0, 16, 16)
    with pytest.raises(ValueError, match="need --escalation"):
        parse_escalation("none", "none", "200,16,16")
    cmd2 = [sys.executable, "-m", "edge_nids.cli", "detection", "--report-only", "--volume", "200,x,16"]
    done = subprocess.run(cmd2, capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "argument --volume: expected RATE,SOURCES,UNANSWERED or none" in done.stderr
    # the volume rule reads each flow's service context: a flow at 250 flows/10 s from 20
    # unanswered sources alerts whatever its score; replays saved without the values: none do
    quiet.svc = [(250.0, 20.0, 20.0)] + [(10.0, 1.0, 1.0)] * 29
    assert quiet.flagged(0.9, vol) == [True] + [False] * 29
    assert quiet.flagged(0.9, rule) == [False] * 30  # no volume rule
    quiet.svc = []
    assert quiet.flagged(0.9, vol) == [False] * 30
    assert flood.flagged(0.9, rule) == [True] * 12
    assert flood.flagged(0.9, parse_escalation("6,60,0.05")) == [True] * 10 + [False] * 2
    assert quiet.flagged(0.9, rule) == [False] * 30


def test_the_login_rule_is_parsed_and_judged_from_the_reply_on() -> None:
    """A replay's flows with their ``flow.logins``: the guesser's 5th refusal comes 2 ms into
    its flow, after that flow's first check; the check after it alerts. Replays saved
    without the values: no flow meets the rule."""
    import subprocess
    import sys

    rule = parse_escalation("6,300,0.05", "none", "none", "none", "5")
    assert rule is not None and rule.logins is not None and rule.logins.refused == 5
    both = parse_escalation("6,300,0.05", "none", "none", "none", "5,10")
    assert both is not None and both.logins is not None and both.logins.tried == 10
    assert parse_escalation("6,300,0.05", "none", "none", "none", "none").logins is None  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="need --escalation"):
        parse_escalation("none", "none", "none", "none", "5")
    done = subprocess.run(
        [sys.executable, "-m", "edge_nids.cli", "detection", "--report-only", "--logins", "0"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "argument --logins: escalation.logins.refused must be a whole number >= 1" in done.stderr
    guesses = Replayed(
        labels=["BruteForce"] * 6 + [BENIGN],
        srcs=[b"\x01"] * 6 + [b"\x02"],
        dsts=[b"\x09"] * 7,
        checks=[[(i * 10_000, 0.01), (i * 10_000 + 5_000, 0.01)] for i in range(6)] + [[(0, 0.01)]],
        logins=[((i * 10_000 + 2_000, i + 1, 0),) for i in range(6)] + [()],
    )
    assert guesses.alert_us(0.9, rule) == [None] * 4 + [45_000, 55_000, None]
    guesses.logins = []
    assert guesses.flagged(0.9, rule) == [False] * 7


def test_run_to_run_judges_other_runs_at_this_reports_decision(tmp_path: Path) -> None:
    caps = [
        Capture("benign_public", "p2p", tmp_path, tmp_path),
        Capture("attacks_public", "scan", tmp_path, tmp_path, attack_type="scan"),
    ]

    def results(seed: int, thr: float, benign_score: float, **args: int) -> Results:
        p2p = Replayed(labels=[BENIGN] * 4, srcs=[b"a"] * 4, dsts=[b"b"] * 4)
        p2p.checks = [[(0, benign_score)]] * 4
        scan = Replayed(labels=["PortScan"] * 2, srcs=[b"c"] * 2, dsts=[b"d"] * 2, checks=[[(0, 0.95)]] * 2)
        agent = {"p2p": p2p, "scan": scan}
        a = {"seed": seed, **args}
        return Results(caps, {}, {}, {}, {}, agent, {}, {}, {}, thr, 0.5, a, [], 0.0)

    this, other = results(42, 0.9, 0.1), results(43, 0.99, 0.93)
    # a run whose networks kept seed 42 on the folds and rows of seed 44, as three members
    mixed = results(44, 0.9, 0.1, init_seed=42, ensemble=3)
    assert _run_to_run(this, [("w44", mixed)])[-1].split("|")[2].strip() == "44 (networks 42), ensemble of 3"
    lines = _run_to_run(this, [("w43", other)])
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[-2:]]
    # columns: run, seed, its threshold, benign and attacker flows there, then both at 0.9
    assert cells[0] == [
        *("this report", "42", "0.9000", "0.00 % (0/4)", "100.00 % (2/2)"),
        *("0.00 % (0/4)", "100.00 % (2/2)", "none"),
    ]
    # the other run: nothing at its own 0.99; at this report's 0.9 its P2P flows are flagged
    assert cells[1] == [
        *("w43", "43", "0.9900", "0.00 % (0/4)", "0.00 % (0/2)"),
        *("100.00 % (4/4)", "100.00 % (2/2)", "`p2p` 4"),
    ]


def test_folds_hold_each_capture_once_and_spread_attack_types(tmp_path: Path) -> None:
    caps = [Capture("benign_public", f"b{i}", tmp_path, tmp_path) for i in range(10)]
    caps += [
        Capture("attacks_public", f"a{i}", tmp_path, tmp_path, attack_type=t) for i, t in enumerate("sssfff")
    ]
    folds = assign_folds(caps, 3, 1)
    assert sorted(folds) == sorted(c.name for c in caps)
    for t in "sf":
        assert len({folds[c.name] for c in caps if c.attack_type == t}) == 3  # each type in every fold
    assert folds == assign_folds(caps, 3, 1)  # seeded


def test_attack_labeller_without_addresses_uses_the_victim_service() -> None:
    row = {
        "file": "x.pcap",
        "attack_type": "scan",
        "attacker": "300 internet sources (anonymized)",
        "victim": "10 addresses (anonymized), UDP/427",
    }
    label = attack_labeller(row)

    class F:
        def __init__(self, proto: int, sport: int, dport: int) -> None:
            self.src, self.dst, self.proto, self.sport, self.dport = b"\1" * 4, b"\2" * 4, proto, sport, dport

    assert label(F(17, 40000, 427)) == "PortScan"
    assert label(F(6, 40000, 427)) == BENIGN
    assert label(F(17, 40000, 53)) == BENIGN


@pytest.mark.shared_data
def test_spoofed_syn_flood_capture_is_labelled_by_its_victim(shared_data: Path, tmp_path: Path) -> None:
    caps = [c for c in find_captures(shared_data, [], tmp_path) if c.name == "sop_syn_flood"]
    (cf,) = load_flows(build_corpus(caps))
    attack = cf.classes != BENIGN
    # ~1,000 spoofed sources to 192.168.198.130:80; the 63 DNS queries of the capture stay benign
    assert 990 <= attack.sum() <= 1010
    benign = cf.X[~attack]
    assert len(benign) > 0
    assert set(benign[:, EDGE_FLOWS.index("Destination Port")]) == {53}
    _, y = training_rows([cf], 100, 0)
    assert (y == 1).sum() == 100 and (y == 0).sum() == min(100, len(benign))


@pytest.mark.slow
def test_replay_records_every_classification_of_every_flow() -> None:
    bundle = ROOT / "models" / "cnn-lstm-edge-cic-int8"
    rep = replay(bundle, ROOT / "tests" / "data" / "tcp_port_scan.pcap", "PortScan")
    assert len(rep.labels) == 40 and set(rep.labels) == {"PortScan"}
    assert all(len(c) >= 1 for c in rep.checks)
    scores = [max(s for _, s in c) for c in rep.checks]
    assert rep.flagged(0.0) == [True] * 40
    assert rep.flagged(1.01) == [False] * 40
    assert sum(rep.flagged(0.5)) == sum(s >= 0.5 for s in scores)
    first = rep.alert_us(0.0)
    assert all(t is not None and t >= f for t, f in zip(first, rep.first_us, strict=True))


def test_lab_first_alerts_name_each_run_and_say_none_when_one_never_alerts(tmp_path: Path) -> None:
    import ipaddress

    run = tmp_path / "run"
    run.mkdir()
    (run / "labels.csv").write_text(
        "scenario,label,attacker,victim,start,end\n"
        "nmap_syn,PortScan,198.51.100.7,192.0.2.10,100.0,110.0\n"
        "nmap_udp,PortScan,198.51.100.7,192.0.2.10,200.0,210.0\n"
        "nmap_sweep,PortScan,198.51.100.7,192.0.2.10,300.0,310.0\n"
        "nmap_sweep,PortScan,198.51.100.7,192.0.2.20,300.0,310.0\n"
        "syn_flood_spoofed,DoS SYN Flood,0.0.0.0,192.0.2.10,400.0,410.0\n"
    )
    a, v, n = (ipaddress.ip_address(x).packed for x in ("198.51.100.7", "192.0.2.10", "192.0.2.20"))
    # one pcap: the SYN scan alerts 1.5 s in (second flow), the UDP scan's flow stays below 0.9,
    # the sweep alerts only on the neighbour, 0.25 s in
    syn = Replayed(
        labels=["PortScan"] * 2, srcs=[a, a], dsts=[v, v], first_us=[100_200_000, 101_000_000],
        checks=[[(100_300_000, 0.2)], [(101_000_000, 0.5), (101_500_000, 0.95)]],
    )  # fmt: skip
    other = Replayed(
        labels=["PortScan"] * 3, srcs=[a, a, a], dsts=[v, v, n],
        first_us=[200_100_000, 300_000_000, 300_100_000],
        checks=[[(200_600_000, 0.8)], [(300_500_000, 0.1)], [(300_250_000, 0.99)]],
    )  # fmt: skip
    # a spoofed flood's row names no attacker: any source to the victim counts (not a flow elsewhere)
    spoofed = Replayed(
        labels=["DoS SYN Flood"] * 2, srcs=[ipaddress.ip_address("9.8.7.6").packed, a], dsts=[v, n],
        first_us=[400_100_000, 400_000_000], checks=[[(400_300_000, 0.97)], [(400_050_000, 0.99)]],
    )  # fmt: skip
    got = lab_first_alerts([syn, other, spoofed], [run, tmp_path / "missing"], 0.9)
    assert got == {
        "PortScan": ["nmap_syn 1.50", "nmap_udp none", "nmap_sweep 0.25"],
        "DoS SYN Flood": ["syn_flood_spoofed 0.30"],
    }


@pytest.mark.slow
def test_open_checks_are_the_agents_classifications_of_open_flows(tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "demo"
    run.mkdir()
    shutil.copy(ROOT / "lab" / "captures" / "demo.pcap", run / "demo.pcap")
    shutil.copy(ROOT / "lab" / "captures" / "demo.labels.csv", run / "labels.csv")
    (cf,) = load_flows(build_corpus(find_captures(None, [run], tmp_path / "corpus")))
    attach_open_checks([cf], None, [run], tmp_path / "corpus")
    assert cf.open_X is not None and len(cf.open_X) == len(cf.open_classes) > 0
    opened = dict(zip(*np.unique(cf.open_classes, return_counts=True), strict=True))
    # slowloris connections stay open for seconds and are checked while open; a SYN flood's
    # flows end at once (SYN, SYN-ACK, RST) and never are
    assert opened.get("DoS slowloris", 0) > 0 and "DoS SYN Flood" not in opened
    i = EDGE_FLOWS.index("Total Fwd Packets")
    slow = cf.classes == "DoS slowloris"
    # an open check sees a flow before its end: never more packets than its class's longest flow
    assert cf.open_X[cf.open_classes == "DoS slowloris", i].max() <= cf.X[slow, i].max()
    _, y0 = training_rows([cf], 50, 0)
    _, y1 = training_rows([cf], 50, 0, per_capture_open=20)
    assert len(y1) - len(y0) == sum(min(20, n) for n in opened.values())


@pytest.mark.tensorflow
def test_ensemble_is_one_model_averaging_members_of_other_seeds(tmp_path: Path) -> None:
    """``fit_cnn(members=2)`` on the demo capture's real rows: two CNN-LSTMs from two seeds on
    the same rows and preprocessing, shipped as one int8 bundle that scores their mean."""
    import json
    import shutil

    pytest.importorskip("tf_keras", reason="needs the train extra (TensorFlow, tf-keras)")
    from edge_nids.agent.classifier import Classifier
    from edge_nids.training.detection import fit_cnn, write_bundle_from
    from edge_nids.training.fit import predict

    run = tmp_path / "demo"
    run.mkdir()
    shutil.copy(ROOT / "lab" / "captures" / "demo.pcap", run / "demo.pcap")
    shutil.copy(ROOT / "lab" / "captures" / "demo.labels.csv", run / "labels.csv")
    (cf,) = load_flows(build_corpus(find_captures(None, [run], tmp_path / "corpus")))
    X, y = training_rows([cf], 150, 0)
    t = fit_cnn(X, y, 5, "cnn-lstm", 3, members=2)
    assert len(t.members) == 2 and len(t.member_epochs) == 2
    Xp = t.preprocessor.transform(cf.X)
    p0, p1 = (predict(m, Xp) for m in t.members)
    assert np.abs(p0 - p1).max() > 1e-3  # other seeds, other weights
    np.testing.assert_allclose(predict(t.model, Xp), (p0 + p1) / 2, atol=1e-6)

    out = write_bundle_from(t, tmp_path / "model", tmp_path / "bundle", 0.5, "ens", {})
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["model"]["name"] == "cnn-lstm-x2"
    assert meta["model"]["params"] == sum(m.count_params() for m in t.members)
    got = Classifier(out).scores(cf.X)
    assert np.abs(got - (p0 + p1)[:, 1] / 2).max() < 0.05  # int8 steps of the mean


def test_check_sources_replay_with_the_shipped_bundle_and_get_their_own_section(tmp_path: Path) -> None:
    """``--check``: each subfolder with captures is a source (a capture directly in the folder
    makes the folder one); every capture is replayed through the bundle, a file that is no
    capture is left out; the report gets one row per source at the report's decision."""
    import shutil

    from edge_nids.bundle import default_bundle_path
    from edge_nids.training.detection import _checks_section, check_sources, replay_checks

    data = ROOT / "tests" / "data"
    (tmp_path / "scan").mkdir()
    shutil.copy(data / "tcp_port_scan.pcap", tmp_path / "scan")
    (tmp_path / "web").mkdir()
    shutil.copy(data / "tcp_fin_close.pcap", tmp_path / "web")
    (tmp_path / "web" / "notes.pcap").write_text("not a capture\n")
    shutil.copy(data / "icmp_echo.pcap", tmp_path)
    assert {k: [p.name for p in v] for k, v in check_sources([tmp_path]).items()} == {
        tmp_path.name: ["icmp_echo.pcap"],
        "scan": ["tcp_port_scan.pcap"],
        "web": ["notes.pcap", "tcp_fin_close.pcap"],
    }
    checks = replay_checks(default_bundle_path(), [tmp_path])
    assert sorted(checks["web"]) == ["tcp_fin_close.pcap"]  # notes.pcap left out
    assert len(checks["scan"]["tcp_port_scan.pcap"].labels) == 40
    assert set(checks["scan"]["tcp_port_scan.pcap"].labels) == {BENIGN}
    res = Results([], {}, {}, {}, {}, {}, {}, {}, {}, 0.0, 0.5, {}, [], 0.0, checks=checks)
    rows = {
        r.split("|")[1].strip(): [c.strip() for c in r.strip("|").split("|")]
        for r in _checks_section(res, 0.0, None)
        if r.startswith("| ") and "---" not in r
    }
    # threshold 0: every flow flagged; columns: source, captures, flows, flagged, captures hit, top
    assert rows["scan"][:5] == ["scan", "1", "40", "100.00 % (40/40)", "1"]
    assert rows["scan"][5] == "`tcp_port_scan.pcap` 40/40"
    assert rows["web"][:3] == ["web", "1", "1"]
    high = {r.split("|")[1].strip(): r for r in _checks_section(res, 1.01, None) if r.startswith("| ")}
    assert high["scan"].split("|")[4].strip() == "0.00 % (0/40)"


def test_a_check_folder_without_captures_is_refused_before_any_training(tmp_path: Path) -> None:
    import subprocess
    import sys

    from edge_nids.training.detection import check_sources

    (tmp_path / "empty").mkdir()
    for bad, why in ((tmp_path / "missing", "not a folder"), (tmp_path / "empty", "no capture files")):
        with pytest.raises(ValueError, match=why):
            check_sources([bad])
    cmd = [sys.executable, "-m", "edge_nids.cli", "detection", "--check", str(tmp_path / "empty")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"edge-nids detection: --check {tmp_path / 'empty'}: no capture files (.pcap, .pcapng, .cap) in it"
    )
    # with --report-only the bundle at -o must be there: it is what the captures are replayed through
    (tmp_path / "empty" / "a.pcap").write_bytes((ROOT / "tests" / "data" / "icmp_echo.pcap").read_bytes())
    cmd += ["--report-only", "-o", str(tmp_path / "nobundle")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    want = "edge-nids detection: --check replays through the bundle at -o, and there is none at "
    assert done.stderr.strip() == want + str(tmp_path / "nobundle")


def test_the_port_scan_rule_is_parsed_and_judged_from_a_replay() -> None:
    """``--ports``: 4 (stealth probes on), 4,nostealth, none; a replay's ``ports`` values force
    the flows that meet it from their start, whatever their score, and only those."""
    from edge_nids.agent.escalate import PortScanRule

    rule = parse_escalation("6,300,0.05", ports="4")
    assert rule is not None and rule.ports == PortScanRule(4, True)
    assert parse_escalation("6,300,0.05", ports="4,nostealth").ports == PortScanRule(4, False)  # type: ignore[union-attr]
    assert parse_escalation("6,300,0.05", ports="none").ports is None  # type: ignore[union-attr]
    for bad in ("x", "4,stealthy", "-1"):
        with pytest.raises(ValueError, match=r"--ports '.*': expected PORTS or PORTS,nostealth or none"):
            parse_escalation("6,300,0.05", ports=bad)
    with pytest.raises(ValueError, match="--ports and --rate need --escalation"):
        parse_escalation("none", ports="4")
    # a slow scan's 6 probes (other unanswered ports 0..5, the last a FIN probe) at 0.2, and a
    # benign client's 3 connections at 0.2 (one other unanswered port at most)
    scan = Replayed(
        labels=["PortScan"] * 6,
        srcs=[b"\x01"] * 6,
        dsts=[b"\x02"] * 6,
        checks=[[(i * 20_000_000, 0.2)] for i in range(6)],
        ports=[(0, False), (1, False), (2, False), (3, False), (4, False), (0, True)],
    )
    client = Replayed(
        labels=[BENIGN] * 3,
        srcs=[b"\x03"] * 3,
        dsts=[b"\x02"] * 3,
        checks=[[(i * 1_000_000, 0.2)] for i in range(3)],
        ports=[(0, False), (1, False), (1, False)],
    )
    assert scan.forced(rule) == [None, None, None, None, 0, 0]
    assert scan.flagged(0.9, rule) == [False, False, False, False, True, True]
    assert scan.flagged(0.9, parse_escalation("6,300,0.05", ports="4,nostealth")) == [False] * 4 + [
        True,
        False,
    ]
    assert client.flagged(0.9, rule) == [False] * 3
    # replays saved before the rule have no values: nothing meets it
    old = Replayed(labels=["x"], srcs=[b"\x01"], dsts=[b"\x02"], checks=[[(0, 0.2)]])
    assert old.forced(rule) is None and old.flagged(0.9, rule) == [False]
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "edge_nids.cli", "detection", "--report-only", "--ports", "4,x"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "argument --ports: expected PORTS or PORTS,nostealth or none" in done.stderr


def test_the_report_compares_port_scan_rules_on_real_replays(shared_data: Path) -> None:
    """The report's port-scan table, from real replays (nDPI's slow TCP scan and an Android
    phone's benign traffic, replayed with the shipped bundle) at a threshold out of reach, so
    only the any-score rules fire: none flags nothing; 4 ports with stealth probes the scan's
    last 3 of 7; 3 ports its last 4; 4 without probes the last 3 (its 5th to 7th ports too)."""
    from edge_nids.bundle import default_bundle_path
    from edge_nids.training.corpus import Capture
    from edge_nids.training.detection import Results, _ports_sweep, replay

    agent_bundle = default_bundle_path()
    pcaps = shared_data / "pcaps"
    scan = Capture(
        "attacks_public",
        "ndpi_tcp_scan",
        pcaps / "attacks_public" / "ndpi_tcp_scan.pcapng",
        Path("-"),
        "scan",
    )
    phone = Capture("benign_public", "ndpi_android", pcaps / "benign_public" / "ndpi_android.pcap", Path("-"))
    agent = {
        scan.name: replay(agent_bundle, scan.pcap, "PortScan"),
        phone.name: replay(agent_bundle, phone.pcap, BENIGN),
    }
    rule = parse_escalation("6,300,0.05", ports="4")
    res = Results([scan, phone], {}, {}, {}, {}, agent, {}, {}, {}, 2.0, 2.0, {}, [], 0.0)
    table = _ports_sweep(res, 2.0, rule)  # type: ignore[arg-type]
    head = table.index("|---|" + "---:|" * 6)
    rows = {r.split(" | ")[0].lstrip("| "): r.split(" | ")[1:] for r in table[head + 1 :]}
    assert len(rows) == 6 and "benign_public flagged" in table[head - 1]
    n = len(agent[phone.name].labels)
    assert rows["(no port-scan rule)"][0] == f"0.00 % (0/{n})"
    assert rows["(no port-scan rule)"][3] == "0.00 % (0/7)"
    assert rows[">= 4 ports, or a stealth probe (shipped)"][3] == "42.86 % (3/7)"
    assert rows[">= 3 ports, or a stealth probe"][3] == "57.14 % (4/7)"
    assert rows[">= 4 ports, probes not counted"][3] == "42.86 % (3/7)"
    assert all(r[0] == f"0.00 % (0/{n})" for r in rows.values())
    assert rows[">= 4 ports, or a stealth probe (shipped)"][1:5:3] == ["—", "—"]  # no lab, no masscan
    # replays saved before the rule have no port values: no table
    for r in agent.values():
        r.ports = []
    assert _ports_sweep(res, 2.0, rule) == []  # type: ignore[arg-type]


def test_the_rate_rule_is_parsed_and_judged_from_a_replay() -> None:
    """``--rate``: PACKETS,PPS or none; a replay's ``rate`` values (per classification from 100
    packets of one side on) force a flow from the first classification that meets the rule,
    whatever its score, and only then."""
    from edge_nids.agent.escalate import RateRule

    rule = parse_escalation("6,300,0.05", rate="1000,1000")
    assert rule is not None and rule.rate == RateRule(1000, 1000.0)
    assert parse_escalation("6,300,0.05", rate="none").rate is None  # type: ignore[union-attr]
    for bad in ("x", "1000", "1000,fast"):
        with pytest.raises(ValueError, match=r"--rate '.*': expected PACKETS,PPS or none"):
            parse_escalation("6,300,0.05", rate=bad)
    with pytest.raises(ValueError, match="PACKETS must be at least 100"):
        parse_escalation("6,300,0.05", rate="50,1000")
    with pytest.raises(ValueError, match="--ports and --rate need --escalation"):
        parse_escalation("none", rate="1000,1000")
    # a flood checked at 0.4 s (801 packets), 1.0 s (2,001) and 4 s (8,000), and a stream of
    # varying sizes as fast; both score 0.1
    seen = ((400_000, 801), (1_000_000, 2001), (4_000_000, 8000))
    flood = [(t, (n, 0, t, True, True, True)) for t, n in seen]
    media = [(t, (n, 0, age, False, True, True)) for t, (n, _, age, *_) in flood]
    rep = Replayed(
        labels=["DoS UDP Flood", BENIGN],
        srcs=[b"\x01", b"\x03"],
        dsts=[b"\x02", b"\x02"],
        checks=[[(t, 0.1) for t, _ in flood]] * 2,
        rate=[tuple(flood), tuple(media)],
    )
    assert rep.forced(rule) == [1_000_000, None]
    assert rep.alert_us(0.9, rule) == [1_000_000, None]
    assert rep.alert_us(0.9, parse_escalation("6,300,0.05", rate="5000,1000")) == [4_000_000, None]
    # replays saved before the rule have no values: nothing meets it
    assert Replayed(labels=[BENIGN], srcs=[b"\x01"], dsts=[b"\x02"], checks=[[(0, 0.1)]]).forced(rule) is None


def test_judge_bundle_is_refused_by_name_without_saved_results_or_a_bundle(tmp_path: Path) -> None:
    """``--judge-bundle`` re-judges a run's saved results at a shipped bundle's decision: it
    needs ``--report-only`` and a bundle; either missing is named, with exit status 2."""
    import subprocess
    import sys

    base = [sys.executable, "-m", "edge_nids.cli", "detection", "--work", str(tmp_path)]
    done = subprocess.run([*base, "--judge-bundle", str(ROOT / "models" / "cnn-lstm-ctx-int8")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--judge-bundle needs --report-only" in done.stderr
    done = subprocess.run([*base, "--report-only", "--judge-bundle", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--judge-bundle {tmp_path / 'none'}: no bundle.json there" in done.stderr


def test_judge_bundle_takes_the_bundles_decision_and_replays_through_it(
    shared_data: Path, tmp_path: Path
) -> None:
    """A run's results judged at the shipped bundle's decision: its threshold and escalation
    rule become the report's, the run's own pick is kept, and the gold capture (the
    CIC-IDS2017 SQL injection: 9 attacker flows, web attacks the flow meter's features do
    not show) is replayed through that bundle."""
    import json

    from edge_nids.training.detection import _judge_bundle

    bundle = ROOT / "models" / "cnn-lstm-ctx-int8"
    meta = json.loads((bundle / "bundle.json").read_text())
    res = Results(captures=[], folds={}, classes={}, rf={}, keras={}, agent={}, test={}, test_rf={},
                  gold={}, threshold=0.9609375, rf_threshold=0.5,
                  args={"test_lab": [], "datasets": str(shared_data)}, fold_info=[], seconds=0.0,
                  escalation=None)  # fmt: skip
    _judge_bundle(res, bundle, tmp_path)
    assert res.threshold == meta["threshold"] and res.escalation == meta["escalation"]
    assert res.args["own_threshold"] == 0.9609375
    assert res.args["judged_bundle"]["path"] == str(bundle)
    (gold,) = res.gold.values()
    assert gold.labels.count("Web Attack") == 9
    # judged again (a re-render), the run's own pick stays the one it made
    _judge_bundle(res, bundle, tmp_path)
    assert res.args["own_threshold"] == 0.9609375


def test_the_threshold_guard_caps_a_pick_above_the_attack_scores_plateau(
    shared_data: Path, tmp_path: Path
) -> None:
    """Real attack captures (a masscan port scan, the SoP spoofed SYN flood, the kihy slowloris)
    replayed through the shipped bundle with its escalation rule: the guard's cap is the highest
    int8 step up to which the agent still flags 90 % of what it flags at 0.5 of every attack
    type (one step higher, one of them is below that); a pick above the cap is lowered to it and
    recorded, one below is left alone."""
    import json

    from edge_nids.agent.escalate import EscalationRule
    from edge_nids.training.detection import THRESHOLDS, AgentShares, _guard, lab_replays, plateau_cap

    names = {"scannerrec_masscan", "sop_syn_flood", "kihy_slowloris"}
    caps = [c for c in find_captures(shared_data, [], tmp_path) if c.name in names]
    flows = load_flows(build_corpus(caps))
    bundle = ROOT / "models" / "cnn-lstm-ctx-int8"
    rule = EscalationRule.from_dict(json.loads((bundle / "bundle.json").read_text())["escalation"])
    shares = AgentShares(lab_replays(bundle, flows), rule)
    assert set(shares.flows) == {"DoS Flood", "DoS slowloris", "PortScan"}
    assert shares.flows["DoS Flood"] >= 990 and shares.flows["PortScan"] >= 600
    cap = plateau_cap(shares, shares.flows, 0.9)
    assert 0.5 < cap < THRESHOLDS[-1]
    base = shares(0.5)
    for thr in [t for t in THRESHOLDS if t <= cap]:
        assert all(v >= 0.9 * base[c] for c, v in shares(thr).items())
    above = shares(THRESHOLDS[THRESHOLDS.index(cap) + 1])
    assert any(v < 0.9 * base[c] for c, v in above.items())
    # the flood is what binds here; a type of fewer than GUARD_MIN_FLOWS flows is not judged, so
    # with the flood counted as 10 flows the cap rises
    assert above["DoS Flood"] < 0.9 * base["DoS Flood"]
    assert plateau_cap(shares, {**shares.flows, "DoS Flood": 10}, 0.9) > cap

    def results(thr: float) -> Results:
        return Results(captures=[], folds={}, classes={}, rf={}, keras={}, agent={}, test={},
                       test_rf={}, gold={}, threshold=thr, rf_threshold=0.5, args={},
                       fold_info=[], seconds=0.0, escalation=rule.to_dict())  # fmt: skip

    high = results(THRESHOLDS[-1])
    _guard(high, 0.9, bundle, flows, "final model")
    assert high.threshold == cap
    (g,) = high.args["guards"]
    assert g["pick"] == THRESHOLDS[-1] and g["cap"] == cap and set(g["types"]) == set(shares.flows)
    low = results(0.5)
    _guard(low, 0.9, bundle, flows, "final model")
    assert low.threshold == 0.5 and low.args["guards"][0]["cap"] == cap
    off = results(THRESHOLDS[-1])
    _guard(off, 0.0, bundle, flows, "final model")
    assert off.threshold == THRESHOLDS[-1] and off.args["guards"] == []


def test_keep_recall_outside_zero_to_one_is_refused_by_name(tmp_path: Path) -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "edge_nids.cli", "detection", "--keep-recall", "1.5", "--work", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 2
    assert "--keep-recall" in r.stderr and "'1.5' is not a share from 0 to 1" in r.stderr
