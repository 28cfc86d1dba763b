"""Why a flow alerted: the change of the attack score when one model input takes a benign value.

For a flagged flow with raw features ``x`` and attack score ``s``, :class:`Explainer`
builds one row per model input ``j`` whose value differs from its benign reference:
``x`` with ``x[j]`` replaced by ``ref[j]``, and scores all of them in one call of the
same :class:`~edge_nids.agent.classifier.Classifier` (so the same preprocessing,
quantization and interpreter as the verdict). ``effect[j] = s - score_j``: how much
the flow's own value of that column raised (positive) or lowered (negative) the
attack score. The entries, largest ``|effect|`` first, are what
``alert.context.explanation`` holds:
``{"feature": <schema column>, "value": <raw value>, "effect": <signed change>}``.

Benign references: ``references.json`` in the bundle directory (the median of each
column over benign training rows, written by ``edge-nids references``); a bundle
without one still works, with each column's training minimum (undone from the
preprocessor's signed log), which is the typical benign value of the count-like
columns. Cost per explanation: ``bench/bench_explain.py``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_nids.flows.schema import get_schema

__all__ = ["MIN_ENTRIES", "REFERENCES_FILE", "Explainer", "ReferenceError", "preprocessor_minimum"]

log = logging.getLogger(__name__)

#: File in a bundle directory holding benign reference values.
REFERENCES_FILE = "references.json"

#: Fewest entries in an explanation (padded with zero-effect columns when fewer inputs differ).
MIN_ENTRIES = 3


class ReferenceError(ValueError):
    """A bundle's ``references.json`` is unreadable or does not match its input columns."""


def preprocessor_minimum(bundle: Any) -> dict[str, float]:
    """Each numeric input column's training minimum in raw units (the signed log undone)."""
    out: dict[str, float] = {}
    for c in bundle.preprocessor.columns:
        if c.kind != "numeric":
            continue
        m = float(c.min)
        out[c.name] = math.copysign(math.expm1(abs(m)), m) if c.log else m
    return out


def _load_references(bundle: Any) -> tuple[dict[str, float], str]:
    path = Path(bundle.path) / REFERENCES_FILE
    if not path.is_file():
        return preprocessor_minimum(bundle), "preprocessor minimum"
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        values = {str(k): float(v) for k, v in d["median"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReferenceError(f"{path}: not a references file ({exc})") from None
    missing = [c for c in preprocessor_minimum(bundle) if c not in values]
    if missing:
        raise ReferenceError(f"{path}: no reference for input columns {', '.join(missing[:5])}")
    return values, str(d.get("source", path.name))


def _json_value(v: float) -> float | int | None:
    """A raw feature value as JSON: integers as int, non-finite as null (EVE must stay valid JSON)."""
    if not math.isfinite(v):
        return None
    return int(v) if v == int(v) and abs(v) < 2**53 else round(v, 6)


class Explainer:
    """Per-input effects on the attack score for flagged flows, through the model's own classifier.

    ``classifier``: the :class:`~edge_nids.agent.classifier.Classifier` that scored the flow.
    ``references``: raw benign value per input column name (default: from the bundle).
    ``top``: entries kept per explanation (at least :data:`MIN_ENTRIES`).
    """

    def __init__(self, classifier: Any, references: dict[str, float] | None = None, top: int = 5) -> None:
        self.classifier = classifier
        bundle = classifier.bundle
        self.source = "given"
        if references is None:
            references, self.source = _load_references(bundle)
        self.top = max(MIN_ENTRIES, int(top))
        cols = bundle.preprocessor.columns
        pos = [j for j, c in enumerate(cols) if c.kind == "numeric" and c.keep]
        self.names = [cols[j].name for j in pos]
        try:  # the raw row is in schema order, as the Classifier reads it
            schema = get_schema(bundle.schema_name)
            raw = [schema.index(n) for n in self.names]
        except KeyError:
            raw = pos
        #: positions in the raw feature row of the model's inputs
        self.index = np.array(raw, dtype=np.intp)
        self.reference = np.array([references[n] for n in self.names], dtype=np.float64)
        self._scale: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if all(c.kind == "numeric" for c in cols):
            _, use_log, lo, span = bundle.preprocessor.numeric_arrays()
            self._scale = (use_log, lo, span)
            self._ref_scaled = self._scaled(self.reference[None, :])[0]

    @property
    def n_inputs(self) -> int:
        """Model inputs an explanation may name (rows per flow in the worst case)."""
        return len(self.index)

    def _scaled(self, V: np.ndarray) -> np.ndarray:
        """Raw input values [n, n_inputs] → the model's [0, 1] inputs (signed log, min-max, clip)."""
        assert self._scale is not None
        use_log, lo, span = self._scale
        V = np.nan_to_num(np.array(V, dtype=np.float64), nan=-np.inf)
        V[:, use_log] = np.sign(V[:, use_log]) * np.log1p(np.abs(V[:, use_log]))
        with np.errstate(invalid="ignore"):
            return np.clip(np.nan_to_num((V - lo) / span, nan=0.0), 0.0, 1.0)

    def _rows(self, X: np.ndarray) -> list[np.ndarray]:
        """Per flow, the positions (into :attr:`index`) of the inputs the model sees differ from the
        reference: more than half an 8-bit step apart after scaling (an int8 model cannot tell
        closer values apart, and a float model barely)."""
        V = X[:, self.index]
        if self._scale is None:
            same = (V == self.reference) | (np.isnan(V) & np.isnan(self.reference))
        else:
            same = np.abs(self._scaled(V) - self._ref_scaled) < 0.5 / 255
        return [np.flatnonzero(~row) for row in same]

    def explain(self, x: Sequence[float] | np.ndarray, score: float) -> list[dict[str, Any]]:
        """One flow's raw features (schema order) and its attack score → explanation entries."""
        return self.explain_many(np.asarray(x, dtype=np.float64)[None, :], [score])[0]

    def explain_many(self, X: np.ndarray, scores: Sequence[float]) -> list[list[dict[str, Any]]]:
        """Several flows at once: every substituted row of every flow in one classifier call."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"features have shape {X.shape}, expected [n, n_features]")
        diffs = self._rows(X)
        total = sum(len(d) for d in diffs)
        out_scores = np.empty(0, np.float32)
        if total:
            batch = np.repeat(X, [len(d) for d in diffs], axis=0)
            r = 0
            for d in diffs:
                cols = self.index[d]
                batch[np.arange(r, r + len(d)), cols] = self.reference[d]
                r += len(d)
            out_scores = self.classifier.scores(batch)
        result = []
        r = 0
        for x, s, d in zip(X, scores, diffs, strict=True):
            effects = float(s) - out_scores[r : r + len(d)].astype(np.float64)
            r += len(d)
            order = np.argsort(-np.abs(effects), kind="stable")[: self.top]
            entries = [self._entry(x, int(d[i]), float(effects[i])) for i in order]
            if len(entries) < MIN_ENTRIES:  # too few differing inputs: name unchanged ones, effect 0
                same = [i for i in range(self.n_inputs) if i not in set(d.tolist())]
                entries += [self._entry(x, i, 0.0) for i in same[: MIN_ENTRIES - len(entries)]]
            result.append(entries)
        return result

    def _entry(self, x: np.ndarray, i: int, effect: float) -> dict[str, Any]:
        return {
            "feature": self.names[i],
            "value": _json_value(float(x[self.index[i]])),
            "effect": round(effect, 6),
        }
