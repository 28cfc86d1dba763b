"""Loaders for UNSW-NB15 and CIC-IDS2017 CSVs into one common labelled frame.

Every CIC-IDS2017 layout (MachineLearningCVE: 78 features + label; TrafficLabelling
and ``edge-nids extract`` output: 85 columns) is mapped onto the 78 columns of
:data:`edge_nids.flows.schema.CIC_IDS2017`, in the order the flow meter computes
them. Values are parsed strictly: ``Infinity``/``inf`` become ``inf``, empty and
``NaN`` cells become NaN and unparseable cells mark their row as corrupt; the
cleaning step (:mod:`edge_nids.training.clean`) removes and counts those rows.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from edge_nids.flows.schema import CIC_IDS2017, EDGE_EXTRA_HEADER, EDGE_FLOWS

__all__ = [
    "BENIGN_CLASSES",
    "DATASETS",
    "DataError",
    "LabelledData",
    "data_root",
    "default_files",
    "load_cic",
    "load_dataset",
    "load_unsw",
    "normalise_label",
]

log = logging.getLogger(__name__)

#: Dataset names accepted by ``edge-nids train --dataset``.
DATASETS: tuple[str, ...] = ("unsw-nb15", "cic-ids2017", "flows")

#: Class names that mean "not an attack" (after :func:`normalise_label`).
BENIGN_CLASSES: frozenset[str] = frozenset({"BENIGN", "Normal"})

UNSW_CATEGORICAL: tuple[str, ...] = ("proto", "service", "state")

_DEFAULT_FILES: dict[str, list[str]] = {
    "unsw-nb15": ["unsw-nb15/UNSW_NB15_testing-set.csv"],
    # The one random sample of all eight days. The day heads and the 10,000 BENIGN rows are
    # non-random benign selections: pass them with --data to add benign variety (and to
    # raise the benign share of the test split, which inflates accuracy).
    "cic-ids2017": ["cic-ids2017/MachineLearningCVE/stratified_sample_12001.csv"],
}


class DataError(ValueError):
    """A data file is missing, unreadable or not in a known layout."""


@dataclass
class LabelledData:
    """Rows of one dataset in a common form.

    ``features`` holds the model inputs in order (numeric float64 columns, plus
    string columns listed in ``categorical``); ``classes`` the normalised class
    name of each row; ``is_attack`` the binary label; ``corrupt`` rows with an
    unparseable value; ``partition`` "train"/"test" when official partitions
    were given (else None).
    """

    dataset: str
    features: pd.DataFrame
    classes: np.ndarray
    is_attack: np.ndarray
    corrupt: np.ndarray
    files: list[str]
    categorical: list[str] = field(default_factory=list)
    partition: np.ndarray | None = None
    schema: str | None = None
    notes: list[str] = field(default_factory=list)
    #: the file each row came from (CIC/flow CSVs), for grouped splits
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.features)


def data_root() -> Path | None:
    """The shared data folder: ``$EDGE_NIDS_DATA``, else ``../shared/datasets`` from the repo root."""
    env = os.environ.get("EDGE_NIDS_DATA")
    if env:
        return Path(env)
    candidate = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
    return candidate if candidate.is_dir() else None


def default_files(dataset: str) -> list[Path]:
    """Default data files of a dataset under :func:`data_root` (folders expand to their CSVs)."""
    if dataset not in _DEFAULT_FILES:
        raise DataError(f"dataset {dataset!r} has no default files; pass --data")
    root = data_root()
    if root is None:
        raise DataError("no data given: pass --data or set EDGE_NIDS_DATA (../shared/datasets not found)")
    return [root / rel for rel in _DEFAULT_FILES[dataset]]


def expand_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given; a folder stands for the ``*.csv`` files in it, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.csv"))
            if not found:
                raise DataError(f"{p}: folder holds no .csv files")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file")
    return out


_DASHES = "\u2013\u2014\u0096\ufffd-"
_WEB_ATTACK = re.compile(rf"^Web Attack\s*(?:[{_DASHES}]|â€“)?\s*", re.IGNORECASE)


def normalise_label(text: str) -> str:
    """Canonical CIC-IDS2017/UNSW-NB15 class name: trimmed, en dash restored, BENIGN upper case."""
    t = " ".join(str(text).strip().split())
    if t.upper() == "BENIGN":
        return "BENIGN"
    m = _WEB_ATTACK.match(t)
    if m:
        return "Web Attack – " + t[m.end() :]
    return t


def _read_csv(path: Path) -> pd.DataFrame:
    """Numbers parsed by pandas (``inf``/``Infinity`` included, empty/``NaN`` cells as NaN);
    BOM stripped; bytes that are not UTF-8 become U+FFFD."""
    try:
        return pd.read_csv(path, encoding="utf-8-sig", encoding_errors="replace", low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError, OSError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from None


_INF = {"inf": np.inf, "+inf": np.inf, "infinity": np.inf, "+infinity": np.inf}
_NINF = {"-inf": -np.inf, "-infinity": -np.inf}


def parse_numeric(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Columns to float64 (``inf`` and NaN kept) and a per-row mask of unparseable cells."""
    out = {}
    corrupt = np.zeros(len(frame), dtype=bool)
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_numeric_dtype(s.dtype):
            out[col] = s.to_numpy(dtype="float64", na_value=np.nan)
            continue
        text = s.astype(object).where(s.notna(), "").astype(str).str.strip()
        low = text.str.lower()
        vals = pd.to_numeric(text.where(text != "", None), errors="coerce").to_numpy(
            dtype="float64", copy=True
        )
        inf = low.isin(set(_INF)).to_numpy()
        ninf = low.isin(set(_NINF)).to_numpy()
        corrupt |= np.isnan(vals) & (text != "").to_numpy() & ~inf & ~ninf
        vals[inf] = np.inf
        vals[ninf] = -np.inf
        out[col] = vals
    return pd.DataFrame(out, index=frame.index), corrupt


def _label_column(frame: pd.DataFrame, path: Path) -> str:
    for col in frame.columns:
        if col.strip().lower() == "label":
            return col
    raise DataError(f"{path}: no Label column")


def _cic_features(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Select and rename the schema columns from a 79-, 84- or 85-column CIC CSV (the 78 of
    ``CIC_IDS2017``) or a ``corrected`` extract CSV (the 94 of ``EDGE_FLOWS``)."""
    cols = list(raw.columns)
    clean = [re.sub(r"\.\d+$", "", c).strip() for c in cols]
    n = len(cols)
    n_edge = len(EDGE_EXTRA_HEADER)
    if n == 85 + n_edge and clean[0] == "Flow ID" and clean[84 : 84 + n_edge] == EDGE_EXTRA_HEADER:
        out = _cic_features(raw.iloc[:, [*range(84), 84 + n_edge]], path)
        extra = raw.iloc[:, 84 : 84 + n_edge].copy()
        extra.columns = EDGE_EXTRA_HEADER
        return pd.concat([out, extra], axis=1)
    if n == 79:  # MachineLearningCVE: 78 features + Label
        picks = list(range(78))
    elif n in (84, 85) and clean[0] == "Flow ID":  # TrafficLabelling / extract (with or without Label)
        picks = [4, *range(7, 84)]
    else:
        raise DataError(f"{path}: {n} columns; expected a CIC-IDS2017 CSV with 79 (MachineLearningCVE) or 85")
    expected = [h.strip() for h in CIC_IDS2017.headers]
    got = [clean[i] for i in picks]
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        if e != g:
            raise DataError(f"{path}: column {picks[i] + 1} is {g!r}, expected {e!r}")
    out = raw.iloc[:, picks].copy()
    out.columns = CIC_IDS2017.names
    return out


def load_cic(paths: Sequence[str | Path], dataset: str = "cic-ids2017") -> LabelledData:
    """CIC-IDS2017 or ``edge-nids extract`` CSVs, merged, as the 78 schema columns."""
    files = expand_paths(paths)
    feats, classes, corrupt, groups = [], [], [], []
    for path in files:
        raw = _read_csv(path)
        x, bad = parse_numeric(_cic_features(raw, path))
        if feats and len(x.columns) != len(feats[0].columns):
            raise DataError(
                f"{path}: {len(x.columns)} feature columns, but {files[0]} has {len(feats[0].columns)}"
            )
        groups.append(np.full(len(x), str(path), dtype=object))
        if len(raw.columns) == 84:
            raise DataError(f"{path}: no Label column; label the flows before training")
        labels = raw[_label_column(raw, path)].fillna("").map(normalise_label).to_numpy(dtype=object)
        feats.append(x)
        classes.append(labels)
        corrupt.append(bad)
        log.info("%s: %d rows", path, len(x))
    cls = np.concatenate(classes).astype(str)
    unlabelled = np.isin(cls, ["", "NeedManualLabel"])
    if unlabelled.all():
        raise DataError(f"{files[0]}: rows carry no class labels; label the flows before training")
    return LabelledData(
        dataset=dataset,
        features=pd.concat(feats, ignore_index=True),
        classes=cls,
        is_attack=~np.isin(cls, list(BENIGN_CLASSES)),
        corrupt=np.concatenate(corrupt) | unlabelled,
        files=[str(f) for f in files],
        schema=EDGE_FLOWS.name if len(feats[0].columns) == len(EDGE_FLOWS) else CIC_IDS2017.name,
        groups=np.concatenate(groups),
    )


def load_unsw(paths: Sequence[str | Path]) -> LabelledData:
    """UNSW-NB15 partition CSVs; official partitions when a training and a testing file are given."""
    files = expand_paths(paths)
    feats, classes, attack, corrupt, parts = [], [], [], [], []
    for path in files:
        raw = _read_csv(path)
        raw.columns = [c.strip() for c in raw.columns]
        missing = {"attack_cat", "label", *UNSW_CATEGORICAL} - set(raw.columns)
        if missing:
            raise DataError(f"{path}: not a UNSW-NB15 partition CSV (missing {sorted(missing)})")
        num_cols = [c for c in raw.columns if c not in ("id", "attack_cat", "label", *UNSW_CATEGORICAL)]
        x, bad = parse_numeric(raw[num_cols])
        for c in UNSW_CATEGORICAL:
            x[c] = raw[c].fillna("").astype(str).str.strip().str.lower()
        x = x[[c for c in raw.columns if c in x.columns]]
        cat = raw["attack_cat"].fillna("").map(normalise_label).replace({"": "Normal"}).to_numpy(dtype=object)
        lab = pd.to_numeric(raw["label"], errors="coerce").to_numpy()
        bad |= ~np.isin(lab, [0, 1])
        feats.append(x)
        classes.append(cat)
        attack.append(lab == 1)
        corrupt.append(bad)
        name = path.name.lower()
        parts.append(np.full(len(x), "train" if "train" in name else "test" if "test" in name else ""))
    part = np.concatenate(parts)
    official = {"train", "test"} <= set(part) and "" not in set(part)
    notes = []
    if official:
        notes.append("official UNSW-NB15 training/testing partitions")
    else:
        notes.append(
            "stratified random split of "
            + ", ".join(Path(f).name for f in files)
            + " (not the official partitions)"
        )
    return LabelledData(
        dataset="unsw-nb15",
        features=pd.concat(feats, ignore_index=True),
        classes=np.concatenate(classes).astype(str),
        is_attack=np.concatenate(attack),
        corrupt=np.concatenate(corrupt),
        files=[str(f) for f in files],
        categorical=list(UNSW_CATEGORICAL),
        partition=part if official else None,
        notes=notes,
    )


def load_dataset(dataset: str, paths: Sequence[str | Path] | None = None) -> LabelledData:
    """Load ``dataset`` from ``paths`` (default: its files under :func:`data_root`)."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if not paths:
        paths = default_files(dataset)
    if dataset == "unsw-nb15":
        return load_unsw(paths)
    return load_cic(paths, dataset=dataset)
