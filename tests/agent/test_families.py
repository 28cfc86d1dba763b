"""The shipped attack-family trees on real flows: the demo's attacks get their families."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from edge_nids.agent.families import FAMILIES, FAMILY_INFO, FamilyError, FamilyModel, load_family_model
from edge_nids.flows.schema import EDGE_FLOWS

from .stage_helpers import capture_flows, demo_flows

TEST_DATA = Path(__file__).resolve().parents[1] / "data"


def test_every_family_has_its_alert_fields() -> None:
    assert set(FAMILY_INFO) == set(FAMILIES)
    assert FAMILY_INFO["scan"].signature == "edge-nids: port scan"
    assert FAMILY_INFO["scan"].category == "Detection of a Network Scan"
    assert FAMILY_INFO["brute_force"].category == "Attempted User Privilege Gain"
    assert FAMILY_INFO["other"].category == "Misc activity"
    assert {FAMILY_INFO[f].category for f in ("syn_flood", "udp_flood", "http_flood", "slow_dos")} == {
        "Attempted Denial of Service"
    }
    assert len({i.signature_id for i in FAMILY_INFO.values()}) == len(FAMILIES)


def test_demo_attacks_are_named_by_family() -> None:
    model = load_family_model()
    flows = demo_flows()
    names = model.names(np.array([f.edge_features() for f, _ in flows]))
    by_label: dict[str, Counter] = {}
    for (_, label), name in zip(flows, names, strict=True):
        by_label.setdefault(label, Counter())[name] += 1
    for label, family in (
        ("PortScan", "scan"),
        ("DoS SYN Flood", "syn_flood"),
        ("DoS slowloris", "slow_dos"),
    ):
        got = by_label[label]
        assert got.most_common(1)[0][0] == family, (label, got)
        assert got[family] >= 0.9 * sum(got.values()), (label, got)


def test_the_scenario_port_scan_is_a_scan() -> None:
    flows = capture_flows(TEST_DATA / "tcp_port_scan.pcap")
    names = load_family_model().names(np.array([f.edge_features() for f in flows]))
    assert Counter(names).most_common(1)[0][0] == "scan", Counter(names)


def test_batch_and_single_rows_agree() -> None:
    model = load_family_model()
    X = np.array([f.edge_features() for f, _ in demo_flows()[:300]])
    batch = model.predict_proba(X)
    single = np.vstack([model.predict_proba(x) for x in X[:20]])
    assert np.allclose(batch[:20], single)
    assert np.allclose(batch.sum(axis=1), 1.0, atol=1e-2)
    with pytest.raises(ValueError, match="expected"):
        model.predict(X[:, :78])


def _plain_walk(model: FamilyModel, X: np.ndarray) -> np.ndarray:
    """Every tree walked node by node for every row (features as scikit-learn saw them), then
    numpy's mean of the leaves' probabilities: the reference for the batched walk."""
    X = np.nan_to_num(X, nan=-1.0, posinf=1e18, neginf=-1e18).astype(np.float32).astype(np.float64)
    leaves = np.empty((len(X), len(model.roots)), dtype=np.intp)
    for r, x in enumerate(X):
        for t, node in enumerate(model.roots):
            while model.left[node] != node:  # a leaf points at itself
                go_left = x[model.feature[node]] <= model.threshold[node]
                node = model.left[node] if go_left else model.right[node]
            leaves[r, t] = node
    return model.probability[leaves].mean(axis=1)


def test_the_batched_walk_equals_a_plain_walk_bit_for_bit() -> None:
    """The walk over the tested columns only, one gather per level, and the tree-by-tree sum
    give exactly the floats of a node-by-node walk and numpy's mean, on real flows (the demo's,
    the scenario port scan's) with NaN and ±inf in some rows, batched and one row at a time."""
    model = load_family_model()
    flows = [f for f, _ in demo_flows()[::6]] + capture_flows(TEST_DATA / "tcp_port_scan.pcap")
    X = np.array([f.edge_features() for f in flows], dtype=np.float64)
    X[0, :] = np.nan
    X[1, ::2], X[2, ::3] = np.inf, -np.inf
    want = _plain_walk(model, X)
    assert np.array_equal(model.predict_proba(X), want)
    for n in (1, 2, 7, 255, 256, 257):
        assert np.array_equal(model.predict_proba(X[:n]), want[:n])
    assert np.array_equal(model.predict_proba(X[5]), want[5:6])
    assert len(set(model.names(X))) >= 3  # rows reach different leaves


def test_unusable_family_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FamilyError, match="missing"):
        load_family_model(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(FamilyError, match="cannot read"):
        load_family_model(bad)
    good = json.loads(
        (Path(__file__).resolve().parents[2] / "edge_nids/agent/data/families.json").read_text()
    )
    good["schema"]["fingerprint"] = "0000"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(good), encoding="utf-8")
    with pytest.raises(FamilyError, match=EDGE_FLOWS.name):
        load_family_model(other)


def test_stages_name_given_rows_as_they_name_the_flows() -> None:
    """The pipeline hands the family stage its batch's rows: the same names as from the flows."""
    from edge_nids.agent.stages import Stages

    stages = Stages(load_family_model(), None)
    flows = [f for f, _ in demo_flows()[::4]]
    rows = np.array([f.edge_features() for f in flows], dtype=np.float64)
    names = stages.family_names(flows)
    assert stages.family_names(flows, rows) == names
    assert len(set(names)) >= 3
