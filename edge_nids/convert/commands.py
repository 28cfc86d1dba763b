"""Subcommand ``convert`` (light: TensorFlow is imported only when it runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]


def _fail(message: str) -> int:
    print(f"edge-nids convert: error: {message}", file=sys.stderr)
    return 2


def _batch_sizes(text: str) -> list[int] | None:
    if text.strip() == "dynamic":
        return None
    try:
        sizes = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch sizes must be integers like 1,256, got {text!r}") from None
    if not sizes or sizes[0] < 1 or sizes[-1] > 4096:
        raise argparse.ArgumentTypeError(f"batch sizes must be in 1..4096, got {text!r}")
    return sizes


def _sparsity(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"sparsity must be a number, got {text!r}") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"sparsity must be between 0 and 1 (exclusive), got {v}")
    return v


def _convert(args: argparse.Namespace) -> int:
    from edge_nids.convert.pipeline import ConvertConfig, convert_model_dir
    from edge_nids.convert.tflite import ConversionError
    from edge_nids.convert.verify import VerificationError

    cfg = ConvertConfig(
        model_dir=Path(args.model_dir),
        mode=args.mode,
        out=Path(args.out),
        prune=args.prune,
        prune_epochs=args.prune_epochs,
        calibration=Path(args.calibration) if args.calibration else None,
        max_drop=args.max_drop,
        threshold=args.threshold,
        batch_sizes=args.batch_sizes,
        unroll=not args.fused_lstm,
        stepped=not args.keras_unroll,
        per_channel=args.per_channel,
    )
    try:
        s = convert_model_dir(cfg)
    except VerificationError as exc:
        return _fail(f"{exc}; bundle left in {args.out} with bundle.json.rejected")
    except (ConversionError, OSError, ValueError) as exc:
        return _fail(str(exc))
    sizes = sorted(set(cfg.batch_sizes or [])) or "dynamic"
    print(f"{cfg.mode}: {s['bytes']} bytes, batch sizes {sizes}; wrote {cfg.out}")
    p = s.get("pruning")
    if p:
        print(
            f"pruning {100 * p['sparsity']:.0f} %: gzip {p['gzip_bytes_unpruned']} → {p['gzip_bytes']} B; "
            f"Keras accuracy before pruning {p['keras_accuracy_unpruned']:.2f} %"
        )
    v = s.get("verify")
    if v:
        print(
            f"verified on {v['rows']} test rows "
            f"({'raw features' if v['from_raw_features'] else 'preprocessed'}): "
            f"agreement {100 * v['agreement']:.2f} %, max |Δprob| {v['max_abs_dprob']:.4f}, "
            f"accuracy Keras {v['keras_accuracy']:.2f} % / TFLite {v['tflite_accuracy']:.2f} %"
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``convert`` to the ``edge-nids`` parser."""
    p = sub.add_parser(
        "convert",
        help="convert a trained MODEL_DIR into a verified TFLite model bundle",
        description="Convert what `edge-nids train` wrote into a model bundle (model.tflite + bundle.json), "
        "then check it against the Keras model on the held-out rows.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="directory written by `edge-nids train`")
    mode = p.add_mutually_exclusive_group(required=True)
    for m, text in (
        ("int8", "full integer quantization (int8 in/out), calibrated on training rows"),
        ("float16", "float16 weights"),
        ("dynamic", "dynamic-range quantization (int8 weights, float activations)"),
        ("float", "float32, no quantization"),
    ):
        mode.add_argument(f"--{m}", dest="mode", action="store_const", const=m, help=text)
    p.add_argument(
        "--prune", type=_sparsity, metavar="SPARSITY", help="magnitude-prune to this sparsity and fine-tune"
    )
    p.add_argument("--prune-epochs", type=int, default=4, help="fine-tune epochs when pruning (default 4)")
    p.add_argument(
        "--calibration",
        metavar="FILE.npz",
        help="int8 calibration rows X (default MODEL_DIR/calibration.npz)",
    )
    p.add_argument(
        "--max-drop", type=float, default=0.5, help="most accuracy points lost vs Keras (default 0.5)"
    )
    p.add_argument(
        "--threshold", type=float, default=0.5, help="decision threshold on the attack probability"
    )
    p.add_argument(
        "--batch-sizes",
        type=_batch_sizes,
        default=None,
        help="'dynamic' (default: one graph, batch dimension resized at run time) or static "
        "batch sizes like 1,256, one signature each (a fused LSTM needs one static size)",
    )
    p.add_argument(
        "--keras-unroll",
        action="store_true",
        help="unroll the LSTM with Keras's own cell instead of hand-written steps (bigger, slower)",
    )
    p.add_argument(
        "--per-channel",
        action="store_true",
        help="int8: per-channel weight scales (default per tensor: smaller file)",
    )
    p.add_argument(
        "--fused-lstm",
        action="store_true",
        help="keep the fused LSTM op instead of unrolling (smaller, slower as int8)",
    )
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="bundle directory to write")
    p.set_defaults(func=_convert)
