"""Escalation: a (source, destination) pair with recent alerts has its next flows alert at the
rule's lower score.

The rule on its own (hand-made alert times), in the agent on the lab's demo capture (a real
recording of nmap, hping3, slowhttptest and ab against real servers), and the evaluation's
judging of the same replay, which must give the agent's own alerts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_nids.agent.escalate import EscalationRule, Escalator, flag_checks

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
