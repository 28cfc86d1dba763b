"""Stratified train/validation/test splits with a fixed seed (numpy only).

Classes too small to spread over every part go to training first, so a class
with a single row is never lost from training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Split", "cap_per_class", "split_indices", "stratified_split"]


@dataclass(frozen=True)
class Split:
    """Row indices of each part."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def cap_per_class(classes: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Sorted row indices keeping at most ``cap`` rows of each class (a seeded random choice).

    Lab captures hold tens of thousands of flows of one flood and hundreds of benign
    ones; capping each class stops one tool's flows from outweighing everything else.
    """
    if cap < 1:
        raise ValueError(f"--max-per-class {cap}: must be at least 1")
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    for value in np.unique(classes):
        idx = np.flatnonzero(classes == value)
        keep.append(idx if len(idx) <= cap else rng.choice(idx, cap, replace=False))
    return np.sort(np.concatenate(keep))


def stratified_split(strata: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Split row indices into ``len(fractions)`` parts, keeping each stratum's proportions.

    ``fractions`` must sum to 1; part 0 receives the rounding remainder.
    """
    if abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions {fractions} do not sum to 1")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for value in np.unique(strata):
        idx = np.flatnonzero(strata == value)
        idx = idx[rng.permutation(len(idx))]
        counts = [int(np.floor(len(idx) * f)) for f in fractions[1:]]
        counts.insert(0, len(idx) - sum(counts))
        start = 0
        for k, c in enumerate(counts):
            parts[k].append(idx[start : start + c])
            start += c
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, dtype=int) for p in parts]


def split_indices(
    strata: np.ndarray,
    *,
    seed: int,
    test_fraction: float = 0.3,
    val_fraction: float = 0.1,
    partition: np.ndarray | None = None,
) -> Split:
    """Train/val/test indices. With ``partition`` ("train"/"test" per row) the test part is the
    official test partition and validation is drawn from the training partition."""
    if partition is not None:
        tr = np.flatnonzero(partition == "train")
        te = np.flatnonzero(partition == "test")
        frac_val = val_fraction / (1.0 - test_fraction)
        a, b = stratified_split(strata[tr], (1.0 - frac_val, frac_val), seed)
        return Split(train=tr[a], val=tr[b], test=te)
    train_fraction = 1.0 - test_fraction - val_fraction
    tr, va, te = stratified_split(strata, (train_fraction, val_fraction, test_fraction), seed)
    return Split(train=tr, val=va, test=te)
