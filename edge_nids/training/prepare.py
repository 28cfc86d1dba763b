"""Load → clean → (subsample) → split → fit preprocessing: the arrays every model is trained on.

Shared by ``edge-nids train`` and ``edge-nids benchmark`` so every model sees the
same rows, splits and transform for a given seed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_nids.preprocess import Preprocessor
from edge_nids.training.clean import CleanReport, clean, subset
from edge_nids.training.datasets import BENIGN_CLASSES, LabelledData, load_dataset
from edge_nids.training.split import Split, cap_per_class, split_indices, stratified_split

__all__ = ["Prepared", "class_weights", "describe", "prepare", "raw_matrix"]

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Everything a model needs: cleaned data, split, fitted preprocessing, arrays, labels."""

    data: LabelledData
    clean_report: CleanReport
    split: Split
    preprocessor: Preprocessor
    labels: list[str]
    attack_idx: list[int]
    y: np.ndarray  # class index per cleaned row
    X: dict[str, np.ndarray] = field(default_factory=dict)  # preprocessed train/val/test
    notes: list[str] = field(default_factory=list)
    rows_before_subsample: int = 0

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        idx = getattr(self.split, name)
        return self.X[name], self.y[idx]

    def names(self, name: str) -> np.ndarray:
        return self.data.classes[getattr(self.split, name)]

    def raw(self, name: str) -> np.ndarray:
        return raw_matrix(self.data)[getattr(self.split, name)]


def raw_matrix(data: LabelledData) -> np.ndarray:
    """Feature rows as float64, or as objects when there are text categoricals."""
    if data.categorical:
        return data.features.to_numpy(dtype=object)
    return data.features.to_numpy(dtype=np.float64)


def class_weights(y: np.ndarray, n_classes: int, power: float = 1.0) -> dict[int, float]:
    """Balanced weights ``(n / (C·n_c))**power`` (``power`` 0: none; 0.5: damped), mean 1 over rows."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, (len(y) / (n_classes * np.maximum(counts, 1))) ** power, 0.0)
    w /= float((w[y]).mean())
    return {i: float(w[i]) for i in range(n_classes)}


def prepare(
    dataset: str,
    paths: Sequence[str] | None,
    *,
    seed: int,
    multiclass: bool = False,
    max_rows: int | None = None,
    max_per_class: int | None = None,
    exclude_features: Sequence[str] = (),
    log_mode: str = "all",
    test_fraction: float = 0.3,
    val_fraction: float = 0.1,
) -> Prepared:
    """Load and clean ``dataset``, split it stratified by class with ``seed``, fit preprocessing
    on the training part only and transform every part."""
    data, report = clean(load_dataset(dataset, paths))
    log.info("cleaning: %s", report.to_dict())
    notes = list(data.notes)
    rows_before = len(data)
    if max_per_class is not None:
        keep_idx = cap_per_class(data.classes, max_per_class, seed)
        if len(keep_idx) < len(data):
            names, counts = np.unique(data.classes, return_counts=True)
            capped = sorted(str(c) for c in names[counts > max_per_class])
            data = subset(data, np.isin(np.arange(len(data)), keep_idx))
            notes.append(
                f"at most {max_per_class} rows per class (--max-per-class): {len(data)} of {rows_before} "
                f"cleaned rows kept; capped: {', '.join(capped)}"
            )
    if max_rows is not None and len(data) > max_rows:
        keep, _ = stratified_split(data.classes, (max_rows / len(data), 1 - max_rows / len(data)), seed)
        data = subset(data, np.isin(np.arange(len(data)), keep))
        notes.append(f"stratified subsample of {len(data)} of {rows_before} cleaned rows (--max-rows)")
    split = split_indices(
        data.classes,
        seed=seed,
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        partition=data.partition,
    )
    if multiclass:
        classes = sorted(set(data.classes.tolist()), key=lambda c: (c not in BENIGN_CLASSES, c))
        labels = classes
        attack_idx = [i for i, c in enumerate(classes) if c not in BENIGN_CLASSES]
        index = {c: i for i, c in enumerate(classes)}
        y = np.fromiter((index[c] for c in data.classes), dtype=np.int64, count=len(data))
    else:
        labels = ["benign", "attack"]
        attack_idx = [1]
        y = data.is_attack.astype(np.int64)
    if len(np.unique(y[split.train])) < 2:
        raise ValueError("training split holds a single class; a detector needs benign and attack rows")
    raw = raw_matrix(data)
    pre = Preprocessor.fit(
        raw[split.train],
        list(data.features.columns),
        categorical=data.categorical,
        log=log_mode,
        exclude=exclude_features,
    )
    X = {name: pre.transform(raw[getattr(split, name)]) for name in ("train", "val", "test")}
    return Prepared(
        data=data,
        clean_report=report,
        split=split,
        preprocessor=pre,
        labels=labels,
        attack_idx=attack_idx,
        y=y,
        X=X,
        notes=notes,
        rows_before_subsample=rows_before,
    )


def describe(prep: Prepared) -> dict[str, Any]:
    """Sizes and class counts of each part (for train.json and reports)."""
    out: dict[str, Any] = {}
    for name in ("train", "val", "test"):
        idx = getattr(prep.split, name)
        cls, cnt = np.unique(prep.data.classes[idx], return_counts=True)
        out[name] = {"rows": len(idx), "classes": {str(c): int(n) for c, n in zip(cls, cnt, strict=True)}}
    return out
