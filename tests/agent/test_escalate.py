"""Escalation: a (source, destination) pair with recent alerts has its next flows alert at the
rule's lower score; a destination alerted against by many sources (a spoofed flood) has all
its flows alert at the flood rule's score.

The rule on its own (hand-made alert times), in the agent on the lab's demo capture (a real
recording of nmap, hping3, slowhttptest and ab against real servers), and the evaluation's
judging of the same replay, which must give the agent's own alerts.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from pathlib import Path

import pytest

from edge_nids.agent.escalate import EscalationRule, Escalator, FloodRule, VolumeRule, flag_checks

RULE = EscalationRule(alerts=3, window_s=10.0, threshold=0.5)
A, B = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
S = 1_000_000  # µs


def test_a_source_escalates_after_its_alerts_within_the_window() -> None:
    esc = Escalator(RULE)
    assert esc.escalated(A, 0) == 0
    for t in (0, 2 * S, 4 * S):
        esc.alerted(A, t)
    assert esc.escalated(A, 5 * S) == 3
    assert esc.escalated(A, 10 * S) == 3  # the oldest of the three is 10 s old: still in
    assert esc.escalated(A, 10 * S + 1) == 0  # and now out of the window
    assert esc.escalated(B, 5 * S) == 0  # another key is not escalated by A's alerts
    esc.alerted(A, 11 * S)  # the last three: 2, 4, 11 s
    assert esc.escalated(A, 12 * S) == 3


def test_a_rule_of_one_alert_keeps_only_the_last() -> None:
    esc = Escalator(EscalationRule(alerts=1, window_s=1.0, threshold=0.5))
    esc.alerted(A, 0)
    esc.alerted(A, 5 * S)
    assert esc.escalated(A, 5 * S + 1) == 1  # the alert at 5 s, not the one at 0
    assert esc.escalated(A, 7 * S) == 0


def test_memory_is_bounded_and_forgets_the_least_recently_alerting_source() -> None:
    esc = Escalator(RULE, max_keys=2)
    for src in (A, B):
        for t in range(3):
            esc.alerted(src, t)
    esc.alerted(A, 3)  # A is now the most recent
    esc.alerted(b"\x0a\x00\x00\x03", 4)  # a third source: B goes
    assert len(esc) == 2
    assert esc.escalated(A, 5) == 3
    assert esc.escalated(B, 5) == 0


FLOOD = EscalationRule(
    alerts=3, window_s=10.0, threshold=0.2, flood=FloodRule(sources=4, window_s=2.0, threshold=0.5)
)
V = b"\xc0\x00\x02\x01"


def _src(i: int) -> bytes:
    return b"\x0a\x01" + i.to_bytes(2, "big")


def test_a_destination_alerted_against_by_many_sources_is_flooded() -> None:
    esc = Escalator(FLOOD)
    for i, t in enumerate((0, S // 2, S, 3 * S // 2)):
        esc.alerted((_src(i), V), t)
    assert esc.flooded(V, 2 * S) == 4  # the oldest of the four alerted 2 s before: in
    assert esc.flooded(V, 2 * S + 1) == 0  # now out of the window
    assert esc.flooded(b"\xc0\x00\x02\x02", S) == 0  # another destination is not
    # one source alerting again and again is a pair matter, not a flood
    one = Escalator(FLOOD)
    for t in range(10):
        one.alerted((A, V), t)
    assert one.flooded(V, 10) == 0 and one.escalated((A, V), 10) == 3
    # why: the pair rule from its score, the flood rule from its own (higher) score
    assert one.why((A, V), 0.25, 10) == {"pair_alerts": 3, "window_s": 10.0, "threshold": 0.2}
    assert one.why((A, V), 0.15, 10) is None
    assert esc.why((b"\x0a\x09\x09\x09", V), 0.6, 2 * S) == {
        "destination_sources": 4,
        "window_s": 2.0,
        "threshold": 0.5,
    }
    assert esc.why((b"\x0a\x09\x09\x09", V), 0.4, 2 * S) is None  # below the flood's 0.5


def test_flood_memory_is_bounded_by_destinations_and_sources() -> None:
    esc = Escalator(FLOOD, max_keys=8)
    # a spoofed flood: 5,000 sources against one victim, then alerts against 20 other hosts
    for i in range(5000):
        esc.alerted((_src(i), V), i)
    assert esc.flooded(V, 5000) == 4
    assert len(esc._dsts[V]) == 4  # only the most recent distinct sources are kept
    assert len(esc) == 8  # and the pairs are bounded as before
    for j in range(20):
        esc.alerted((A, bytes([198, 51, 100, j])), 6000 + j)
    assert len(esc._dsts) == 8 and V not in esc._dsts  # the least recently alerted-against went


def test_flag_checks_catches_a_spoofed_flood_by_its_destination() -> None:
    # 6 spoofed sources, one flow each at 0.95 (0..5 ms), then 6 more at 0.6 and one at 0.4
    checks = (
        [[(i * 1000, 0.95)] for i in range(6)] + [[(10_000 + i, 0.6)] for i in range(6)] + [[(20_000, 0.4)]]
    )
    keys = [(_src(i), V) for i in range(13)]
    got = flag_checks(checks, keys, 0.9, FLOOD)
    assert got == [i * 1000 for i in range(6)] + [10_000 + i for i in range(6)] + [None]
    no_flood = EscalationRule(3, 10.0, 0.2)  # the pair rule alone: every source is new
    assert flag_checks(checks, keys, 0.9, no_flood) == [i * 1000 for i in range(6)] + [None] * 7


@pytest.mark.parametrize(
    ("flood", "problem"),
    [
        ({"sources": 0, "window_s": 10, "threshold": 0.5}, r"flood\.sources must be a whole number >= 1"),
        ({"sources": 10, "window_s": 0, "threshold": 0.5}, r"flood\.window_s must be a number > 0"),
        ({"sources": 10, "window_s": 10, "threshold": -0.1}, r"flood\.threshold must be in \[0, 1\]"),
        ({"sources": 10, "threshold": 0.5}, r"escalation\.flood lacks window_s"),
        ("10,10,0.5", r"escalation\.flood must be an object"),
    ],
)
def test_bad_flood_rules_are_refused_by_name(flood: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        EscalationRule.from_dict({"alerts": 6, "window_s": 60, "threshold": 0.05, "flood": flood})


def test_a_rule_round_trips_through_its_bundle_object() -> None:
    assert EscalationRule.from_dict(FLOOD.to_dict()) == FLOOD
    assert "flood" not in RULE.to_dict() and EscalationRule.from_dict(RULE.to_dict()) == RULE
    assert FLOOD.low == 0.2 and RULE.low == 0.5
    assert FLOOD.describe().endswith("; alerts from 4 sources against one host in 2 s, then from 0.5")


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"alerts": 0, "window_s": 60, "threshold": 0.5}, "alerts must be a whole number >= 1"),
        ({"alerts": True, "window_s": 60, "threshold": 0.5}, "alerts must be a whole number"),
        ({"alerts": 6, "window_s": 0, "threshold": 0.5}, "window_s must be a number > 0"),
        ({"alerts": 6, "window_s": 60, "threshold": 1.5}, r"threshold must be in \[0, 1\]"),
        ({"alerts": 6, "threshold": 0.5}, "lacks window_s"),
        ([6, 60, 0.5], "must be an object"),
    ],
)
def test_bad_rules_are_refused_by_name(rule: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        EscalationRule.from_dict(rule)  # type: ignore[arg-type]


def test_flag_checks_takes_the_checks_in_time_order() -> None:
    # three flows of A alert at 0.95 (0, 1, 2 s); then A's 0.6 flow at 3 s alerts by escalation,
    # B's 0.6 flow does not, A's 0.4 flow does not, and A's 0.6 flow at 30 s is past the window
    checks = [
        [(0, 0.95)],
        [(1 * S, 0.2), (2 * S, 0.95)],  # open check below, then above
        [(1 * S, 0.97)],
        [(3 * S, 0.6)],
        [(3 * S, 0.6)],
        [(3 * S, 0.4)],
        [(30 * S, 0.6)],
        [(0, 0.7)],  # before A's alerts: not escalated then
    ]
    srcs = [A, A, A, A, B, A, A, A]
    got = flag_checks(checks, srcs, 0.9, RULE)
    assert got == [0, 2 * S, 1 * S, 3 * S, None, None, None, None]
    # keyed by (source, destination) as the agent keys it: A's 0.6 flow to another host is not
    # escalated by A's alerts against V
    V, W = b"\xc0\x00\x02\x01", b"\xc0\x00\x02\x02"
    pairs = [(A, V), (A, V), (A, V), (A, W), (B, V), (A, V), (A, V), (A, V)]
    assert flag_checks(checks, pairs, 0.9, RULE) == [0, 2 * S, 1 * S, None, None, None, None, None]
    plain = flag_checks(checks, srcs, 0.9, None)
    assert plain == [0, 2 * S, 1 * S, None, None, None, None, None]
    # a rule at or above the threshold changes nothing
    assert flag_checks(checks, srcs, 0.5, RULE) == flag_checks(checks, srcs, 0.5, None)


def _replay(pcap: Path, bundle: Path, escalate: bool, threshold: float | None = None):
    from edge_nids.agent.config import from_dict
    from edge_nids.agent.pipeline import Pipeline, replay_capture
    from edge_nids.agent.service import load_model
    from edge_nids.agent.stats import AgentStats

    cfg = from_dict({"model": {"path": str(bundle), "escalate": escalate}})
    model = load_model(cfg)
    if threshold is not None:
        model.threshold = threshold
    pipe = Pipeline(cfg, model, None, None, AgentStats(), None)
    alerted: set[tuple] = set()
    checks: dict[int, list[tuple[int, float]]] = {}
    finals: list[tuple[tuple, list[tuple[int, float]], bytes]] = []

    def seen(f, score: float, attack: bool, final: bool) -> None:
        key = (f.src, f.dst, f.sport, f.dport, f.first_us)
        if attack:
            alerted.add(key)
        c = checks.setdefault(id(f), [])
        c.append((pipe.now_us, score))
        if final:
            finals.append((key, checks.pop(id(f)), (f.src, f.dst)))

    pipe.on_verdict = seen
    replay_capture(pipe, pcap)
    return pipe, model, alerted, finals


def _service_context(pcap: Path, bundle: Path) -> tuple[list[tuple[bytes, bytes]], list[tuple[float, ...]]]:
    """Per ended flow, in the order the agent ends them: its (src, dst) and the context a
    volume rule reads (the evaluation's replay, ``edge_nids.training.detection.replay``)."""
    from edge_nids.training.detection import replay

    rep = replay(bundle, pcap, "x")
    return list(zip(rep.srcs, rep.dsts, strict=True)), rep.svc


def test_the_agent_escalates_on_the_demo_capture_and_the_evaluation_agrees(
    repo_root: Path, agent_bundle: Path
) -> None:
    demo = repo_root / "lab" / "captures" / "demo.pcap"
    if not demo.is_file():
        pytest.skip("lab/captures/demo.pcap is not in this checkout")
    pipe, model, with_esc, _ = _replay(demo, agent_bundle, escalate=True)
    assert model.escalation is not None, "the default bundle ships an escalation rule"
    off, _, without, _ = _replay(demo, agent_bundle, escalate=False)
    assert off.stats.escalated == 0 and off.escalator is None
    # escalation adds alerts (the demo's attacker keeps alerting) and only adds them; some of
    # its alerts come earlier in a flow that would have alerted at a later check anyway
    assert pipe.stats.escalated > 0
    assert without < with_esc
    assert 0 < len(with_esc - without) <= pipe.stats.escalated
    # the evaluation's way: replay with nothing alerting, then judge the checks afterwards
    _, _, none, finals = _replay(demo, agent_bundle, escalate=False, threshold=2.0)
    assert not none
    keys, checks, pairs = zip(*finals, strict=True)
    judged = flag_checks(checks, pairs, model.threshold, model.escalation)
    assert {k for k, t in zip(keys, judged, strict=True) if t is not None} == with_esc


def test_an_escalated_alert_says_why(tmp_path: Path, repo_root: Path, agent_bundle: Path) -> None:
    import subprocess
    import sys

    demo = repo_root / "lab" / "captures" / "demo.pcap"
    if not demo.is_file():
        pytest.skip("lab/captures/demo.pcap is not in this checkout")
    out = tmp_path / "alerts.json"
    cmd = [sys.executable, "-m", "edge_nids.cli", "run", "--pcap", str(demo), "--alerts", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    rule = json.loads((agent_bundle / "bundle.json").read_text())["escalation"]
    escalated = []
    for line in out.read_text().splitlines():
        ctx = json.loads(line)["alert"]["context"]
        if "escalated" in ctx:
            escalated.append(ctx)
    assert escalated, "the demo's attacker raises escalated alerts"
    for ctx in escalated:
        assert ctx["escalated"] == {
            "pair_alerts": rule["alerts"],
            "window_s": rule["window_s"],
            "threshold": rule["threshold"],
        }
        assert rule["threshold"] <= ctx["score"] < ctx["threshold"]


def test_a_bundle_with_a_bad_rule_is_refused(tmp_path: Path, agent_bundle: Path) -> None:
    import shutil

    from edge_nids.bundle import BundleError, load_bundle, set_decision

    b = tmp_path / "b"
    shutil.copytree(agent_bundle, b)
    with pytest.raises(ValueError, match=r"escalation\.alerts"):
        set_decision(b, 0.9, {"alerts": -1, "window_s": 60, "threshold": 0.5})
    set_decision(b, 0.9, None)  # no rule: the threshold alone
    assert load_bundle(b).escalation is None and load_bundle(b).threshold == 0.9
    meta = json.loads((b / "bundle.json").read_text())
    meta["escalation"] = {"alerts": 6, "window_s": -1, "threshold": 0.5}
    (b / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="window_s must be a number > 0"):
        load_bundle(b)


@pytest.mark.shared_data
def test_a_real_spoofed_syn_flood_escalates_its_victim(shared_data: Path, agent_bundle: Path) -> None:
    """sop_syn_flood (Scapy SYNs from ~1,000 random sources to one web server, a capture from
    another network): no source alerts twice, so only the flood rule can lower the threshold;
    the agent's alerts are the evaluation's judging of the same replay."""
    pcap = shared_data / "pcaps" / "attacks_public" / "sop_syn_flood.pcapng"
    if not pcap.is_file():
        pytest.skip(f"{pcap} is not there")
    pipe, model, with_esc, _ = _replay(pcap, agent_bundle, escalate=True)
    assert model.escalation is not None and model.escalation.flood is not None
    _, _, without, _ = _replay(pcap, agent_bundle, escalate=False)
    victim = bytes([192, 168, 198, 130])
    gained = with_esc - without
    assert without < with_esc and len(gained) == pipe.stats.escalated
    assert all(k[1] == victim for k in gained)  # every escalated alert is a flow to the victim
    _, _, none, finals = _replay(pcap, agent_bundle, escalate=False, threshold=2.0)
    assert not none
    keys, checks, pairs = zip(*finals, strict=True)
    judged = flag_checks(checks, pairs, model.threshold, model.escalation)
    assert {k for k, t in zip(keys, judged, strict=True) if t is not None} == with_esc


@pytest.mark.shared_data
def test_a_flood_escalated_alert_says_why(tmp_path: Path, shared_data: Path, agent_bundle: Path) -> None:
    import subprocess
    import sys

    pcap = shared_data / "pcaps" / "attacks_public" / "sop_syn_flood.pcapng"
    if not pcap.is_file():
        pytest.skip(f"{pcap} is not there")
    out = tmp_path / "alerts.json"
    cmd = [sys.executable, "-m", "edge_nids.cli", "run", "--pcap", str(pcap), "--alerts", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    flood = json.loads((agent_bundle / "bundle.json").read_text())["escalation"]["flood"]
    contexts = [json.loads(x)["alert"]["context"] for x in out.read_text().splitlines()]
    why = [c for c in contexts if "escalated" in c]
    assert why, "the spoofed flood's victim is escalated"
    for ctx in why:
        assert ctx["escalated"] == {
            "destination_sources": flood["sources"],
            "window_s": flood["window_s"],
            "threshold": flood["threshold"],
        }
        assert flood["threshold"] <= ctx["score"] < ctx["threshold"]


def test_the_volume_rule_catches_an_ipv6_flood_the_model_scores_as_ordinary(
    repo_root: Path, agent_bundle: Path
) -> None:
    """tests/agent/data/thc_flood_advertise6.pcap: THC-IPv6's flood_advertise6 recorded on a veth
    (tests/agent/data/README.md): the victim's own MLD report, then 599 neighbour advertisements
    from 599 spoofed link-local sources to ff02::1 within 0.7 ms. The k-th of them (from 0)
    sees k earlier flows to its service (no decay in 0.7 ms), 32 distinct unanswered
    sources once k >= 32: the default's volume rule (200 flows per 10 s, 16 sources, 16
    unanswered) flags the 201st on, 399 flows, and the model alone flags none."""
    from .make_golden import run_agent

    pcap = repo_root / "tests" / "agent" / "data" / "thc_flood_advertise6.pcap"
    pipe, model, with_rule, finals = _replay(pcap, agent_bundle, escalate=True)
    assert model.escalation is not None and model.escalation.volume is not None
    assert len(finals) == 600
    _, _, without, _ = _replay(pcap, agent_bundle, escalate=False)
    assert not without  # every flow scores below the threshold on its own
    flooded = {k for k in with_rule if k[1] == ipaddress.ip_address("ff02::1").packed}
    assert len(with_rule) == len(flooded) == 399 == pipe.stats.escalated
    # the evaluation's way: judge the checks afterwards with each flow's service context
    keys, checks, pairs = zip(*finals, strict=True)
    order, svc = _service_context(pcap, agent_bundle)
    assert order == list(pairs)  # the same flows in the same order
    vol = [0 if model.escalation.volume.matches(*c) else None for c in svc]
    judged = flag_checks(checks, pairs, model.threshold, model.escalation, vol)
    assert {k for k, t in zip(keys, judged, strict=True) if t is not None} == with_rule
    # the same flows a user sees: 600 flow events, 399 of them attacks, each alert says why
    alerts, flows, _ = run_agent(pcap, agent_bundle)
    assert len(flows) == 600
    from edge_nids.agent.records import flow_verdict

    attacks = [f for f in flows if flow_verdict(f) == "attack"]
    assert len(attacks) == 399 and all(f["dest_ip"] == "ff02::1" for f in attacks)
    # ten sources alert a line each; from then on ff02::1 is a destination flooded from many
    # sources, whose alerts are merged per signature: the 11th is its group's first line, the
    # other 388 go into one summary (it shows the last of them)
    from edge_nids.agent.records import alert_count

    assert [alert_count(a) for a in alerts] == [1] * 11 + [388]
    rates = [a["alert"]["context"]["escalated"]["service_flow_rate"] for a in alerts]
    assert rates == [*range(200, 211), 598]
    assert [a["alert"]["context"].get("aggregate", {}).get("by") for a in alerts] == [None] * 11 + [
        "destination"
    ]
    assert all(
        a["alert"]["context"]["escalated"]["service_sources"] == 32
        and a["alert"]["context"]["escalated"]["service_unanswered"] == 32
        for a in alerts
    )
    # ICMPv6 flows are never named by a family of another transport (SYN, UDP or HTTP flood)
    from edge_nids.agent.families import FAMILY_PROTOCOLS

    assert not {a["alert"]["context"]["family"] for a in alerts} & set(FAMILY_PROTOCOLS)


def test_flag_checks_applies_the_volume_rule_at_a_flows_first_check() -> None:
    rule = EscalationRule(6, 60.0, 0.05, volume=VolumeRule(200.0, 16, 16))
    checks = [[(0, 0.01), (5, 0.02)], [(1, 0.01)], [(2, 0.99)]]
    keys = [(A, V), (B, V), (A, B)]
    assert flag_checks(checks, keys, 0.9, rule, [0, None, None]) == [0, None, 2]
    assert flag_checks(checks, keys, 0.9, rule, None) == [None, None, 2]  # no values, no rule
    assert VolumeRule.from_dict(VolumeRule(200.0, 16, 16).to_dict()) == VolumeRule(200.0, 16, 16)
    with pytest.raises(ValueError, match=r"escalation\.volume\.sources must be a whole number"):
        EscalationRule.from_dict({**RULE.to_dict(), "volume": {"rate": 200, "sources": 0, "unanswered": 16}})
    with pytest.raises(ValueError, match=r"escalation\.volume lacks unanswered"):
        EscalationRule.from_dict({**RULE.to_dict(), "volume": {"rate": 200, "sources": 16}})


def test_the_sweep_rule_catches_a_subnet_sweep_and_the_evaluation_agrees(
    shared_data: Path, agent_bundle: Path
) -> None:
    """attacks_public/scannerrec_angryip.pcap (MANIFEST.tsv): Angry IP Scanner from 192.168.3.202
    pings about 60 hosts of 123.56.104.0/24, connect-probes the live ones and looks up each
    address's name (PTR queries to 223.6.6.6 and 8.8.8.8). With the model's threshold out of
    reach, only the parts that alert at any score can fire: every flow whose ``flow.sweep``
    meets the shipped sweep rule alerts, and, for 60 s after the first of them alerted, every
    other flow of the scanner checked then (its name lookups among them), and no other."""
    from edge_nids.agent.escalate import SweepRule
    from edge_nids.training.detection import replay

    pcap = shared_data / "pcaps" / "attacks_public" / "scannerrec_angryip.pcap"
    pipe, model, alerted, finals = _replay(pcap, agent_bundle, escalate=True, threshold=2.0)
    rule = model.escalation
    assert rule is not None and rule.sweep == SweepRule(8, 6, 60.0)
    rep = replay(agent_bundle, pcap, "x")
    keys = [k for k, _, _ in finals]
    assert [(k[0], k[1]) for k in keys] == list(zip(rep.srcs, rep.dsts, strict=True))
    meets = {k for k, sw in zip(keys, rep.sweep, strict=True) if rule.sweep.matches(*sw)}
    scanner = ipaddress.ip_address("192.168.3.202").packed
    assert len(meets) == 190 and {k[0] for k in meets} == {scanner}
    assert meets == {k for k in keys if k[1][:3] == bytes([123, 56, 104])} & meets
    # the first sweep alert's time: flows of the scanner last checked after it alert too
    first = min(c[0][0] for k, c, _ in finals if k in meets)  # when the first of them alerted
    after = {k for k, c, _ in finals if k[0] == scanner and c[-1][0] >= first}
    assert alerted == meets | after and len(alerted) == 280
    resolvers = {ipaddress.ip_address(a).packed for a in ("223.6.6.6", "8.8.8.8")}
    assert sum(1 for k in alerted - meets if k[1] in resolvers) == 68
    assert pipe.stats.escalated == 280
    # the evaluation judges the same flows from the replay's checks
    _, _, _, plain = _replay(pcap, agent_bundle, escalate=False, threshold=2.0)
    swept = [rule.sweep.matches(*x) for x in rep.sweep]
    judged = flag_checks(
        [c for _, c, _ in plain], [p for _, _, p in plain], 2.0, rule, rep.forced(rule), swept
    )
    assert {k for k, t in zip(keys, judged, strict=True) if t is not None} == alerted
    assert rep.flagged(2.0, rule) == [t is not None for t in judged]
    # without the source part, the sweep rule's own flows only
    plain_sweep = dataclasses.replace(rule, sweep=SweepRule(8, 6))
    judged = flag_checks(
        [c for _, c, _ in plain], [p for _, _, p in plain], 2.0, plain_sweep, rep.forced(plain_sweep), swept
    )
    assert {k for k, t in zip(keys, judged, strict=True) if t is not None} == meets


def test_a_sweeping_source_has_its_other_flows_alert_for_source_s() -> None:
    """Hand-made checks: A's flow to B meets the sweep rule and alerts at 10 s; A's flows
    checked from then until 70 s alert at any score, wherever they go; B's do not; nor do A's
    after 70 s, nor those before 10 s."""
    from edge_nids.agent.escalate import SweepRule

    rule = EscalationRule(6, 300.0, 0.05, sweep=SweepRule(8, 6, 60.0))
    keys = [(A, B), (A, V), (A, V), (B, V), (A, B), (A, V)]
    checks = [
        [(10 * S, 0.01)],
        [(5 * S, 0.01)],
        [(30 * S, 0.01)],
        [(30 * S, 0.01)],
        [(69 * S, 0.0)],
        [(71 * S, 0.01)],
    ]
    forced = [0, None, None, None, None, None]
    swept = [True, False, False, False, False, False]
    assert flag_checks(checks, keys, 0.9, rule, forced, swept) == [10 * S, None, 30 * S, None, 69 * S, None]
    esc = Escalator(rule)
    esc.alerted((A, B), 10 * S, swept=True)
    assert esc.sweeping(A, 40 * S) == {"source_sweeping": True, "last_sweep_alert_s": 30.0}
    assert esc.sweeping(B, 40 * S) is None and esc.sweeping(A, 71 * S) is None
    # a rule without source_s keeps no sweeping sources
    plain = EscalationRule(6, 300.0, 0.05, sweep=SweepRule(8, 6))
    assert flag_checks(checks, keys, 0.9, plain, forced, swept) == [10 * S, None, None, None, None, None]
    assert EscalationRule.from_dict(rule.to_dict()) == rule and plain.to_dict()["sweep"] == {
        "hosts": 8,
        "unanswered": 6,
    }
    assert rule.describe().endswith(">= 6 unanswered, then any flow of that source for 60 s")
    with pytest.raises(ValueError, match=r"escalation\.sweep\.source_s must be"):
        EscalationRule.from_dict({**RULE.to_dict(), "sweep": {"hosts": 8, "unanswered": 6, "source_s": -1}})


@pytest.mark.parametrize("name", ["ndpi_gnutella.pcap", "nfstream_steam.pcap", "ndpi_tumblr.pcap"])
def test_no_flow_of_p2p_or_cdn_traffic_meets_the_sweep_rule(
    shared_data: Path, agent_bundle: Path, name: str
) -> None:
    """benign_public: a Gnutella client's peers (hundreds of hosts, mostly unanswered), a Steam
    server browser's queries and a browser fetching from one CDN's /24 (docs/detection.md,
    "Sweep rule sweep"): many hosts, but not many unanswered ones of one subnet (measured: at
    most 1 other host of a peer's /24 for Gnutella; the browser 8 hosts of one /24, 3 of them
    unanswered; the Steam queries 5 hosts, 3 unanswered)."""
    from edge_nids.agent.config import from_dict
    from edge_nids.agent.service import load_model
    from edge_nids.training.detection import replay

    rule = load_model(from_dict({"model": {"path": str(agent_bundle)}})).escalation
    rep = replay(agent_bundle, shared_data / "pcaps" / "benign_public" / name, "x")
    assert rule is not None and rule.sweep is not None and len(rep.sweep) > 20
    assert not [sw for sw in rep.sweep if rule.sweep.matches(*sw)]
    assert max(h for h, _ in rep.sweep) >= 1  # it did count other hosts of a subnet


def test_bad_sweep_rules_are_refused_by_name() -> None:
    from edge_nids.agent.escalate import SweepRule

    rule = EscalationRule(6, 300.0, 0.05, sweep=SweepRule(8, 6))
    assert EscalationRule.from_dict(rule.to_dict()) == rule
    assert rule.describe().endswith("destination's subnet, >= 6 unanswered")
    for sweep, problem in [
        ({"hosts": 0, "unanswered": 0}, r"escalation\.sweep\.hosts must be a whole number >= 1"),
        ({"hosts": 8}, r"escalation\.sweep lacks unanswered"),
        ({"hosts": 4, "unanswered": 6}, r"escalation\.sweep\.unanswered \(6\) cannot exceed"),
        ([8, 6], r"escalation\.sweep must be an object"),
    ]:
        with pytest.raises(ValueError, match=problem):
            EscalationRule.from_dict({**RULE.to_dict(), "sweep": sweep})


def test_the_login_rule_catches_a_slow_mqtt_guesser_and_the_evaluation_agrees(
    shared_data: Path, agent_bundle: Path, tmp_path: Path
) -> None:
    """attacks_public/mqttset_bruteforce.pcapng (MANIFEST.tsv): 1,271 connections from
    192.168.1.90 to the broker 192.168.1.91:1883, one every 1.5 s, each refused with CONNACK
    "not authorised". With the model's threshold out of reach, the login rule alone fires:
    from the 5th refusal on every connection alerts, as brute force, and says why."""
    from edge_nids.agent.escalate import LoginRule
    from edge_nids.training.detection import replay

    pcap = shared_data / "pcaps" / "attacks_public" / "mqttset_bruteforce.pcapng"
    pipe, model, alerted, finals = _replay(pcap, agent_bundle, escalate=True, threshold=2.0)
    rule = model.escalation
    assert rule is not None and rule.logins == LoginRule(5, 5)
    assert len(finals) == 1271
    first_four = sorted(finals, key=lambda f: f[0][4])[:4]
    assert alerted == {k for k, _, _ in finals} - {k for k, _, _ in first_four}
    assert pipe.stats.escalated == 1267
    rep = replay(agent_bundle, pcap, "x")
    keys = [k for k, _, _ in finals]
    judged = flag_checks([c for _, c, _ in finals], [p for _, _, p in finals], 2.0, rule, rep.forced(rule))
    assert {k for k, t in zip(keys, judged, strict=True) if t is not None} == alerted
    # as the service writes it: one alert line per group, each naming the family and the count
    out = tmp_path / "eve.json"
    from edge_nids.cli import main

    assert main(["run", "--pcap", str(pcap), "--model", str(agent_bundle), "--threshold", "1.0",
                 "--alerts", str(out)]) == 0  # fmt: skip
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    ctx = [a["alert"]["context"] for a in lines]
    assert {c["family"] for c in ctx} == {"brute_force"}
    assert sum(c["count"] for c in ctx) == 1267
    first = ctx[0]["escalated"]
    assert first == {"refused_logins": 5, "credentials_tried": 0, "window_s": 300, "protocol": "mqtt"}
    assert all(c["escalated"]["refused_logins"] >= 5 for c in ctx)


def test_the_login_rule_alerts_from_the_reply_that_meets_it() -> None:
    """A long connection checked while open: its checks before the 5th refusal do not alert,
    the first one after it does, whatever its score."""
    from edge_nids.agent.escalate import LoginRule

    rule = EscalationRule(6, 300.0, 0.05, logins=LoginRule(5, 5))
    flows = [((10, 3, 0), (20, 4, 0)), ((30, 5, 0),), ((12, 0, 4), (38, 0, 5))]
    rep_forced = [rule.logins.since(x) for x in flows]  # type: ignore[union-attr]
    assert rep_forced == [None, 30, 38]
    checks = [[(5, 0.01), (25, 0.01)], [(15, 0.01), (35, 0.02), (50, 0.01)], [(20, 0.01), (40, 0.01)]]
    keys = [(A, B), (A, V), (B, V)]
    assert flag_checks(checks, keys, 0.9, rule, rep_forced) == [None, 35, 40]
    assert EscalationRule.from_dict(rule.to_dict()) == rule
    assert rule.describe().endswith(
        "refused its client >= 5 logins in 300 s, or whose client tried >= 5 credentials on it"
    )
    # without a credentials count (bundles before it) only refusals count
    assert LoginRule.from_dict({"refused": 5}) == LoginRule(5) and LoginRule(5).since(flows[2]) is None
    for logins, problem in [
        ({"refused": 0}, r"escalation\.logins\.refused must be a whole number >= 1"),
        ({"refused": 5, "tried": 0}, r"escalation\.logins\.tried must be a whole number >= 1"),
        ({}, r"escalation\.logins lacks refused"),
        (5, r"escalation\.logins must be an object"),
    ]:
        with pytest.raises(ValueError, match=problem):
            EscalationRule.from_dict({**RULE.to_dict(), "logins": logins})


def test_the_port_scan_rule_catches_a_slow_scan_and_the_evaluation_agrees(
    shared_data: Path, agent_bundle: Path, tmp_path: Path
) -> None:
    """attacks_public/ndpi_tcp_scan.pcapng (MANIFEST.tsv, tests/flows/test_ports.py): 192.168.1.178
    probes 7 ports of 192.168.1.2 over 40 s, too slow for the 10 s context. With the model's
    threshold out of reach, the port-scan rule alone fires: on the FIN, NULL and Xmas probes
    (3390-3392), which are also the 5th to 7th ports probed; as a port scan, saying why."""
    from edge_nids.agent.escalate import PortScanRule
    from edge_nids.training.detection import replay

    pcap = shared_data / "pcaps" / "attacks_public" / "ndpi_tcp_scan.pcapng"
    pipe, model, alerted, finals = _replay(pcap, agent_bundle, escalate=True, threshold=2.0)
    rule = model.escalation
    assert rule is not None and rule.ports == PortScanRule(4, True)
    assert len(finals) == 7
    assert sorted(k[3] for k in alerted) == [3390, 3391, 3392]
    assert pipe.stats.escalated == 3
    rep = replay(agent_bundle, pcap, "x")
    keys = [k for k, _, _ in finals]
    judged = flag_checks([c for _, c, _ in finals], [p for _, _, p in finals], 2.0, rule, rep.forced(rule))
    assert {k for k, t in zip(keys, judged, strict=True) if t is not None} == alerted
    # without the rule nothing alerts at that threshold
    none = dataclasses.replace(rule, ports=None)
    judged = flag_checks([c for _, c, _ in finals], [p for _, _, p in finals], 2.0, none, rep.forced(none))
    assert judged == [None] * 7
    out = tmp_path / "eve.json"
    from edge_nids.cli import main

    assert main(["run", "--pcap", str(pcap), "--model", str(agent_bundle), "--threshold", "1.0",
                 "--alerts", str(out), "--aggregate-window", "0"]) == 0  # fmt: skip
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [a["dest_port"] for a in lines] == [3390, 3391, 3392]
    assert {a["alert"]["signature"] for a in lines} == {"edge-nids: port scan"}
    assert [a["alert"]["context"]["escalated"] for a in lines] == [
        {"host_ports_unanswered": n, "stealth_probe": True, "window_s": 300} for n in (4, 5, 6)
    ]


def test_no_benign_connection_meets_the_port_scan_rule(shared_data: Path, agent_bundle: Path) -> None:
    """The benign_public captures where most connections found another unanswered port of
    their server (an Alexa app, an Android phone, a Gnutella client), and a capture that starts
    mid-traffic with idle keep-alive connections to one server from six client ports (Angry
    IP's host, attacks_public/scannerrec_angryip.pcap, 120.232.193.19:63147, which the flow
    meter, with no handshake seen, orients towards the client's lower ports): none meets the
    shipped rule (measured over all of benign_public: at most 1 other unanswered port)."""
    from edge_nids.agent.config import from_dict
    from edge_nids.agent.service import load_model
    from edge_nids.training.detection import replay

    rule = load_model(from_dict({"model": {"path": str(agent_bundle)}})).escalation
    assert rule is not None and rule.ports is not None
    pcaps = shared_data / "pcaps"
    for pcap in [
        pcaps / "benign_public" / "nfstream_alexa-app.pcapng",
        pcaps / "benign_public" / "ndpi_android.pcap",
        pcaps / "benign_public" / "ndpi_gnutella.pcap",
        pcaps / "attacks_public" / "scannerrec_angryip.pcap",
    ]:
        rep = replay(agent_bundle, pcap, "x")
        assert not [p for p in rep.ports if rule.ports.matches(*p)], pcap
        if pcap.parent.name == "benign_public":
            assert max(n for n, _ in rep.ports) == 1, pcap  # it did count


def test_bad_port_scan_rules_are_refused_by_name() -> None:
    from edge_nids.agent.escalate import PortScanRule

    rule = EscalationRule(6, 300.0, 0.05, ports=PortScanRule(4))
    assert EscalationRule.from_dict(rule.to_dict()) == rule
    assert rule.describe().endswith("unanswered in 300 s, or that opens with a FIN, NULL or Xmas probe")
    assert PortScanRule.from_dict({"ports": 4}) == PortScanRule(4, True)
    assert not PortScanRule(4, False).matches(0, True) and PortScanRule(4, True).matches(0, True)
    for ports, problem in [
        ({"ports": 0}, r"escalation\.ports\.ports must be a whole number >= 1"),
        ({"ports": 4, "stealth": "yes"}, r"escalation\.ports\.stealth must be true or false"),
        ({}, r"escalation\.ports lacks ports"),
        (4, r"escalation\.ports must be an object"),
    ]:
        with pytest.raises(ValueError, match=problem):
            EscalationRule.from_dict({**RULE.to_dict(), "ports": ports})


def _flood(path: Path, n: int, gap_us: int, dst: str = "198.51.100.53", answer_every: int = 0,
           sizes: tuple[int, ...] = (48,)) -> Path:  # fmt: skip
    """``n`` UDP datagrams from 203.0.113.9:40000 to ``dst``:53, ``gap_us`` apart, payload sizes
    taken in turn from ``sizes``; with ``answer_every``, a reply after every that many."""
    from .pcapgen import ipv4_udp, write_pcap

    t0 = 1_700_000_000_000_000
    frames = []
    for i in range(n):
        t = t0 + i * gap_us
        frames.append((t, ipv4_udp("203.0.113.9", dst, 40000, 53, b"q" * sizes[i % len(sizes)])))
        if answer_every and i % answer_every == 0:
            frames.append((t + 50, ipv4_udp(dst, "203.0.113.9", 53, 40000, b"a" * 64)))
    write_pcap(path, frames)
    return path


def test_the_rate_rule_catches_a_flood_inside_one_flow_and_the_evaluation_agrees(
    agent_bundle: Path, tmp_path: Path
) -> None:
    """The agent's udp_flood scenario (tests/agent/scenarios.py): 8,000 48-byte datagrams from
    one source port to one DNS server port, 2,000 a second, nothing back. One flow, which the
    model scores 0.04. With the model's threshold out of reach, the rate rule alone fires at the
    open flow's second check, 1.0 s in with 2,001 packets (its first, 0.4 s in, saw 801: fewer
    than 1,000), as a UDP flood, saying why; the evaluation's judging of the replay agrees."""
    from edge_nids.agent.escalate import RateRule
    from edge_nids.cli import main
    from edge_nids.training.detection import replay

    pcap = _flood(tmp_path / "flood.pcap", 8000, 500)
    pipe, model, alerted, finals = _replay(pcap, agent_bundle, escalate=True, threshold=2.0)
    rule = model.escalation
    assert rule is not None and rule.rate == RateRule(1000, 1000.0)
    assert pipe.stats.escalated == 1
    assert len(finals) == 1 and len(alerted) == 1
    rep = replay(agent_bundle, pcap, "x")
    judged = flag_checks([c for _, c, _ in finals], [p for _, _, p in finals], 2.0, rule, rep.forced(rule))
    first = finals[0][1]
    t0 = 1_700_000_000_000_000
    assert [t - t0 for t, _ in first] == [400_000, 1_000_000, 3_999_500]  # none after its alert
    assert judged == [t0 + 1_000_000]
    none = dataclasses.replace(rule, rate=None)
    assert flag_checks([first], [finals[0][2]], 2.0, none, rep.forced(none)) == [None]
    out = tmp_path / "eve.json"
    assert main(["run", "--pcap", str(pcap), "--model", str(agent_bundle), "--threshold", "1.0",
                 "--alerts", str(out)]) == 0  # fmt: skip
    (a,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert a["alert"]["signature"] == "edge-nids: UDP flood"
    why = {"flow_packets": 2001, "packets_back": 0, "packets_per_s": 2001, "sent_by": "source"}
    assert a["alert"]["context"]["escalated"] == why
    assert a["timestamp"].startswith("2023-11-14T22:13:21.000000")  # 1.0 s after the first datagram


@pytest.mark.parametrize(
    ("what", "kwargs"),
    [
        ("answered one for one (a busy resolver's client)", {"answer_every": 1}),
        ("payload sizes that vary (a media stream)", {"sizes": (48, 1200, 900)}),
        ("to a multicast group", {"dst": "239.1.2.3"}),
        ("999 datagrams", {"n": 999}),
        ("900 a second", {"gap_us": 1112}),
    ],
)
def test_the_rate_rule_leaves_flows_that_are_not_a_one_sided_flood(
    what: str, kwargs: dict, agent_bundle: Path, tmp_path: Path
) -> None:
    """Each condition of the rule on its own: the same 5,000-datagram stream at 2,000 a second
    alerts through the rule (first), and does not once one condition fails."""
    from edge_nids.training.detection import replay

    rule = EscalationRule.from_dict(json.loads((agent_bundle / "bundle.json").read_text())["escalation"])
    assert rule.rate is not None
    base = {"n": 5000, "gap_us": 500}
    hit = replay(agent_bundle, _flood(tmp_path / "base.pcap", **base), "x")
    assert any(rule.rate.matches(*v) for x in hit.rate for _, v in x)
    rep = replay(agent_bundle, _flood(tmp_path / "f.pcap", **{**base, **kwargs}), "x")
    assert not any(rule.rate.matches(*v) for x in rep.rate for _, v in x), what


def test_no_benign_flow_meets_the_rate_rule(shared_data: Path, agent_bundle: Path) -> None:
    """The benign_public captures with the longest one-way streams: an Omron FINS capture whose
    245 datagrams to UDP/9600 come 25 µs apart (48,000 a second, a test-suite capture with
    rewritten timestamps) and a PGM multicast stream of 1,000 packets. Over all of benign_public
    and the other packages' test captures no flow sends 1,000 packets one way at 1,000 a second
    (docs/agent.md); these two are the closest."""
    from edge_nids.training.detection import replay

    rule = EscalationRule.from_dict(json.loads((agent_bundle / "bundle.json").read_text())["escalation"])
    assert rule.rate is not None
    for name, most in [("ndpi_fins.pcap", 245), ("ndpi_pgm.pcap", 1000)]:
        rep = replay(agent_bundle, shared_data / "pcaps" / "benign_public" / name, "x")
        values = [v for x in rep.rate for _, v in x]
        assert max(v[0] for v in values) == most, name  # it did record them
        assert not [v for v in values if rule.rate.matches(*v)], name


def test_bad_rate_rules_are_refused_by_name() -> None:
    from edge_nids.agent.escalate import RateRule

    rule = EscalationRule(6, 300.0, 0.05, rate=RateRule(1000, 1000.0))
    assert EscalationRule.from_dict(rule.to_dict()) == rule
    assert rule.any_score
    assert rule.describe().endswith("; any flow one side of which sent >= 1000 same-size packets at "
                                    ">= 1000/s to a unicast address with <= 1 in 10 back")  # fmt: skip
    r = RateRule(1000, 1000.0)
    assert r.matches(1000, 100, 1_000_000, True, True)
    assert not r.matches(1000, 101, 1_000_000, True, True)  # more than one back in ten
    assert not r.matches(1000, 0, 1_000_001, True, True)  # just under 1,000 a second
    for rate, problem in [
        ({"packets": 0, "pps": 10}, r"escalation\.rate\.packets must be a whole number >= 1"),
        ({"packets": 1000, "pps": 0}, r"escalation\.rate\.pps must be"),
        ({"packets": 1000}, r"escalation\.rate lacks pps"),
        ([1000, 1000], r"escalation\.rate must be an object"),
    ]:
        with pytest.raises(ValueError, match=problem):
            EscalationRule.from_dict({**RULE.to_dict(), "rate": rate})


def test_the_rate_rule_catches_a_real_icmpv6_flood_sent_by_the_flows_destination(
    repo_root: Path, agent_bundle: Path, tmp_path: Path
) -> None:
    """tests/agent/data/thc_flood_unreach6.pcap (README there): THC-IPv6's flood_unreach6,
    1,293 unreachables in 1.7 ms inside the flow the victim's neighbour advertisement opened.
    The model alone flags none of its 6 flows; the rate rule flags that one, as sent by its
    destination, and nothing else."""
    from edge_nids.cli import main

    pcap = repo_root / "tests" / "agent" / "data" / "thc_flood_unreach6.pcap"
    _, _, alerted, finals = _replay(pcap, agent_bundle, escalate=False)
    assert len(finals) == 6 and not alerted
    out = tmp_path / "eve.json"
    assert main(["run", "--pcap", str(pcap), "--model", str(agent_bundle), "--threshold", "1.0",
                 "--alerts", str(out), "--aggregate-window", "0"]) == 0  # fmt: skip
    (a,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert (a["src_ip"], a["dest_ip"], a["proto"]) == ("fd00:6::2", "fd00:6::1", "IPv6-ICMP")
    assert a["flow"]["pkts_toclient"] == 1293 and a["flow"]["pkts_toserver"] == 1
    why = a["alert"]["context"]["escalated"]
    assert why["sent_by"] == "destination" and why["flow_packets"] == 1293 and why["packets_back"] == 1
    assert why["packets_per_s"] > 1000


def test_the_login_rule_catches_a_real_ssh_brute_force_through_its_encryption(
    shared_data: Path, agent_bundle: Path, tmp_path: Path
) -> None:
    """attacks_public/researchpcaps_ssh_brute_force.pcap (tests/flows/test_logins.py): held
    out, no flow was flagged. With the model's threshold out of reach the login rule alone
    flags the 28 sessions that start with the banners (the server's late same-size answers),
    as brute force over SSH; the 4 seen only from mid-session are not read."""
    from edge_nids.cli import main

    pcap = shared_data / "pcaps" / "attacks_public" / "researchpcaps_ssh_brute_force.pcap"
    out = tmp_path / "eve.json"
    assert main(["run", "--pcap", str(pcap), "--model", str(agent_bundle), "--threshold", "1.0",
                 "--alerts", str(out), "--aggregate-window", "0"]) == 0  # fmt: skip
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 28 and len({a["src_port"] for a in lines}) == 28
    assert {a["alert"]["signature"] for a in lines} == {"edge-nids: brute force"}
    why = [a["alert"]["context"]["escalated"] for a in lines]
    assert {w["protocol"] for w in why} == {"ssh"} and min(w["refused_logins"] for w in why) >= 5
