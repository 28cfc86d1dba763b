"""Explanations through the real classifier: one batched call, effects that are score changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_nids.agent.explain import MIN_ENTRIES, REFERENCES_FILE, Explainer, ReferenceError
from edge_nids.flows.schema import EDGE_FLOWS

from .stage_helpers import demo_flows

MODELS = Path(__file__).resolve().parents[2] / "models"


def _classifier(bundle: Path) -> Any:
    from edge_nids.agent.classifier import Classifier, RuntimeMissingError

    try:
        return Classifier(bundle)
    except RuntimeMissingError as exc:
        pytest.skip(str(exc))


def _flagged(clf: Any, profile: str = "corrected") -> tuple[np.ndarray, np.ndarray]:
    edge = clf.bundle.schema_name == EDGE_FLOWS.name  # the 94 columns (state, context) or the 78
    rows = [
        f.edge_features() if edge else f.features() for f, label in demo_flows(profile) if label != "BENIGN"
    ]
    X = np.array(rows, dtype=np.float64)
    s = clf.scores(X)
    keep = s >= clf.threshold
    assert keep.sum() >= 10
    return X[keep][:40], s[keep][:40]


def test_effects_are_the_score_change_of_one_substitution(agent_bundle: Path) -> None:
    clf = _classifier(agent_bundle)
    ex = Explainer(clf)
    X, s = _flagged(clf)
    calls = []
    real = clf.scores

    def counted(rows: np.ndarray) -> np.ndarray:
        calls.append(len(rows))
        return real(rows)

    clf.scores = counted
    out = ex.explain_many(X, s)
    # all drop-one substitutions in one call; saturated flows' add-one rows in a second
    assert 1 <= len(calls) <= 2
    clf.scores = real
    for x, score, entries in zip(X, s, out, strict=True):
        assert len(entries) >= MIN_ENTRIES
        mags = [abs(e["effect"]) for e in entries]
        assert mags == sorted(mags, reverse=True)
        assert mags[0] > 0  # something always explains a flagged flow
        e = entries[0]
        j = ex.names.index(e["feature"])
        assert e["value"] == pytest.approx(x[ex.index[j]])
        drop = x.copy()
        drop[ex.index[j]] = ex.reference[j]
        base = x.copy()
        base[ex.index] = ex.reference
        add = base.copy()
        add[ex.index[j]] = x[ex.index[j]]
        dropped = float(score) - float(real(drop[None, :])[0])
        added = float(real(add[None, :])[0]) - float(real(base[None, :])[0])
        assert e["effect"] == pytest.approx(dropped if abs(dropped) > 0.002 else added, abs=1e-6)
    json.dumps(out, allow_nan=False)  # valid JSON for EVE


def test_a_bundle_without_references_still_explains(agent_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(agent_bundle, copy)
    (copy / REFERENCES_FILE).unlink(missing_ok=True)
    clf = _classifier(copy)
    ex = Explainer(clf)
    assert ex.source == "preprocessor minimum"
    X, s = _flagged(clf)
    assert all(len(e) >= MIN_ENTRIES for e in ex.explain_many(X[:5], s[:5]))
    (copy / REFERENCES_FILE).write_text('{"median": {"Flow Duration": 1}}', encoding="utf-8")
    with pytest.raises(ReferenceError, match="no reference for input columns"):
        Explainer(clf)


def test_cic_bundle_explains_its_own_78_columns() -> None:
    clf = _classifier(MODELS / "cnn-lstm-edge-cic-int8")
    ex = Explainer(clf)
    assert ex.source.startswith("benign rows of the CIC-IDS2017")
    X, s = _flagged(clf, "cicids2017")
    entries = ex.explain(X[0], float(s[0]))
    assert len(entries) >= MIN_ENTRIES
    assert {e["feature"] for e in entries} <= set(clf.bundle.input_columns)
