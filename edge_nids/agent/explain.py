"""Why a flow alerted: the change of the attack score when one model input takes a benign value.

For a flagged flow with raw features ``x`` and attack score ``s``, :class:`Explainer`
builds one row per model input ``j`` whose value differs from its benign reference:
``x`` with ``x[j]`` replaced by ``ref[j]``, and scores all of them in one call of the
same :class:`~edge_nids.agent.classifier.Classifier` (so the same preprocessing,
quantization and interpreter as the verdict). ``effect[j] = s - score_j``: how much
the flow's own value of that column raised (positive) or lowered (negative) the
attack score (when no single substitution moves a saturated score, the effect of
the flow's value alone put into the reference row instead). The entries, largest
``|effect|`` first, are what
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

#: Effects below this (half an 8-bit output step) count as no change.
_STEP = 0.5 / 256

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

    def _substituted(self, X: np.ndarray, diffs: list[np.ndarray], into_reference: bool) -> np.ndarray:
        """Scores of the substituted rows of every flow, in one classifier call.

        ``into_reference`` False: the flow with one input set to its reference (drop-one);
        True: the reference row (the flow's other columns kept) with one input set to the
        flow's value, plus the bare reference row last per flow (add-one).
        """
        sizes = [len(d) + into_reference for d in diffs]
        batch = np.repeat(X, sizes, axis=0)
        r = 0
        for x, d, n in zip(X, diffs, sizes, strict=True):
            rows = np.arange(r, r + len(d))
            if into_reference:
                batch[r : r + n][:, self.index] = self.reference
                batch[rows, self.index[d]] = x[self.index[d]]
            else:
                batch[rows, self.index[d]] = self.reference[d]
            r += n
        return self.classifier.scores(batch).astype(np.float64)

    def explain_many(self, X: np.ndarray, scores: Sequence[float]) -> list[list[dict[str, Any]]]:
        """Several flows at once: every substituted row of every flow in one classifier call.

        Where no single substitution moves a saturated score (an int8 model at its top step
        with redundant evidence), a second call puts each of the flow's values alone into
        the benign reference row instead: the effect is then how far that value alone
        raises the score (same sign convention: positive = towards attack).
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"features have shape {X.shape}, expected [n, n_features]")
        diffs = self._rows(X)
        effects: list[np.ndarray] = []
        if sum(len(d) for d in diffs):
            out = self._substituted(X, diffs, False)
            r = 0
            for s, d in zip(scores, diffs, strict=True):
                effects.append(float(s) - out[r : r + len(d)])
                r += len(d)
        else:
            effects = [np.zeros(0) for _ in diffs]
        flat = [i for i, e in enumerate(effects) if len(e) and np.abs(e).max() < _STEP]
        if flat:
            out = self._substituted(X[flat], [diffs[i] for i in flat], True)
            r = 0
            for i in flat:
                n = len(diffs[i])
                effects[i] = out[r : r + n] - out[r + n]
                r += n + 1
        result = []
        for x, e, d in zip(X, effects, diffs, strict=True):
            order = np.argsort(-np.abs(e), kind="stable")[: self.top]
            entries = [self._entry(x, int(d[i]), float(e[i])) for i in order]
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
