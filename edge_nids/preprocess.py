"""Feature preprocessing shared by training, evaluation, conversion and the device (numpy only).

A :class:`Preprocessor` is fitted on the training split only and saved as JSON
inside the model directory and the model bundle, so every consumer applies the
same transform. Per numeric input column: optional signed log
(``sign(x)·log1p(|x|)``, for heavy-tailed columns), then min-max scaling to
[0, 1] with clipping; columns constant on the training data are dropped.
Categorical columns become one-hot vectors over a training vocabulary plus an
"unseen" bucket. NaN and ±inf inputs map to the column's minimum / maximum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FORMAT_VERSION", "LOG_MODES", "ColumnTransform", "Preprocessor"]

FORMAT_VERSION = 1

#: ``auto``: log for heavy-tailed columns; ``all``: every numeric column; ``none``: plain min-max.
LOG_MODES: tuple[str, ...] = ("auto", "all", "none")


@dataclass
class ColumnTransform:
    """Transform of one input column.

    ``kind`` is ``numeric`` (``log``, ``min``/``max`` after the log, ``keep``) or
    ``categorical`` (``vocab``; output is ``len(vocab) + 1`` one-hot values, the
    last one for values not in the vocabulary).
    """

    name: str
    kind: str = "numeric"
    log: bool = False
    min: float = 0.0
    max: float = 1.0
    keep: bool = True
    vocab: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "categorical":
            return {"name": self.name, "kind": self.kind, "vocab": list(self.vocab)}
        return {
            "name": self.name,
            "kind": self.kind,
            "log": self.log,
            "min": self.min,
            "max": self.max,
            "keep": self.keep,
        }


def _slog(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def _heavy_tailed(col: np.ndarray) -> bool:
    """A column whose range spans orders of magnitude beyond its bulk (max > 100 × (p90 + 1))."""
    lo, p90, hi = np.percentile(col, [0, 90, 100])
    return bool(hi - lo > 100.0 and hi > 100.0 * (abs(p90) + 1.0))


@dataclass
class Preprocessor:
    """Column transforms in input order; ``transform`` maps raw rows to float32 model inputs."""

    columns: list[ColumnTransform]

    @property
    def input_columns(self) -> list[str]:
        """Names of the raw input columns, in the order ``transform`` expects them."""
        return [c.name for c in self.columns]

    @property
    def output_columns(self) -> list[str]:
        """Names of the model inputs (kept numeric columns; ``col=value`` for one-hot outputs)."""
        out: list[str] = []
        for c in self.columns:
            if c.kind == "categorical":
                out.extend([f"{c.name}={v}" for v in c.vocab] + [f"{c.name}=<unseen>"])
            elif c.keep:
                out.append(c.name)
        return out

    @property
    def n_outputs(self) -> int:
        return len(self.output_columns)

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        columns: Sequence[str],
        *,
        categorical: Sequence[str] = (),
        log: str = "auto",
        min_count: int = 5,
        exclude: Sequence[str] = (),
    ) -> Preprocessor:
        """Fit on training rows ``X`` ([n, len(columns)]; categorical columns as text).

        ``min_count``: a category seen fewer times than this goes to the unseen bucket.
        ``exclude``: numeric columns read but not given to the model (``keep`` False), e.g.
        ones that identify the training network rather than the traffic's behaviour.
        """
        unknown = sorted(set(exclude) - set(columns))
        if unknown:
            raise ValueError(f"cannot exclude {', '.join(map(repr, unknown))}: not an input column")
        if set(exclude) & set(categorical):
            raise ValueError("categorical columns cannot be excluded")
        if log not in LOG_MODES:
            raise ValueError(f"log mode {log!r}; choose one of {LOG_MODES}")
        X = np.asarray(X, dtype=object if categorical else np.float64)
        if X.ndim != 2 or X.shape[1] != len(columns):
            raise ValueError(f"X has shape {X.shape}, expected [n, {len(columns)}]")
        transforms = []
        for j, name in enumerate(columns):
            if name in categorical:
                values, counts = np.unique(X[:, j].astype(str), return_counts=True)
                vocab = sorted(str(v) for v, n in zip(values, counts, strict=True) if n >= min_count)
                transforms.append(ColumnTransform(name=name, kind="categorical", vocab=vocab))
                continue
            col = X[:, j].astype(np.float64)
            col = col[np.isfinite(col)]
            if col.size == 0 or name in exclude:
                transforms.append(ColumnTransform(name=name, keep=False))
                continue
            use_log = log == "all" or (log == "auto" and _heavy_tailed(col))
            v = _slog(col) if use_log else col
            lo, hi = float(v.min()), float(v.max())
            transforms.append(ColumnTransform(name=name, log=use_log, min=lo, max=hi, keep=hi > lo))
        return cls(columns=transforms)

    def numeric_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For an all-numeric preprocessor: (kept input positions, log flags, min, max - min)
        of the kept columns, in output order, for vectorized transforms."""
        kept = [(j, c) for j, c in enumerate(self.columns) if c.keep]
        return (
            np.array([j for j, _ in kept], dtype=np.intp),
            np.array([c.log for _, c in kept], dtype=bool),
            np.array([c.min for _, c in kept], dtype=np.float64),
            np.array([c.max - c.min for _, c in kept], dtype=np.float64),
        )

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Raw rows [n, len(input_columns)] (float64, or object with text categoricals) → float32
        [n, n_outputs], every value in [0, 1]."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != len(self.columns):
            raise ValueError(f"X has shape {X.shape}, expected [n, {len(self.columns)}]")
        if all(c.kind == "numeric" for c in self.columns):
            # the same element-wise operations as the per-column loop below, in a handful
            # of numpy calls per batch instead of several per column
            keep, log, lo, span = self.numeric_arrays()
            v = np.nan_to_num(X[:, keep].astype(np.float64, copy=False), nan=-np.inf)  # NaN → minimum
            with np.errstate(invalid="ignore", over="ignore"):
                if log.any():
                    v[:, log] = _slog(v[:, log])
                v = (v - lo) / span
            return np.clip(np.nan_to_num(v, nan=0.0), 0.0, 1.0).astype(np.float32)
        parts: list[np.ndarray] = []
        for j, c in enumerate(self.columns):
            if c.kind == "categorical":
                vals = X[:, j].astype(str)
                index = {v: i for i, v in enumerate(c.vocab)}
                pos = np.fromiter((index.get(v, len(c.vocab)) for v in vals), dtype=np.int64, count=len(vals))
                onehot = np.zeros((len(vals), len(c.vocab) + 1), dtype=np.float32)
                onehot[np.arange(len(vals)), pos] = 1.0
                parts.append(onehot)
                continue
            if not c.keep:
                continue
            col = X[:, j].astype(np.float64)
            col = np.nan_to_num(col, nan=-np.inf)  # NaN → the minimum after clipping
            with np.errstate(invalid="ignore", over="ignore"):
                v = _slog(col) if c.log else col
                v = (v - c.min) / (c.max - c.min)
            parts.append(np.clip(np.nan_to_num(v, nan=0.0), 0.0, 1.0).astype(np.float32)[:, None])
        if not parts:
            return np.zeros((X.shape[0], 0), dtype=np.float32)
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (see :meth:`from_dict`)."""
        return {
            "format": FORMAT_VERSION,
            "input_columns": self.input_columns,
            "output_columns": self.output_columns,
            "columns": [c.to_dict() for c in self.columns],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        """Rebuild from :meth:`to_dict` output; raises ``ValueError`` on an unknown format."""
        if d.get("format") != FORMAT_VERSION:
            raise ValueError(f"preprocessing format {d.get('format')!r} is not {FORMAT_VERSION}")
        cols = []
        for c in d["columns"]:
            if c["kind"] == "categorical":
                cols.append(ColumnTransform(name=c["name"], kind="categorical", vocab=list(c["vocab"])))
            elif c["kind"] == "numeric":
                cols.append(
                    ColumnTransform(
                        name=c["name"],
                        log=bool(c["log"]),
                        min=float(c["min"]),
                        max=float(c["max"]),
                        keep=bool(c["keep"]),
                    )
                )
            else:
                raise ValueError(f"column {c.get('name')!r}: unknown kind {c['kind']!r}")
        return cls(columns=cols)
