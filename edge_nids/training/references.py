"""Benign reference values for explanations: the median of each input column over benign rows.

``edge-nids references BUNDLE --data CSV ...`` writes ``BUNDLE/references.json``, read by
:class:`edge_nids.agent.explain.Explainer`: each of the bundle's numeric input columns
with the median of its benign rows in the given flow CSVs (non-finite values ignored).
Use the benign rows the bundle was trained on, or traffic like them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_nids.agent.explain import REFERENCES_FILE
from edge_nids.bundle import load_bundle

__all__ = ["benign_medians", "write_references"]

log = logging.getLogger(__name__)


def benign_medians(bundle: Any, paths: Sequence[str | Path]) -> tuple[dict[str, float], int]:
    """(column → median over the benign rows of ``paths``, benign rows used) for the bundle's inputs."""
    from edge_nids.training.datasets import load_cic

    d = load_cic(list(paths), "flows")
    rows = d.features[(~d.is_attack) & (~d.corrupt)]
    if rows.empty:
        raise ValueError(f"no benign rows in {len(d.files)} file(s)")
    out: dict[str, float] = {}
    for c in bundle.preprocessor.columns:
        if c.kind != "numeric":
            continue
        if c.name not in rows.columns:
            raise ValueError(f"input column {c.name!r} is not in the data")
        v = rows[c.name].to_numpy(dtype=np.float64)
        v = v[np.isfinite(v)]
        out[c.name] = float(np.median(v)) if v.size else 0.0
    return out, len(rows)


def write_references(bundle_dir: str | Path, paths: Sequence[str | Path], source: str) -> Path:
    """Write ``references.json`` into the bundle directory; returns its path."""
    bundle = load_bundle(bundle_dir, require_computable=False)
    medians, n = benign_medians(bundle, paths)
    out = Path(bundle.path) / REFERENCES_FILE
    doc = {
        "format": 1,
        "bundle": bundle.name,
        "source": source,
        "benign_rows": n,
        "median": medians,
    }
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    log.info("%s: medians of %d benign rows", out, n)
    return out
