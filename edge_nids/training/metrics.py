"""Detection metrics (numpy only): accuracy, precision, recall, F1, FPR, ROC AUC, confusion, per-class recall.

"Positive" means attack. ``probs`` are class probabilities [n, C]; the attack
score of a row is the summed probability of the attack classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["binary_metrics", "classification_metrics", "roc_auc", "roc_curve"]


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties averaged."""
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    avg = ends - (counts - 1) / 2.0
    return avg[inv]


def roc_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney); None when only one class is present."""
    y = np.asarray(y, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    r = _ranks(np.asarray(score, dtype=np.float64))
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold (for plotting)."""
    y = np.asarray(y, dtype=bool)
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    ys = y[order]
    tp = np.concatenate([[0], np.cumsum(ys)])
    fp = np.concatenate([[0], np.cumsum(~ys)])
    return fp / max(int((~y).sum()), 1), tp / max(int(y.sum()), 1)


def _div(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def binary_metrics(y_attack: np.ndarray, pred_attack: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """Attack-vs-benign metrics from true and predicted attack flags and the attack score."""
    y = np.asarray(y_attack, dtype=bool)
    p = np.asarray(pred_attack, dtype=bool)
    tp, fp = int((y & p).sum()), int((~y & p).sum())
    fn, tn = int((y & ~p).sum()), int((~y & ~p).sum())
    precision, recall = _div(tp, tp + fp), _div(tp, tp + fn)
    return {
        "n": len(y),
        "accuracy": _div(tp + tn, len(y)),
        "precision": precision,
        "recall": recall,
        "f1": _div(2 * precision * recall, precision + recall),
        "fpr": _div(fp, fp + tn),
        "roc_auc": roc_auc(y, score),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def classification_metrics(
    y: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    attack_idx: Sequence[int],
    names: np.ndarray | None = None,
    *,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Metrics for class indices ``y`` and probabilities ``probs`` [n, C].

    Binary (2 labels): attack when the attack score >= ``threshold``. Multi-class:
    the predicted class is the arg-max. ``names`` (original class name per row)
    adds per-class recall: the share of each class's rows given the right verdict
    (attack detected / benign left alone; the right class when multi-class).
    """
    y = np.asarray(y, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    attack = np.zeros(len(labels), dtype=bool)
    attack[list(attack_idx)] = True
    score = probs[:, attack].sum(axis=1)
    if len(labels) == 2:
        pred = np.where(score >= threshold, int(np.flatnonzero(attack)[0]), int(np.flatnonzero(~attack)[0]))
    else:
        pred = probs.argmax(axis=1)
    out = binary_metrics(attack[y], attack[pred], score)
    out["class_accuracy"] = _div(int((pred == y).sum()), len(y))
    out["threshold"] = threshold
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    out["labels"] = list(labels)
    out["confusion_matrix"] = cm.tolist()
    if names is None:
        names = np.asarray(labels)[y]
    names = np.asarray(names).astype(str)
    multi = len(labels) > 2
    right = (pred == y) if multi else (attack[pred] == attack[y])
    per = {}
    for cls in sorted(set(names.tolist())):
        m = names == cls
        per[cls] = {"n": int(m.sum()), "recall": _div(int(right[m].sum()), int(m.sum()))}
    out["per_class_recall"] = per
    return out
