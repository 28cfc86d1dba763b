"""Check a converted bundle against its Keras source on the held-out rows (MODEL_DIR/test.npz).

The converted model runs through :class:`~edge_nids.agent.classifier.Classifier`, the
same code path as the agent, from raw features when test.npz holds them (``X_raw``),
so preprocessing is checked too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_nids.agent.classifier import Classifier
from edge_nids.bundle import Bundle

__all__ = ["VerificationError", "check_drop", "compare", "load_test"]


class VerificationError(Exception):
    """The converted model lost more accuracy than allowed."""


def load_test(path: str | Path) -> dict[str, np.ndarray]:
    """``test.npz`` arrays (``X`` preprocessed, ``y`` class index, optional ``X_raw``)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the test rows ({exc})") from None
    if "X" not in data or "y" not in data:
        raise ValueError(f"{path}: needs arrays X and y")
    return data


def compare(bundle: Bundle, keras_probs: np.ndarray, test: dict[str, np.ndarray]) -> dict[str, Any]:
    """Agreement and accuracies of the bundle's TFLite model vs. Keras class probabilities.

    Accuracy is attack-vs-benign at the bundle's threshold (percent). ``max_abs_dprob`` is
    the largest difference in attack probability over the test rows.
    """
    clf = Classifier(bundle)
    X, y = test["X"], test["y"].astype(np.int64)
    raw = test.get("X_raw")
    used_raw = raw is not None and raw.ndim == 2 and raw.shape[1] == clf.n_features and raw.dtype != object
    if used_raw:
        assert raw is not None
        prep = clf.preprocess(raw)
        max_prep = float(np.max(np.abs(prep - X))) if len(X) else 0.0
        probs = clf.predict_preprocessed(prep)
    else:
        max_prep = None
        probs = clf.predict_preprocessed(X)
    attack = bundle.attack_label_indices
    s_t = probs[:, attack].sum(axis=1)
    s_k = np.asarray(keras_probs)[:, attack].sum(axis=1)
    truth = np.isin(y, attack)
    v_t, v_k = s_t >= bundle.threshold, s_k >= bundle.threshold
    n = len(y)
    return {
        "rows": n,
        "from_raw_features": bool(used_raw),
        "max_abs_preprocess_diff": max_prep,
        "agreement": float(np.mean(v_t == v_k)) if n else 1.0,
        "max_abs_dprob": float(np.max(np.abs(s_t - s_k))) if n else 0.0,
        "keras_accuracy": 100.0 * float(np.mean(v_k == truth)) if n else 0.0,
        "tflite_accuracy": 100.0 * float(np.mean(v_t == truth)) if n else 0.0,
        "tflite_recall": 100.0 * float(np.mean(v_t[truth])) if truth.any() else None,
        "tflite_fpr": 100.0 * float(np.mean(v_t[~truth])) if (~truth).any() else None,
    }


def check_drop(result: dict[str, Any], max_drop: float) -> None:
    """Raise :class:`VerificationError` when TFLite accuracy is more than ``max_drop`` points below Keras."""
    drop = result["keras_accuracy"] - result["tflite_accuracy"]
    if drop > max_drop:
        raise VerificationError(
            f"converted model accuracy {result['tflite_accuracy']:.2f} % is {drop:.2f} points below "
            f"the Keras model's {result['keras_accuracy']:.2f} % (allowed: {max_drop} points; see --max-drop)"
        )
