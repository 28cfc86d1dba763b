"""Cleaning as the paper describes: incomplete, infinite, corrupt and duplicate rows removed, counted.

Duplicates are judged on the feature values alone (a row that repeats another's
features with a different label is dropped too, and counted as conflicting), so
after cleaning no feature vector can sit on both sides of a split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from edge_nids.training.datasets import LabelledData

__all__ = ["NEGATIVE_ALLOWED", "CleanReport", "clean", "subset"]

#: Columns where a negative value is meaningful (``-1``: no TCP packet in that direction).
NEGATIVE_ALLOWED: frozenset[str] = frozenset({"Init_Win_bytes_forward", "Init_Win_bytes_backward"})


@dataclass
class CleanReport:
    """Row counts of each cleaning step (rows, in order of removal)."""

    rows_in: int
    incomplete: int
    infinite: int
    corrupt: int
    negative: int
    duplicates: int
    conflicting_duplicates: int
    rows_out: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def subset(data: LabelledData, keep: np.ndarray) -> LabelledData:
    return LabelledData(
        dataset=data.dataset,
        features=data.features.loc[keep].reset_index(drop=True),
        classes=data.classes[keep],
        is_attack=data.is_attack[keep],
        corrupt=data.corrupt[keep],
        files=data.files,
        categorical=data.categorical,
        partition=None if data.partition is None else data.partition[keep],
        schema=data.schema,
        notes=data.notes,
    )


def clean(data: LabelledData) -> tuple[LabelledData, CleanReport]:
    """Drop rows with NaN, ±inf, unparseable or impossible negative values, then duplicates."""
    n = len(data)
    num = data.features.drop(columns=data.categorical)
    x = num.to_numpy(dtype="float64")
    nan_rows = np.isnan(x).any(axis=1)
    cats = data.features[data.categorical]
    if data.categorical:
        nan_rows |= (cats == "").any(axis=1).to_numpy()
    inf_rows = np.isinf(x).any(axis=1) & ~nan_rows
    corrupt = data.corrupt & ~nan_rows & ~inf_rows
    checked = [i for i, c in enumerate(num.columns) if c not in NEGATIVE_ALLOWED]
    with np.errstate(invalid="ignore"):
        neg = (x[:, checked] < 0).any(axis=1) & ~nan_rows & ~inf_rows & ~corrupt
    keep = ~(nan_rows | inf_rows | corrupt | neg)
    kept = subset(data, keep)

    key = pd.util.hash_pandas_object(kept.features, index=False).to_numpy()
    dup = pd.Series(key).duplicated(keep="first").to_numpy()
    # duplicates whose label differs from the first occurrence
    first_cls = pd.Series(kept.classes).groupby(key).transform("first").to_numpy()
    conflicting = int((dup & (first_cls != kept.classes)).sum())
    out = subset(kept, ~dup)
    report = CleanReport(
        rows_in=n,
        incomplete=int(nan_rows.sum()),
        infinite=int(inf_rows.sum()),
        corrupt=int(corrupt.sum()),
        negative=int(neg.sum()),
        duplicates=int(dup.sum()),
        conflicting_duplicates=conflicting,
        rows_out=len(out),
    )
    return out, report
