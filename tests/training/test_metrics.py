"""Metrics checked by hand and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from edge_nids.training.metrics import binary_metrics, classification_metrics, roc_auc


def test_binary_metrics_by_hand() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    p = np.array([1, 1, 0, 1, 0, 0, 0, 0], dtype=bool)
    m = binary_metrics(y, p, p.astype(float))
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (2, 1, 1, 4)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(1 / 5)


def test_roc_auc_matches_sklearn_with_ties() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500).astype(bool)
    s = np.round(rng.uniform(0, 1, 500) + 0.3 * y, 1)  # many ties
    assert roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s))
    assert roc_auc(np.ones(3, dtype=bool), np.ones(3)) is None


def test_multiclass_confusion_and_per_class_recall() -> None:
    labels = ["BENIGN", "DoS", "PortScan"]
    y = np.array([0, 0, 1, 2, 2])
    probs = np.eye(3)[[0, 1, 1, 2, 1]]
    m = classification_metrics(y, probs, labels, [1, 2])
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 1, 1]]
    assert m["class_accuracy"] == pytest.approx(3 / 5)
    assert m["accuracy"] == pytest.approx(4 / 5)  # attack vs benign
    assert m["per_class_recall"]["PortScan"] == {"n": 2, "recall": 0.5}
