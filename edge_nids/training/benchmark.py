"""``edge-nids benchmark``: the paper's Table 2 on the shared data, written to ``docs/results.md``.

Every model of a dataset is trained on the same cleaned rows, split and
preprocessing (one :func:`~edge_nids.training.prepare.prepare` call per dataset),
with the same seed; a 200-tree random forest on the same inputs is the reference.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_nids.training.datasets import BENIGN_CLASSES
from edge_nids.training.fit import HyperParams, fit, predict
from edge_nids.training.metrics import classification_metrics
from edge_nids.training.prepare import Prepared, describe, prepare
from edge_nids.training.report import pct
from edge_nids.training.train import command_line

__all__ = ["NEURAL_MODELS", "BenchmarkRow", "run_benchmark", "schedule"]

log = logging.getLogger(__name__)

#: Table 2 rows (the paper's three, then the device variant).
NEURAL_MODELS: tuple[str, ...] = ("cnn-lstm", "cnn", "lstm", "cnn-lstm-lite")

#: Paper's Table 2 (accuracy, precision, recall, F1 in %); CNN/LSTM give accuracy only.
PAPER: dict[str, tuple[str, str, str, str]] = {
    "cnn-lstm": ("97.8", "98.2", "97.1", "97.6"),
    "cnn": ("93.8", "", "", ""),
    "lstm": ("95.4", "", "", ""),
}


@dataclass
class BenchmarkRow:
    """One trained model's result on one dataset."""

    dataset: str
    model: str
    params: int | None
    seconds: float
    epochs: str
    metrics: dict[str, Any]
    other_benign_fpr: float | None = None


LIMITS = """\
- **UNSW-NB15**: only the official *testing* partition (82,332 rows) is complete in the
  shared data, so train, validation and test are a stratified random split of that one
  partition, not the official training/testing partitions the paper presumably used.
  Random splits of one partition are easier than the official split (same capture period
  on both sides). UNSW-NB15 also repeats many feature vectors under different labels;
  deduplication keeps the first.
- **CIC-IDS2017**: a ~0.42 % stratified random sample (12,001 rows) of the eight
  MachineLearningCVE day files. Rare classes have a handful of rows (Bot 6, Web Attack 7,
  no Infiltration or Heartbleed), so their per-class recall rests on one or two test rows;
  the binary metrics are dominated by BENIGN, DoS Hulk, PortScan and DDoS. With 3,500
  test rows, one misclassified row moves accuracy by 0.03 points.
- The paper gives no split, seeds, preprocessing or schedule, and does not say which
  dataset its Table 2 is on; its numbers cannot be reproduced as stated.

Paper, Table 2 (as published): CNN-LSTM 97.8 % accuracy, 98.2 % precision, 97.1 % recall,
97.6 % F1; CNN-only 93.8 % and LSTM-only 95.4 % accuracy.

Metrics: positive = attack; FPR = benign rows flagged / benign rows; ROC AUC of the attack
score; all on the held-out test split, decision threshold 0.5."""


def schedule(dataset: str, quick: bool, seed: int) -> HyperParams:
    """The training schedule used for every neural model of ``dataset``."""
    if quick:
        return HyperParams(epochs=2, batch_size=128, seed=seed)
    if dataset == "unsw-nb15":  # 4.6x the CIC rows: larger batches keep it to minutes
        return HyperParams(epochs=30, batch_size=256, lr=3e-3, patience=6, seed=seed)
    return HyperParams(seed=seed)


#: Benign rows outside the CIC-IDS2017 sample (non-random selections), for a second FPR.
OTHER_BENIGN = (
    "cic-ids2017/MachineLearningCVE/day_heads_rdube",
    "cic-ids2017/MachineLearningCVE/benign_10000_victorclinton.csv",
)


def other_benign(prep: Prepared) -> np.ndarray | None:
    """Preprocessed BENIGN rows of :data:`OTHER_BENIGN` whose feature vectors are not in ``prep``'s
    data (so none was trained on); None when the files are absent or the dataset is not CIC."""
    import pandas as pd

    from edge_nids.training.clean import clean
    from edge_nids.training.datasets import data_root, load_cic
    from edge_nids.training.prepare import raw_matrix

    root = data_root()
    if prep.data.dataset != "cic-ids2017" or root is None:
        return None
    paths = [root / p for p in OTHER_BENIGN]
    if not all(p.exists() for p in paths):
        return None
    extra, _ = clean(load_cic(paths))
    seen = set(pd.util.hash_pandas_object(prep.data.features, index=False))
    new = ~pd.util.hash_pandas_object(extra.features, index=False).isin(seen).to_numpy()
    keep = new & ~extra.is_attack
    return prep.preprocessor.transform(raw_matrix(extra)[keep])


def _fpr_on(model_probs: np.ndarray, prep: Prepared) -> float:
    score = model_probs[:, prep.attack_idx].sum(axis=1)
    return float((score >= 0.5).mean()) if len(score) else 0.0


def _forest(prep: Prepared, seed: int, X_other: np.ndarray | None) -> BenchmarkRow:
    from sklearn.ensemble import RandomForestClassifier

    X_tr, y_tr = prep.part("train")
    X_te, y_te = prep.part("test")
    rf = RandomForestClassifier(n_estimators=200, n_jobs=-1, random_state=seed)
    t0 = time.perf_counter()
    rf.fit(X_tr, y_tr)
    seconds = time.perf_counter() - t0
    probs = np.zeros((len(X_te), len(prep.labels)))
    probs[:, rf.classes_] = rf.predict_proba(X_te)
    m = classification_metrics(y_te, probs, prep.labels, prep.attack_idx, prep.names("test"))
    row = BenchmarkRow(prep.data.dataset, "random forest (200 trees)", None, seconds, "-", m)
    if X_other is not None:
        other = np.zeros((len(X_other), len(prep.labels)))
        other[:, rf.classes_] = rf.predict_proba(X_other)
        row.other_benign_fpr = _fpr_on(other, prep)
    return row


def _row_md(r: BenchmarkRow) -> str:
    m = r.metrics
    auc = "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.4f}"
    params = "-" if r.params is None else f"{r.params:,}"
    other = "-" if r.other_benign_fpr is None else pct(r.other_benign_fpr)
    return (
        f"| {r.model} | {params} | {pct(m['accuracy'])} | {pct(m['precision'])} | {pct(m['recall'])} | "
        f"{pct(m['f1'])} | {pct(m['fpr'])} | {other} | {auc} | {r.seconds:.1f} | {r.epochs} |"
    )


def _dataset_section(
    prep: Prepared, rows: list[BenchmarkRow], hp: HyperParams, n_other: int | None
) -> list[str]:
    c = prep.clean_report
    d = describe(prep)
    test_classes = d["test"]["classes"]
    majority = max(test_classes.values()) / max(d["test"]["rows"], 1)
    benign_test = sum(v for k, v in test_classes.items() if k in BENIGN_CLASSES)
    out = [
        f"## {prep.data.dataset}",
        "",
        f"- Files: {', '.join(Path(f).name for f in prep.data.files)}",
        *[f"- {n}" for n in prep.notes],
        f"- Cleaning: {c.rows_in} rows → {c.rows_out} (removed {c.incomplete} with NaN, {c.infinite} with "
        f"±inf, {c.corrupt} unparseable, {c.negative} with impossible negative values, {c.duplicates} "
        f"duplicate feature vectors of which {c.conflicting_duplicates} with a conflicting label). "
        "Deduplicated before splitting: no feature vector is in two parts.",
        f"- Split (stratified by class, seed {hp.seed}): train {d['train']['rows']}, validation "
        f"{d['val']['rows']}, test {d['test']['rows']} (test: {benign_test} benign, "
        f"{d['test']['rows'] - benign_test} attacks; always answering the majority class scores "
        f"{pct(majority)} % accuracy).",
        f"- Inputs: {prep.preprocessor.n_outputs} after preprocessing: signed log1p on "
        f"{sum(1 for t in prep.preprocessor.columns if t.log)} numeric columns, then min-max fitted on the "
        "training split only; constant columns dropped; categoricals one-hot with an unseen bucket.",
        f"- Schedule (every neural model): Adam lr {hp.lr}, batch {hp.batch_size}, "
        f"at most {hp.epochs} epochs, "
        f"early stopping on validation loss (patience {hp.patience}, best weights restored), class weights "
        f"(balanced)^{hp.class_weight_power}, dropout {hp.dropout}.",
        *(
            [
                f"- FPR other benign: the share of {n_other} BENIGN rows of the day heads and the "
                "10,000-row benign file (feature vectors not in the sample, so never trained on) "
                "flagged as attacks. Those rows are non-random selections; a second look at false alarms."
            ]
            if n_other is not None
            else []
        ),
        "",
        "| model | params | accuracy % | precision % | recall % | F1 % | FPR % | FPR other benign % "
        "| ROC AUC | train s | epochs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[_row_md(r) for r in rows],
        "",
        "Per-class recall on the test split (% of each class's rows given the right attack/benign verdict; "
        "rows in brackets):",
        "",
    ]
    classes = list(rows[0].metrics["per_class_recall"])
    out.append("| class | " + " | ".join(r.model for r in rows) + " |")
    out.append("|---|" + "---:|" * len(rows))
    for cls in classes:
        n = rows[0].metrics["per_class_recall"][cls]["n"]
        cells = [pct(r.metrics["per_class_recall"][cls]["recall"], 1) for r in rows]
        out.append(f"| {cls} ({n}) | " + " | ".join(cells) + " |")
    out.append("")
    return out


def run_benchmark(
    out: Path, *, quick: bool = False, seed: int = 42, datasets: Sequence[str] | None = None
) -> list[BenchmarkRow]:
    """Train every model on each dataset, print the table and write ``out`` (markdown)."""
    import tensorflow as tf  # noqa: F401  (loaded here so its start-up is not counted as training time)

    datasets = list(datasets or ("cic-ids2017", "unsw-nb15"))
    sections: list[str] = []
    all_rows: list[BenchmarkRow] = []
    t_start = time.perf_counter()
    for ds in datasets:
        prep = prepare(ds, None, seed=seed, max_rows=3000 if quick else None)
        hp = schedule(ds, quick, seed)
        X_other = other_benign(prep)
        rows: list[BenchmarkRow] = []
        for name in NEURAL_MODELS:
            log.warning("benchmark: training %s on %s", name, ds)
            r = fit(prep, name, hp, verbose=0)
            X_te, y_te = prep.part("test")
            m = classification_metrics(
                y_te, predict(r.model, X_te), prep.labels, prep.attack_idx, prep.names("test")
            )
            row = BenchmarkRow(ds, name, r.params, r.seconds, f"{r.epochs_run} (best {r.best_epoch})", m)
            if X_other is not None:
                row.other_benign_fpr = _fpr_on(predict(r.model, X_other), prep)
            rows.append(row)
            print(_row_md(row), flush=True)
        rows.append(_forest(prep, seed, X_other))
        print(_row_md(rows[-1]), flush=True)
        sections.extend(_dataset_section(prep, rows, hp, None if X_other is None else len(X_other)))
        all_rows.extend(rows)
    total = time.perf_counter() - t_start
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_document(all_rows, sections, quick, total))
    print(f"wrote {out}")
    return all_rows


def _document(rows: list[BenchmarkRow], sections: list[str], quick: bool, total_s: float) -> str:
    import tensorflow as tf

    head = [
        "# Results: the paper's Table 2 on the shared data",
        "",
        "Generated by `" + command_line() + "` (edge_nids/training/benchmark.py); do not edit by hand.",
        "",
        f"Machine: {platform.machine()}, {platform.processor() or platform.system()}, Python "
        f"{platform.python_version()}, TensorFlow {tf.__version__}; total run time {total_s / 60:.1f} min. "
        "Training times are wall-clock seconds of `model.fit` on this machine.",
        "",
    ]
    if quick:
        head += [
            "**--quick run: 2 epochs on a 3,000-row subsample. These numbers only show that the pipeline "
            "runs; they are not results.**",
            "",
        ]
    head += [
        "## How this data limits the comparison",
        "",
        LIMITS,
        "",
    ]
    return "\n".join(head + sections)
