"""Fit one model on prepared data: Adam, mini-batches, class weights, early stopping on validation."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edge_nids.training.models import DEFAULT_SEED, build_model, keras_module
from edge_nids.training.prepare import Prepared, class_weights

__all__ = ["FitResult", "HyperParams", "fit", "predict"]

log = logging.getLogger(__name__)


@dataclass
class HyperParams:
    """Training schedule. ``class_weight_power``: 0 none, 1 balanced, 0.5 damped."""

    epochs: int = 60
    batch_size: int = 64
    lr: float = 3e-3
    dropout: float = 0.2
    patience: int = 8
    class_weight_power: float = 0.0
    seed: int = DEFAULT_SEED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FitResult:
    """A trained model with its per-epoch history and wall-clock training time (s)."""

    model: Any
    history: dict[str, list[float]]
    seconds: float
    params: int
    epochs_run: int
    best_epoch: int


def fit(prep: Prepared, model_name: str, hp: HyperParams, *, verbose: int | None = None) -> FitResult:
    """Train ``model_name`` on ``prep``'s training split; keep the weights of the best validation loss."""
    keras = keras_module()
    X_tr, y_tr = prep.part("train")
    X_va, y_va = prep.part("val")
    model = build_model(
        model_name, X_tr.shape[1], len(prep.labels), seed=hp.seed, lr=hp.lr, dropout=hp.dropout
    )
    log.info("%s: %d parameters", model_name, model.count_params())
    cw = class_weights(y_tr, len(prep.labels), hp.class_weight_power) if hp.class_weight_power else None
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=hp.patience, restore_best_weights=True, verbose=0
        ),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(2, hp.patience // 3)),
    ]
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    t0 = time.perf_counter()
    hist = model.fit(
        X_tr,
        y_tr,
        validation_data=(X_va, y_va) if len(y_va) else None,
        epochs=hp.epochs,
        batch_size=hp.batch_size,
        class_weight=cw,
        callbacks=callbacks if len(y_va) else [],
        shuffle=True,
        verbose=verbose,
    )
    seconds = time.perf_counter() - t0
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    losses = history.get("val_loss") or history["loss"]
    return FitResult(
        model=model,
        history=history,
        seconds=seconds,
        params=int(model.count_params()),
        epochs_run=len(history["loss"]),
        best_epoch=int(np.argmin(losses)) + 1,
    )


def predict(model: Any, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities [n, C] (float64)."""
    if len(X) == 0:
        return np.zeros((0, model.output_shape[-1]))
    return np.asarray(model.predict(X, batch_size=batch_size, verbose=0), dtype=np.float64)
