"""Markdown summaries of a training run (``report.md``) and metric tables."""

from __future__ import annotations

from typing import Any

__all__ = ["metrics_table", "pct", "training_report"]


def pct(x: float | None, digits: int = 2) -> str:
    """A fraction as a percentage string ("n/a" for None)."""
    return "n/a" if x is None else f"{100.0 * x:.{digits}f}"


def metrics_table(m: dict[str, Any]) -> str:
    """One-row markdown table of the headline metrics."""
    auc = "n/a" if m.get("roc_auc") is None else f"{m['roc_auc']:.4f}"
    return (
        "| rows | accuracy % | precision % | recall % | F1 % | FPR % | ROC AUC |\n"
        "|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {m['n']} | {pct(m['accuracy'])} | {pct(m['precision'])} | {pct(m['recall'])} | "
        f"{pct(m['f1'])} | {pct(m['fpr'])} | {auc} |\n"
    )


def _per_class(m: dict[str, Any]) -> str:
    rows = ["| class | rows | recall % |", "|---|---:|---:|"]
    for cls, v in m["per_class_recall"].items():
        rows.append(f"| {cls} | {v['n']} | {pct(v['recall'])} |")
    return "\n".join(rows) + "\n"


def training_report(train: dict[str, Any], metrics: dict[str, Any]) -> str:
    """``report.md`` of a MODEL_DIR from its ``train.json`` and ``metrics.json`` contents."""
    c = train["cleaning"]
    s = train["split_sizes"]
    hp = train["hyperparameters"]
    lines = [
        f"# {train['model']} on {train['dataset']}",
        "",
        f"Command: `{train.get('command', '')}`",
        "",
        f"- Data: {', '.join(f['path'] for f in train['data_files'])}",
        *[f"- {n}" for n in train.get("notes", [])],
        f"- Cleaning: {c['rows_in']} rows in; removed {c['incomplete']} incomplete (NaN), "
        f"{c['infinite']} infinite, {c['corrupt']} unparseable, {c['negative']} with impossible negative "
        f"values, {c['duplicates']} duplicates ({c['conflicting_duplicates']} with a conflicting label); "
        f"{c['rows_out']} rows out.",
        f"- Split (stratified by class, seed {train['seed']}): train {s['train']}, validation {s['val']}, "
        f"test {s['test']}.",
        f"- Inputs: {len(train['model_inputs'])} after preprocessing "
        f"({len(train['input_columns'])} input columns; constant columns dropped"
        + "".join(f"; {name!r} excluded" for name in train.get("exclude_features", []))
        + ").",
        f"- Labels: {', '.join(train['labels'])}.",
        f"- Model: {train['params']} parameters; Adam lr {hp['lr']}, batch {hp['batch_size']}, "
        f"{train['epochs_run']} of at most {hp['epochs']} epochs (best {train['best_epoch']}), "
        f"class-weight power {hp['class_weight_power']}; trained in {train['training_time_s']:.1f} s.",
        "",
        "## Test split",
        "",
        metrics_table(metrics),
        "Per-class recall (share of each class's rows given the right verdict):",
        "",
        _per_class(metrics),
        "![confusion matrix](confusion_matrix.png) ![ROC](roc.png)",
        "",
        "![training history](history.png)",
        "",
    ]
    return "\n".join(lines)
