"""Magnitude pruning (tensorflow-model-optimization) with a short fine-tune on the training rows.

The training rows are rebuilt from ``train.json`` (dataset, data files, seed,
subsample) with the colleague's data pipeline and transformed with the MODEL_DIR's
saved preprocessing, so the fine-tune sees exactly what training saw.
"""

from __future__ import annotations

import gzip
import logging
import re
import shlex
from pathlib import Path
from typing import Any

import numpy as np

from edge_nids.preprocess import Preprocessor
from edge_nids.training.models import keras_module

__all__ = ["gzip_size", "prune_model", "rebuild_prepared", "training_rows"]

log = logging.getLogger(__name__)


def gzip_size(blob: bytes) -> int:
    """Size in bytes of ``blob`` after gzip -9 (what pruning's zeros buy on disk/over the wire)."""
    return len(gzip.compress(blob, compresslevel=9, mtime=0))


def _max_rows_candidates(train: dict[str, Any]) -> list[int | None]:
    """``--max-rows`` of the training run: train.json's field, the recorded command, or the
    subsample size in its notes (first that reproduces the split wins)."""
    out: list[int | None] = []
    if train.get("max_rows") is not None:
        out.append(int(train["max_rows"]))
    args = shlex.split(str(train.get("command", "")))
    for i, a in enumerate(args):
        if a == "--max-rows" and i + 1 < len(args) and args[i + 1].isdigit():
            out.append(int(args[i + 1]))
        elif a.startswith("--max-rows=") and a.split("=", 1)[1].isdigit():
            out.append(int(a.split("=", 1)[1]))
    for note in train.get("notes", []):
        m = re.match(r"stratified subsample of (\d+) of", str(note))
        if m:
            out.append(int(m.group(1)))
    if not out:
        out.append(None)
    return list(dict.fromkeys(out))


def _data_path(path: str, data_root: Path | None) -> str:
    """A train.json data path, re-rooted under ``data_root`` (the shared datasets folder) when given."""
    if data_root is None:
        return path
    parts = Path(path).parts
    if "datasets" in parts:
        return str(data_root.joinpath(*parts[len(parts) - parts[::-1].index("datasets") :]))
    return str(data_root / Path(path).name)


def rebuild_prepared(train: dict[str, Any], data_root: Path | None = None) -> Any:
    """The training run's ``Prepared`` data (cleaned rows, same split), rebuilt from ``train.json``.

    ``data_root``: where the shared datasets live now, if not where training read them.
    Raises ``ValueError`` when the data files are gone or the split does not come out the same.
    """
    from edge_nids.training.prepare import prepare

    files = [_data_path(f["path"], data_root) for f in train.get("data_files", [])]
    if not files:
        raise ValueError("train.json lists no data files")
    want = train.get("split_sizes")
    got = None
    for max_rows in _max_rows_candidates(train):
        prep = prepare(
            train["dataset"],
            files,
            seed=int(train["seed"]),
            multiclass=bool(train.get("multiclass", False)),
            max_rows=max_rows,
            max_per_class=train.get("max_per_class"),
            exclude_features=list(train.get("exclude_features", [])),
            log_mode=str(train.get("log_mode", "auto")),
        )
        got = prep.split.sizes()
        if not want or got == want:
            return prep
    raise ValueError(f"rebuilt split {got} differs from train.json's {want}")


def training_rows(
    train: dict[str, Any], pre: Preprocessor, data_root: Path | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_val, y_val) rebuilt from ``train.json`` and transformed with ``pre``."""
    prep = rebuild_prepared(train, data_root)
    y = prep.y
    return (
        pre.transform(prep.raw("train")),
        y[prep.split.train],
        pre.transform(prep.raw("val")),
        y[prep.split.val],
    )


def prune_model(
    model: Any,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    sparsity: float,
    *,
    epochs: int = 4,
    batch_size: int = 64,
    lr: float = 5e-4,
    seed: int = 42,
) -> Any:
    """Prune ``model`` to ``sparsity`` (fraction of zero weights in Conv/LSTM/Dense kernels),
    fine-tune ``epochs`` epochs, and return the stripped (plain tf-keras) model."""
    if not 0.0 < sparsity < 1.0:
        raise ValueError(f"sparsity must be in (0, 1), got {sparsity}")
    keras = keras_module()
    import tensorflow_model_optimization as tfmot

    X_tr, y_tr, X_va, y_va = data
    keras.utils.set_random_seed(seed)
    steps = max(1, int(np.ceil(len(X_tr) / batch_size)))
    end_step = max(1, steps * (epochs - 1))
    # masks are updated every ``frequency`` steps (tfmot's default 100): with fewer fine-tuning
    # steps than that they were never applied and nothing was pruned (measured: 0 % zeros after
    # 30 steps), so update at least four times before ``end_step``
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=sparsity,
        begin_step=0,
        end_step=end_step,
        frequency=max(1, min(100, end_step // 4)),
    )
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    pruned.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    pruned.fit(
        X_tr,
        y_tr,
        validation_data=(X_va, y_va) if len(y_va) else None,
        epochs=epochs,
        batch_size=batch_size,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
        verbose=0,
    )
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    log.info("pruned: %.1f %% of the kernel weights are zero", 100 * kernel_zero_fraction(stripped))
    return stripped


def kernel_zero_fraction(model: Any) -> float:
    """Share of exactly-zero weights in the model's kernels (weights of 2 or more dimensions)."""
    kernels = [w for layer in model.layers for w in layer.get_weights() if w.ndim >= 2]
    total = sum(w.size for w in kernels)
    return sum(int(np.sum(w == 0)) for w in kernels) / max(total, 1)
