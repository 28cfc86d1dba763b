"""Subcommands ``train``, ``evaluate`` and ``benchmark`` (light: the work is imported when they run)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]

_DATASETS = ("unsw-nb15", "cic-ids2017", "flows")
_MODELS = ("cnn-lstm", "cnn", "lstm", "cnn-lstm-lite", "cnn-lstm-edge", "cnn-lstm-lite8")


def _fail(message: str) -> int:
    print(f"edge-nids: error: {message}", file=sys.stderr)
    return 2


def _train(args: argparse.Namespace) -> int:
    from edge_nids.training.datasets import DataError
    from edge_nids.training.fit import HyperParams
    from edge_nids.training.train import TrainConfig, command_line, run_training

    hp = HyperParams(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        patience=args.patience,
        class_weight_power=args.class_weight,
        dropout=args.dropout,
    )
    cfg = TrainConfig(
        dataset=args.dataset,
        model=args.model,
        out=Path(args.out),
        data=args.data,
        hp=hp,
        multiclass=args.multiclass,
        max_rows=args.max_rows,
        max_per_class=args.max_per_class,
        exclude_features=args.exclude_feature or [],
        profile=args.profile,
        log_mode=args.log,
        command=command_line(),
    )
    try:
        m = run_training(cfg)
    except (DataError, ValueError, OSError) as exc:
        return _fail(str(exc))
    print(
        f"test: accuracy {100 * m['accuracy']:.2f} %, precision {100 * m['precision']:.2f} %, "
        f"recall {100 * m['recall']:.2f} %, F1 {100 * m['f1']:.2f} %, FPR {100 * m['fpr']:.2f} %, "
        f"AUC {m['roc_auc'] if m['roc_auc'] is None else round(m['roc_auc'], 4)}; wrote {args.out}"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from edge_nids.bundle import BundleError
    from edge_nids.training.datasets import DataError
    from edge_nids.training.evaluate import evaluate

    try:
        m = evaluate(args.model, dataset=args.dataset, data=args.data, test_npz=args.test)
    except (DataError, BundleError, ValueError, OSError, KeyError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(m, indent=1, ensure_ascii=False))
    else:
        from edge_nids.training.report import metrics_table

        print(f"{m['model']}: {m['rows_from']}")
        print(metrics_table(m), end="")
        for cls, v in m["per_class_recall"].items():
            print(f"  {cls}: recall {100 * v['recall']:.2f} % of {v['n']}")
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    from edge_nids.training.benchmark import run_benchmark
    from edge_nids.training.datasets import DataError

    try:
        run_benchmark(Path(args.out), quick=args.quick, seed=args.seed, datasets=args.dataset)
    except (DataError, ValueError, OSError) as exc:
        return _fail(str(exc))
    return 0


def register(subparsers: Any) -> None:
    """Add ``train``, ``evaluate``, ``benchmark`` and ``detection`` to the ``edge-nids`` parser."""
    from edge_nids.training.detection import register as register_detection
    from edge_nids.training.families_commands import register as register_families

    register_detection(subparsers)
    register_families(subparsers)
    p = subparsers.add_parser("train", help="train a model on CSV data and write a MODEL_DIR")
    p.add_argument("--dataset", required=True, choices=_DATASETS)
    p.add_argument(
        "--data",
        nargs="+",
        metavar="PATH",
        help="CSV files or folders of CSVs (default: the dataset's files under $EDGE_NIDS_DATA "
        "or ../shared/datasets)",
    )
    p.add_argument("--model", default="cnn-lstm", choices=_MODELS)
    p.add_argument("--out", required=True, metavar="DIR", help="MODEL_DIR to write")
    p.add_argument("--epochs", type=int, default=60, help="most epochs (early stopping on validation loss)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--patience", type=int, default=8, help="early-stopping patience (epochs)")
    p.add_argument(
        "--class-weight",
        type=float,
        default=0.0,
        metavar="POWER",
        help="class weights (n/(C·n_c))**POWER: 0 none (default), 1 balanced, 0.5 damped",
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--multiclass", action="store_true", help="one output per class instead of attack/benign")
    p.add_argument("--max-rows", type=int, help="stratified subsample of the cleaned rows")
    p.add_argument(
        "--max-per-class",
        type=int,
        metavar="N",
        help="keep at most N cleaned rows of each class label (seeded; before the split)",
    )
    p.add_argument(
        "--exclude-feature",
        action="append",
        metavar="COLUMN",
        help="an input column the model must not use (repeatable), e.g. 'Destination Port'",
    )
    p.add_argument(
        "--log",
        default="all",
        choices=("all", "auto", "none"),
        help="signed log1p before min-max: every column (default), heavy-tailed ones, none",
    )
    p.add_argument(
        "--profile",
        choices=("cicids2017", "corrected"),
        help="flow-meter profile of the data (flows: the extract run's; CIC CSVs are cicids2017)",
    )
    p.set_defaults(func=_train)

    p = subparsers.add_parser("evaluate", help="metrics of a MODEL_DIR or a model bundle")
    p.add_argument("model", metavar="MODEL", help="MODEL_DIR or bundle directory")
    p.add_argument("--dataset", choices=_DATASETS, help="dataset of --data (default: the model's)")
    p.add_argument("--data", nargs="+", metavar="PATH", help="evaluate on every cleaned row of these files")
    p.add_argument("--test", metavar="NPZ", help="for a bundle: a MODEL_DIR's test.npz to evaluate on")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=_evaluate)

    p = subparsers.add_parser("benchmark", help="reproduce the paper's Table 2 into docs/results.md")
    p.add_argument("--out", default="docs/results.md", metavar="FILE")
    p.add_argument("--quick", action="store_true", help="few epochs and rows: checks the pipeline only")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--dataset", nargs="+", choices=("unsw-nb15", "cic-ids2017"), default=None)
    p.set_defaults(func=_benchmark)
