"""``edge-nids train``: prepare data, fit one model and write a MODEL_DIR (see docs/architecture.md)."""

from __future__ import annotations

import json
import logging
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_nids.bundle import sha256_file
from edge_nids.flows.schema import get_schema
from edge_nids.training.fit import FitResult, HyperParams, fit, predict
from edge_nids.training.metrics import classification_metrics
from edge_nids.training.prepare import Prepared, describe, prepare
from edge_nids.training.report import training_report

__all__ = ["CALIBRATION_ROWS", "TrainConfig", "run_training", "write_model_dir"]

log = logging.getLogger(__name__)

#: Preprocessed training rows saved for int8 calibration.
CALIBRATION_ROWS = 500


@dataclass
class TrainConfig:
    """Options of one ``edge-nids train`` run."""

    dataset: str
    model: str
    out: Path
    data: list[str] | None = None
    hp: HyperParams = field(default_factory=HyperParams)
    multiclass: bool = False
    max_rows: int | None = None
    max_per_class: int | None = None
    exclude_features: list[str] = field(default_factory=list)
    profile: str | None = None
    log_mode: str = "all"
    command: str = ""


def _profile(cfg: TrainConfig) -> str | None:
    if cfg.dataset == "unsw-nb15":
        return None
    if cfg.dataset == "cic-ids2017":
        if cfg.profile not in (None, "cicids2017"):
            raise ValueError(
                "the public CIC-IDS2017 CSVs were made by the cicids2017 flow meter; --profile cicids2017"
            )
        return "cicids2017"
    return cfg.profile or "cicids2017"


def write_model_dir(
    out: Path,
    cfg: TrainConfig,
    prep: Prepared,
    result: FitResult,
    metrics: dict[str, Any],
    probs: np.ndarray,
) -> None:
    """Write every MODEL_DIR artifact for a trained model (``probs``: its test-split predictions)."""
    from edge_nids.training.plots import plot_confusion, plot_history, plot_roc

    out.mkdir(parents=True, exist_ok=True)
    result.model.save(out / "model.keras")
    (out / "preprocess.json").write_text(json.dumps(prep.preprocessor.to_dict(), indent=1) + "\n")
    schema = prep.data.schema
    train = {
        "format": 1,
        "dataset": cfg.dataset,
        "profile": _profile(cfg),
        "schema": schema,
        "schema_fingerprint": get_schema(schema).fingerprint if schema and schema != "unsw-nb15" else None,
        "input_columns": prep.preprocessor.input_columns,
        "model_inputs": prep.preprocessor.output_columns,
        "labels": prep.labels,
        "attack_label_indices": prep.attack_idx,
        "multiclass": cfg.multiclass,
        "model": cfg.model,
        "seed": cfg.hp.seed,
        "hyperparameters": cfg.hp.to_dict(),
        "log_mode": cfg.log_mode,
        "max_rows": cfg.max_rows,
        "max_per_class": cfg.max_per_class,
        "exclude_features": list(cfg.exclude_features),
        "params": result.params,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "split_sizes": prep.split.sizes(),
        "split_classes": describe(prep),
        "cleaning": prep.clean_report.to_dict(),
        "notes": prep.notes,
        "data_files": [{"path": f, "sha256": sha256_file(f)} for f in prep.data.files],
        "training_time_s": round(result.seconds, 2),
        "command": cfg.command,
    }
    (out / "train.json").write_text(json.dumps(train, indent=1, ensure_ascii=False) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, ensure_ascii=False) + "\n")
    X_tr, _ = prep.part("train")
    rng = np.random.default_rng(cfg.hp.seed)
    calib = X_tr[np.sort(rng.choice(len(X_tr), size=min(CALIBRATION_ROWS, len(X_tr)), replace=False))]
    np.savez(out / "calibration.npz", X=calib.astype(np.float32))
    X_te, y_te = prep.part("test")
    extra: dict[str, np.ndarray] = {"names": prep.names("test").astype(str)}
    if not prep.data.categorical:
        extra["X_raw"] = prep.raw("test").astype(np.float64)
    np.savez_compressed(out / "test.npz", X=X_te, y=y_te, **extra)
    attack = np.isin(y_te, prep.attack_idx)
    plot_confusion(metrics["confusion_matrix"], prep.labels, out / "confusion_matrix.png")
    plot_roc(attack, probs[:, prep.attack_idx].sum(axis=1), metrics["roc_auc"], out / "roc.png")
    plot_history(result.history, out / "history.png")
    (out / "report.md").write_text(training_report(train, metrics))


def run_training(cfg: TrainConfig) -> dict[str, Any]:
    """Prepare, fit, evaluate on the test split and write ``cfg.out``; returns the test metrics."""
    _profile(cfg)
    prep = prepare(
        cfg.dataset,
        cfg.data,
        seed=cfg.hp.seed,
        multiclass=cfg.multiclass,
        max_rows=cfg.max_rows,
        max_per_class=cfg.max_per_class,
        exclude_features=cfg.exclude_features,
        log_mode=cfg.log_mode,
    )
    c = prep.clean_report
    print(
        f"{cfg.dataset}: {c.rows_in} rows, {c.rows_out} after cleaning "
        f"(-{c.incomplete} NaN, -{c.infinite} inf, -{c.corrupt} corrupt, -{c.negative} negative, "
        f"-{c.duplicates} duplicates); split {prep.split.sizes()}; {prep.preprocessor.n_outputs} inputs"
    )
    result = fit(prep, cfg.model, cfg.hp)
    print(f"{cfg.model}: {result.params} parameters, trained in {result.seconds:.1f} s")
    X_te, y_te = prep.part("test")
    probs = predict(result.model, X_te)
    metrics = classification_metrics(y_te, probs, prep.labels, prep.attack_idx, prep.names("test"))
    write_model_dir(cfg.out, cfg, prep, result, metrics, probs)
    return metrics


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as typed (for reports)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return "edge-nids " + " ".join(shlex.quote(a) for a in args)
