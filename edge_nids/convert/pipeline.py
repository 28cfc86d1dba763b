"""``edge-nids convert``: MODEL_DIR → verified model bundle (see docs/convert.md)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edge_nids import __version__
from edge_nids.bundle import BUNDLE_JSON, BundleError, load_bundle, sha256_file, write_bundle
from edge_nids.convert.tflite import ConversionError, convert_keras, load_keras_model, op_names
from edge_nids.convert.verify import VerificationError, check_drop, compare, load_test
from edge_nids.training.fit import predict

__all__ = ["ConvertConfig", "convert_model_dir", "read_model_dir"]

log = logging.getLogger(__name__)

_KERAS_METRICS = ("accuracy", "precision", "recall", "f1", "fpr", "roc_auc", "n", "threshold")


@dataclass
class ConvertConfig:
    """Options of one ``edge-nids convert`` run."""

    model_dir: Path
    mode: str
    out: Path
    prune: float | None = None
    prune_epochs: int = 4
    calibration: Path | None = None
    max_drop: float = 0.5
    threshold: float = 0.5
    batch_sizes: Sequence[int] | None = None  # None: one graph, dynamic batch dimension
    unroll: bool = True
    stepped: bool = True  # unrolled LSTM as hand-written steps (else Keras's unrolled cell)
    per_channel: bool = False
    name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def read_model_dir(model_dir: Path) -> dict[str, Any]:
    """train.json, preprocess.json and metrics.json of a MODEL_DIR; ``ConversionError`` naming the
    missing or broken file."""
    if not model_dir.is_dir():
        raise ConversionError(f"{model_dir}: not a directory (expected what `edge-nids train` writes)")
    out: dict[str, Any] = {}
    for name, required in (("train.json", True), ("preprocess.json", True), ("metrics.json", False)):
        p = model_dir / name
        if not p.is_file():
            if required:
                raise ConversionError(f"{p}: missing (not a MODEL_DIR written by `edge-nids train`?)")
            out[name] = {}
            continue
        try:
            out[name] = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConversionError(f"{p}: cannot read ({exc})") from None
    if not (model_dir / "model.keras").is_file():
        raise ConversionError(f"{model_dir / 'model.keras'}: missing")
    return out


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import tensorflow as tf

    v = {"edge_nids": __version__, "tensorflow": tf.__version__}
    for dist in ("tf-keras", "tensorflow-model-optimization", "ai-edge-litert"):
        try:
            v[dist.replace("-", "_")] = version(dist)
        except PackageNotFoundError:
            v[dist.replace("-", "_")] = "not installed"
    return v


def _calibration(cfg: ConvertConfig) -> np.ndarray | None:
    if cfg.mode != "int8":
        return None
    path = cfg.calibration or cfg.model_dir / "calibration.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            return np.asarray(z["X"], dtype=np.float32)
    except FileNotFoundError:
        raise ConversionError(f"{path}: missing (int8 needs calibration rows; see --calibration)") from None
    except (OSError, ValueError, KeyError) as exc:
        raise ConversionError(f"{path}: cannot read calibration rows X ({exc})") from None


def _quantization(model: bytes) -> dict[str, Any]:
    from edge_nids.agent.classifier import load_interpreter_class

    it = load_interpreter_class()(model_content=model)
    sigs: dict[str, Any] = {}
    for key in it.get_signature_list():
        r = it.get_signature_runner(key)
        (i,) = r.get_input_details().values()
        (o,) = r.get_output_details().values()
        sigs[key] = {
            "batch": int(i["shape_signature"][0]),
            "input": {
                "dtype": np.dtype(i["dtype"]).name,
                "scale": float(i["quantization"][0]),
                "zero_point": int(i["quantization"][1]),
                "shape": [int(s) for s in i["shape_signature"]],
            },
            "output": {
                "dtype": np.dtype(o["dtype"]).name,
                "scale": float(o["quantization"][0]),
                "zero_point": int(o["quantization"][1]),
                "shape": [int(s) for s in o["shape_signature"]],
            },
        }
    return {"signatures": sigs}


def convert_model_dir(cfg: ConvertConfig) -> dict[str, Any]:
    """Convert, write the bundle to ``cfg.out``, verify it on test.npz; returns a summary.

    Raises ``ConversionError`` (bad input / conversion failure) or ``VerificationError``
    (accuracy drop above ``cfg.max_drop``; the bundle's ``bundle.json`` is then renamed to
    ``bundle.json.rejected`` so nothing loads it by mistake).
    """
    t0 = time.perf_counter()
    md = read_model_dir(cfg.model_dir)
    train, pre_dict, keras_metrics = md["train.json"], md["preprocess.json"], md["metrics.json"]
    model = load_keras_model(cfg.model_dir / "model.keras")
    test = None
    if (cfg.model_dir / "test.npz").is_file():
        try:
            test = load_test(cfg.model_dir / "test.npz")
        except ValueError as exc:
            raise ConversionError(str(exc)) from None

    calibration = _calibration(cfg)

    def to_tflite(m: Any) -> bytes:
        return convert_keras(
            m,
            cfg.mode,
            calibration=calibration,
            batch_sizes=cfg.batch_sizes,
            unroll=cfg.unroll,
            stepped=cfg.stepped,
            per_channel=cfg.per_channel,
        )

    pruning: dict[str, Any] | None = None
    if cfg.prune is not None:
        from edge_nids.convert.prune import gzip_size, kernel_zero_fraction, prune_model, training_rows
        from edge_nids.preprocess import Preprocessor

        try:
            data = training_rows(train, Preprocessor.from_dict(pre_dict))
        except (ValueError, OSError, KeyError) as exc:
            raise ConversionError(f"--prune needs the training rows: {exc}") from None
        unpruned = to_tflite(model)
        before = None if test is None else _keras_accuracy(model, test, train)
        model = prune_model(model, data, cfg.prune, epochs=cfg.prune_epochs, seed=int(train.get("seed", 42)))
        pruning = {
            "sparsity": cfg.prune,
            "fine_tune_epochs": cfg.prune_epochs,
            "gzip_bytes_unpruned": gzip_size(unpruned),
            "bytes_unpruned": len(unpruned),
            "keras_accuracy_unpruned": before,
            "kernel_zero_fraction": round(kernel_zero_fraction(model), 4),
        }
    flat = to_tflite(model)
    if pruning is not None:
        from edge_nids.convert.prune import gzip_size

        pruning["gzip_bytes"] = gzip_size(flat)
        pruning["bytes"] = len(flat)
    meta: dict[str, Any] = {
        "name": cfg.name or cfg.out.name,
        "schema": {
            "name": train.get("schema"),
            "fingerprint": train.get("schema_fingerprint"),
            "profile": train.get("profile"),
        },
        "dataset": train.get("dataset"),
        "input_columns": list(pre_dict.get("input_columns", train.get("input_columns", []))),
        "model_inputs": list(pre_dict.get("output_columns", [])),
        "preprocessing": pre_dict,
        "labels": list(train.get("labels", [])),
        "attack_label_indices": list(train.get("attack_label_indices", [])),
        "threshold": cfg.threshold,
        "model": {
            "name": train.get("model"),
            "params": train.get("params"),
            "mode": cfg.mode,
            "unrolled": cfg.unroll,
            "lstm": ("stepped" if cfg.stepped else "keras-unrolled") if cfg.unroll else "fused",
            "batch_sizes": sorted(set(cfg.batch_sizes)) if cfg.batch_sizes else "dynamic",
            "per_channel": cfg.per_channel if cfg.mode == "int8" else None,
            "pruning": pruning,
            "ops": sorted(set(op_names(flat))),
            "bytes": len(flat),
        },
        "quantization": {"mode": cfg.mode, **_quantization(flat)},
        "metrics": {"keras": {k: keras_metrics.get(k) for k in _KERAS_METRICS if k in keras_metrics}},
        "sha256": {"source_model.keras": sha256_file(cfg.model_dir / "model.keras")},
        "source": {
            "model_dir": str(cfg.model_dir),
            "seed": train.get("seed"),
            "data_files": train.get("data_files", []),
            "split_sizes": train.get("split_sizes"),
            "training_command": train.get("command"),
        },
        "versions": _versions(),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **cfg.extra,
    }
    (cfg.out / (BUNDLE_JSON + ".rejected")).unlink(missing_ok=True)
    try:
        write_bundle(cfg.out, flat, meta)
        bundle = load_bundle(cfg.out, require_computable=False)
    except BundleError as exc:  # the metadata came from a broken MODEL_DIR
        raise ConversionError(str(exc)) from None
    summary: dict[str, Any] = {"out": str(cfg.out), "bytes": len(flat), "mode": cfg.mode, "pruning": pruning}
    if test is not None:
        keras_probs = predict(model, np.asarray(test["X"], np.float32))
        result = compare(bundle, keras_probs, test)
        summary["verify"] = result
        meta["metrics"]["tflite"] = result
        (cfg.out / BUNDLE_JSON).write_text(
            json.dumps(
                meta
                | {
                    "format": bundle.meta["format"],
                    "model_file": bundle.meta["model_file"],
                    "sha256": bundle.meta["sha256"],
                },
                indent=1,
                ensure_ascii=False,
            )
            + "\n",
            encoding="utf-8",
        )
        try:
            check_drop(result, cfg.max_drop)
        except VerificationError:
            (cfg.out / BUNDLE_JSON).replace(cfg.out / (BUNDLE_JSON + ".rejected"))
            raise
    else:
        log.warning("%s: no test.npz, the converted model was not verified", cfg.model_dir)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    return summary


def _keras_accuracy(model: Any, test: dict[str, np.ndarray], train: dict[str, Any]) -> float:
    attack = list(train.get("attack_label_indices", [1]))
    p = predict(model, np.asarray(test["X"], np.float32))[:, attack].sum(axis=1)
    return 100.0 * float(np.mean((p >= 0.5) == np.isin(test["y"], attack)))
