"""``edge-nids evaluate``: the training metrics for a saved MODEL_DIR or a converted model bundle.

A MODEL_DIR (``model.keras`` + ``preprocess.json`` + ``train.json``) is scored with
Keras; a bundle directory (``bundle.json`` + ``model.tflite``) through
:class:`edge_nids.agent.classifier.Classifier`, so a conversion can be checked on
the same rows. Without ``--data`` the rows are the MODEL_DIR's held-out
``test.npz``; with it, every cleaned row of the given files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_nids.preprocess import Preprocessor
from edge_nids.training.datasets import BENIGN_CLASSES, DataError

__all__ = ["evaluate", "is_bundle", "is_model_dir"]

log = logging.getLogger(__name__)


def is_bundle(path: Path) -> bool:
    return (path / "bundle.json").is_file()


def is_model_dir(path: Path) -> bool:
    return (path / "model.keras").exists() and (path / "train.json").is_file()


def _rows_from_data(dataset: str, data: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw feature rows, class names and attack flags of every cleaned row of ``data``."""
    from edge_nids.training.clean import clean
    from edge_nids.training.datasets import load_dataset
    from edge_nids.training.prepare import raw_matrix

    d, report = clean(load_dataset(dataset, data))
    log.info("evaluation data cleaning: %s", report.to_dict())
    if len(d) == 0:
        raise DataError("no rows left after cleaning")
    return raw_matrix(d), d.classes, d.is_attack


def _y_from_names(names: np.ndarray, is_attack: np.ndarray, labels: list[str]) -> np.ndarray:
    if len(labels) == 2:
        return is_attack.astype(np.int64)
    index = {c: i for i, c in enumerate(labels)}
    unknown = sorted(set(names.tolist()) - set(index))
    if unknown:
        raise DataError(f"classes not known to the model: {', '.join(unknown)}")
    return np.fromiter((index[c] for c in names), dtype=np.int64, count=len(names))


def _evaluate_model_dir(path: Path, dataset: str | None, data: Sequence[str] | None) -> dict[str, Any]:
    from edge_nids.training.fit import predict
    from edge_nids.training.metrics import classification_metrics
    from edge_nids.training.models import keras_module

    train = json.loads((path / "train.json").read_text())
    pre = Preprocessor.from_dict(json.loads((path / "preprocess.json").read_text()))
    labels, attack_idx = train["labels"], train["attack_label_indices"]
    if data or dataset:
        raw, names, is_attack = _rows_from_data(dataset or train["dataset"], data)
        X, y = pre.transform(raw), _y_from_names(names, is_attack, labels)
        source = "all cleaned rows of the given data"
    else:
        npz = np.load(path / "test.npz", allow_pickle=False)
        X, y = npz["X"], npz["y"]
        names = npz["names"] if "names" in npz.files else None
        source = "test.npz (held-out test split)"
    model = keras_module().models.load_model(path / "model.keras")
    m = classification_metrics(y, predict(model, X), labels, attack_idx, names)
    m["rows_from"] = source
    m["model"] = str(path)
    return m


def _evaluate_bundle(
    path: Path, dataset: str | None, data: Sequence[str] | None, test_npz: Path | None
) -> dict[str, Any]:
    from edge_nids.agent.classifier import Classifier
    from edge_nids.bundle import load_bundle
    from edge_nids.training.metrics import classification_metrics

    bundle = load_bundle(path)
    if data or dataset:
        raw, names, is_attack = _rows_from_data(dataset or "cic-ids2017", data)
        source = "all cleaned rows of the given data"
    elif test_npz is not None:
        npz = np.load(test_npz, allow_pickle=False)
        if "X_raw" not in npz.files:
            raise DataError(f"{test_npz}: holds no raw feature rows (X_raw)")
        raw = npz["X_raw"]
        names = npz["names"]
        is_attack = ~np.isin(names, list(BENIGN_CLASSES))
        source = f"{test_npz} (held-out test split)"
    else:
        raise DataError("a bundle needs rows: pass --data FILES or --test MODEL_DIR/test.npz")
    from edge_nids.flows.schema import get_schema

    want = len(get_schema(bundle.schema_name))
    if raw.ndim != 2 or raw.shape[1] != want:
        raise DataError(
            f"the rows have {raw.shape[1] if raw.ndim == 2 else 0} feature columns, but bundle "
            f"{bundle.name} reads schema {bundle.schema_name} ({want} columns): "
            + (
                "pass flow CSVs from `edge-nids extract --profile corrected`"
                if want != 78
                else "pass CIC-IDS2017 or extract CSVs"
            )
        )
    threshold = float(bundle.threshold)
    score = np.asarray(Classifier(bundle).scores(raw), dtype=np.float64)
    y = is_attack.astype(np.int64)  # 0 benign, 1 attack
    m = classification_metrics(
        y, np.column_stack([1.0 - score, score]), ["benign", "attack"], [1], names, threshold=threshold
    )
    m.pop("class_accuracy")  # the same as accuracy for two classes
    m["rows_from"] = source
    m["model"] = str(path)
    return m


def evaluate(
    model: str | Path,
    *,
    dataset: str | None = None,
    data: Sequence[str] | None = None,
    test_npz: str | Path | None = None,
) -> dict[str, Any]:
    """Metrics of a MODEL_DIR or bundle directory (see module doc)."""
    path = Path(model)
    if not path.exists():
        raise DataError(f"{path}: no such model directory")
    if is_bundle(path):
        return _evaluate_bundle(path, dataset, data, Path(test_npz) if test_npz else None)
    if is_model_dir(path):
        return _evaluate_model_dir(path, dataset, data)
    raise DataError(f"{path}: neither a MODEL_DIR (model.keras + train.json) nor a bundle (bundle.json)")
