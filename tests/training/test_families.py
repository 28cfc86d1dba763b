"""The family stage's training side: class → family mapping, and exported trees that the agent
evaluates exactly as scikit-learn does, on real flows of the demo capture."""

from __future__ import annotations

import numpy as np
import pytest

from edge_nids.agent.families import FAMILIES, FamilyModel
from edge_nids.training.families import FamilyData, export_model, family_of, fit_trees
from tests.agent.stage_helpers import demo_flows

_FAMILY = {"PortScan": "scan", "DoS SYN Flood": "syn_flood", "DoS slowloris": "slow_dos", "BENIGN": "other"}


def test_classes_map_to_families() -> None:
    assert family_of("PortScan") == "scan"
    assert family_of("SSH-BruteForce") == family_of("BruteForce") == "brute_force"
    assert family_of("DoS Flood", "sop_syn_flood") == "syn_flood"
    assert family_of("DoS Flood", "mqttset_malariados") == "other"  # an MQTT publish flood
    assert family_of("DoS slowloris", "mqttset_slowite") == "slow_dos"
    assert family_of("Web Attack – XSS") == family_of("Exploit") == family_of("BENIGN") == "other"


def test_exported_trees_predict_like_scikit_learn() -> None:
    pytest.importorskip("sklearn")
    flows = demo_flows()
    X = np.array([f.edge_features() for f, _ in flows], dtype=np.float64)
    fam = np.array([_FAMILY[label] for _, label in flows], dtype=object)
    attack = fam != "other"
    data = FamilyData(
        X,
        fam,
        attack,
        np.full(len(X), "demo", dtype=object),
        np.arange(len(X)),
        attack,
        np.ones(len(X), bool),
    )
    forest = fit_trees(data, n_trees=5, max_depth=6)
    model = FamilyModel.from_dict(export_model(forest))
    from edge_nids.training.families import _features

    want = np.zeros((len(X), len(FAMILIES)))
    want[:, forest.classes_] = forest.predict_proba(_features(X))
    assert np.allclose(model.predict_proba(X), want, atol=2e-3)  # leaf probabilities rounded to 3 digits
    assert (model.predict(X) == want.argmax(axis=1)).mean() > 0.999
    assert set(model.names(X[attack])) >= {"scan", "syn_flood", "slow_dos"}
