"""PNG plots of a training run: confusion matrix, ROC curve, accuracy/loss per epoch (matplotlib Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_nids.training.metrics import roc_curve

__all__ = ["plot_confusion", "plot_history", "plot_roc"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(cm: Sequence[Sequence[int]], labels: Sequence[str], path: Path) -> None:
    """Confusion matrix (rows: true class, columns: predicted) with counts in the cells."""
    plt = _pyplot()
    cm_arr = np.asarray(cm)
    size = max(4.0, 0.5 * len(labels) + 2.5)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(np.log1p(cm_arr), cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for i in range(cm_arr.shape[0]):
        for j in range(cm_arr.shape[1]):
            ax.text(j, i, str(cm_arr[i, j]), ha="center", va="center", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (test split)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_roc(y_attack: np.ndarray, score: np.ndarray, auc: float | None, path: Path) -> None:
    """ROC curve of the attack score (positive = attack)."""
    plt = _pyplot()
    fpr, tpr = roc_curve(y_attack, score)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"AUC = {auc:.4f}" if auc is not None else "AUC n/a")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC (test split)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_history(history: dict[str, list[float]], path: Path) -> None:
    """Training and validation accuracy and loss per epoch."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for ax, key in zip(axes, ("accuracy", "loss"), strict=True):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + key in history:
                ax.plot(epochs, history[prefix + key], style, label=(prefix or "train_") + key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
