"""The attack-family stage: fit a shallow decision tree on labelled flows, export it, measure it.

The detector says *whether* a flow is an attack; this second stage says *which kind*
(:data:`edge_nids.agent.families.FAMILIES`): scan, SYN flood, UDP flood, HTTP flood,
slow DoS (slowloris), brute force, or ``other``. It reads the 92 ``EDGE_FLOWS``
values of a flow, so it works behind any detector bundle, and is shipped as the
node arrays of a few shallow scikit-learn trees in a small JSON file that the agent
evaluates with numpy alone (:class:`edge_nids.agent.families.FamilyModel`).

Class → family (:func:`family_of`): the lab classes map one to one; in the public
attack captures ``BruteForce`` (SSH, HTTP login and MQTT CONNECT guessing) is
brute force, ``DoS slowloris`` (slowloris and SlowITe on MQTT: many connections
held open) is slow DoS, and ``DoS Flood`` is a SYN flood for the spoofed SYN
capture (``sop_syn_flood``) but ``other`` for the MQTT publish floods, which are a
few long connections pushing large messages, not a flood of requests or packets.
Web attacks, exploits and benign flows are ``other``: a benign flow that the
detector flags by mistake should not be named a scan.

Measured by :func:`evaluate` (``edge-nids families``): trained on the lab training
runs and the public attack captures, tested on the lab test run; and on each
public attack capture by a model trained without that capture.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_nids.agent.families import FAMILIES, FAMILY_INFO, FamilyModel
from edge_nids.flows.schema import EDGE_FLOWS

__all__ = [
    "EXCLUDED_FEATURES",
    "FamilyData",
    "FamilyReport",
    "evaluate",
    "export_model",
    "family_of",
    "fit_trees",
    "load_family_data",
    "markdown_report",
    "run_families",
]

log = logging.getLogger(__name__)

#: Columns the tree may not split on: the destination port names a service of the
#: training networks (SSH on 22 for brute force), not the shape of the attack.
EXCLUDED_FEATURES: tuple[str, ...] = ("Destination Port",)

_CLASS_FAMILY: dict[str, str] = {
    "PortScan": "scan",
    "DoS SYN Flood": "syn_flood",
    "DoS UDP Flood": "udp_flood",
    "DoS HTTP Flood": "http_flood",
    "DoS slowloris": "slow_dos",
    "SSH-BruteForce": "brute_force",
    "BruteForce": "brute_force",
}

#: ``DoS Flood`` captures of attacks_public, by file stem (see the module docstring).
_FLOOD_CAPTURES: dict[str, str] = {"sop_syn_flood": "syn_flood"}


def family_of(cls: str, capture: str = "") -> str:
    """The family of a flow labelled ``cls`` in the capture named ``capture`` (file stem)."""
    if cls in _CLASS_FAMILY:
        return _CLASS_FAMILY[cls]
    if cls == "DoS Flood":
        return _FLOOD_CAPTURES.get(capture, "other")
    return "other"


@dataclass
class FamilyData:
    """Rows for the family stage: EDGE_FLOWS values, family, whether an attack, capture name."""

    X: np.ndarray
    family: np.ndarray
    attack: np.ndarray
    capture: np.ndarray

    def subset(self, mask: np.ndarray) -> FamilyData:
        return FamilyData(self.X[mask], self.family[mask], self.attack[mask], self.capture[mask])

    def __len__(self) -> int:
        return len(self.X)


def load_family_data(paths: Sequence[str | Path], prefix: str = "") -> FamilyData:
    """Flow CSVs (corrected profile, 98 columns) → :class:`FamilyData`; corrupt rows dropped.

    ``prefix`` is put before each capture name (``lab/``), so captures of different
    sources never share a name.
    """
    from edge_nids.training.datasets import load_cic

    d = load_cic(list(paths), "flows")
    if d.schema != EDGE_FLOWS.name:
        raise ValueError(f"{d.files[0]}: not EDGE_FLOWS flows (extract them with --profile corrected)")
    keep = ~d.corrupt
    assert d.groups is not None
    stems = np.array([Path(g).stem for g in d.groups], dtype=object)[keep]
    cls = d.classes[keep]
    fam = np.array([family_of(c, s) for c, s in zip(cls, stems, strict=True)], dtype=object)
    caps = np.array([prefix + s for s in stems], dtype=object)
    X = d.features.to_numpy(dtype=np.float64)[keep]
    return FamilyData(X, fam, d.is_attack[keep], caps)


def _features(X: np.ndarray) -> np.ndarray:
    """Non-finite values as the device sees them in the tree (NaN → -1, ±inf → ±1e18)."""
    X = np.nan_to_num(np.asarray(X, dtype=np.float64), nan=-1.0, posinf=1e18, neginf=-1e18)
    for name in EXCLUDED_FEATURES:
        X[:, EDGE_FLOWS.index(name)] = 0.0
    return X


def fit_trees(
    data: FamilyData,
    n_trees: int = 15,
    max_depth: int = 8,
    min_leaf: int = 5,
    max_features: float = 0.3,
    benign_weight: float = 0.3,
) -> Any:
    """Class-balanced extremely randomized trees over families (benign rows weigh ``benign_weight``).

    Chosen over one deeper tree by the leave-one-capture-out numbers: one tree (depth
    6 to 10) confused slow DoS with brute force on unseen captures and changed its
    mind between depths; 15 randomized trees of depth 8 held on the lab test run.
    """
    from sklearn.ensemble import ExtraTreesClassifier

    y = np.array([FAMILIES.index(f) for f in data.family])
    counts = np.bincount(y, minlength=len(FAMILIES)).astype(np.float64)
    w = len(y) / (np.count_nonzero(counts) * np.maximum(counts, 1.0))[y]
    w = np.where(data.attack, w, w * benign_weight)
    forest = ExtraTreesClassifier(
        n_estimators=n_trees,
        max_depth=max_depth,
        min_samples_leaf=min_leaf,
        max_features=max_features,
        random_state=0,
        n_jobs=1,
    )
    forest.fit(_features(data.X), y, sample_weight=w)
    return forest


def _export_tree(tree: Any, classes: np.ndarray) -> dict[str, Any]:
    t = tree.tree_
    value = t.value[:, 0, :]
    probs = value / np.maximum(value.sum(axis=1, keepdims=True), 1e-12)
    full = np.zeros((len(probs), len(FAMILIES)))
    full[:, [int(c) for c in classes]] = probs
    leaf = t.feature < 0
    return {
        "feature": [int(f) if f >= 0 else -1 for f in t.feature],
        # leaves: threshold 0 (unused); splits: the float64 midpoints scikit-learn compares with
        "threshold": [0.0 if lf else float(x) for lf, x in zip(leaf, t.threshold, strict=True)],
        "left": [int(x) for x in t.children_left],
        "right": [int(x) for x in t.children_right],
        "probability": [
            [round(float(p), 3) for p in row] if lf else [0.0] * len(FAMILIES)
            for lf, row in zip(leaf, full, strict=True)
        ],
    }


def export_model(forest: Any, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fitted trees → the JSON form :class:`~edge_nids.agent.families.FamilyModel` reads."""
    return {
        "format": 1,
        "schema": {"name": EDGE_FLOWS.name, "fingerprint": EDGE_FLOWS.fingerprint},
        "families": list(FAMILIES),
        "trees": [_export_tree(t, forest.classes_) for t in forest.estimators_],
        "meta": dict(meta or {}),
    }


@dataclass
class FamilyReport:
    """Confusion counts per evaluation: true family → predicted family → flows."""

    name: str
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    benign_named: dict[str, int] = field(default_factory=dict)
    benign_total: int = 0

    def add(self, truth: Sequence[str], pred: Sequence[str], attack: Sequence[bool]) -> None:
        for t, p, a in zip(truth, pred, attack, strict=True):
            if a:
                row = self.confusion.setdefault(t, {})
                row[p] = row.get(p, 0) + 1
            else:
                self.benign_total += 1
                self.benign_named[p] = self.benign_named.get(p, 0) + 1

    def rows(self) -> list[tuple[str, int, float | None, float | None]]:
        """(family, attack flows, precision, recall) for each family seen or predicted."""
        out = []
        for fam in FAMILIES:
            support = sum(self.confusion.get(fam, {}).values())
            predicted = sum(r.get(fam, 0) for r in self.confusion.values())
            hit = self.confusion.get(fam, {}).get(fam, 0)
            if not support and not predicted:
                continue
            out.append(
                (fam, support, hit / predicted if predicted else None, hit / support if support else None)
            )
        return out


def _predict(model: FamilyModel, X: np.ndarray) -> list[str]:
    return [FAMILIES[i] for i in model.predict(X)]


def evaluate(
    train: FamilyData, lab_test: FamilyData, public: FamilyData, **fit_args: Any
) -> tuple[dict[str, Any], list[FamilyReport]]:
    """Fit on ``train`` + ``public``, test on ``lab_test``; leave-one-capture-out on ``public``.

    Returns the exported model (fitted on everything but the lab test run) and the reports.
    """
    both = _concat(train, public)
    forest = fit_trees(both, **fit_args)
    exported = export_model(forest, {"trained_on": sorted(set(both.capture)), "fit": fit_args})
    model = FamilyModel.from_dict(exported)
    lab = FamilyReport("lab test run (trained on the lab training runs + public attacks)")
    lab.add(lab_test.family, _predict(model, lab_test.X), lab_test.attack)
    held = FamilyReport("public attack captures, each held out of training")
    for cap in sorted(set(public.capture)):
        out = public.capture == cap
        m = FamilyModel.from_dict(export_model(fit_trees(_concat(train, public.subset(~out)), **fit_args)))
        part = public.subset(out)
        held.add(part.family, _predict(m, part.X), part.attack)
    return exported, [lab, held]


def _concat(a: FamilyData, b: FamilyData) -> FamilyData:
    return FamilyData(
        np.concatenate([a.X, b.X]),
        np.concatenate([a.family, b.family]),
        np.concatenate([a.attack, b.attack]),
        np.concatenate([a.capture, b.capture]),
    )


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def markdown_report(reports: Sequence[FamilyReport], command: str, model: dict[str, Any]) -> str:
    """The docs/families.md text: what the stage is, how it was measured, the tables."""
    n_nodes = sum(len(t["feature"]) for t in model["trees"])
    used = sorted({EDGE_FLOWS.names[f] for t in model["trees"] for f in t["feature"] if f >= 0})
    fit = model["meta"].get("fit", {})
    lines = [
        "# Attack families",
        "",
        "Every alert names the kind of attack: a second stage after the detector, a few shallow",
        "decision trees over the flow's 92 `EDGE_FLOWS` values (the context counts of what the",
        "originator and the service did before the flow carry most of it), shipped as",
        "`edge_nids/agent/data/families.json` and evaluated with numpy on the device",
        "(`edge_nids/agent/families.py`). How classes map to families and why: the docstring",
        "of `edge_nids/training/families.py`.",
        "",
        "| family | `alert.signature` | `alert.category` | `signature_id` |",
        "|---|---|---|---|",
    ]
    for fam in FAMILIES:
        info = FAMILY_INFO[fam]
        lines.append(f"| {fam} | {info.signature} | {info.category} | {info.signature_id} |")
    lines += [
        "",
        f"The shipped model: {len(model['trees'])} extremely randomized trees of depth "
        f"{fit.get('max_depth', 8)}, {n_nodes} nodes in all, splitting on {len(used)} columns: "
        f"{', '.join(used)}.",
        "",
        f"Regenerate this page with `{command}`.",
        "",
    ]
    for r in reports:
        lines += [
            f"## {r.name}",
            "",
            "Attack flows only (precision among attack flows named that family).",
            "",
        ]
        lines += ["| family | flows | precision | recall |", "|---|---:|---:|---:|"]
        for fam, n, p, rc in r.rows():
            lines.append(f"| {fam} | {n} | {_pct(p)} | {_pct(rc)} |")
        lines.append("")
        lines.append("Confusion (rows: true family, columns: predicted):")
        lines.append("")
        lines.append("| true \\ predicted | " + " | ".join(FAMILIES) + " |")
        lines.append("|---|" + "---:|" * len(FAMILIES))
        for fam in FAMILIES:
            row = r.confusion.get(fam)
            if row:
                lines.append(f"| {fam} | " + " | ".join(str(row.get(p, 0)) for p in FAMILIES) + " |")
        if r.benign_total:
            named = {k: v for k, v in r.benign_named.items() if k != "other"}
            share = sum(named.values()) / r.benign_total
            lines += [
                "",
                f"Benign flows: {r.benign_total}, of which {100 * share:.1f} % would be named an attack "
                f"family if the detector flagged them ({json.dumps(dict(sorted(named.items())))}).",
            ]
        lines.append("")
    return "\n".join(lines)


def _csvs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.csv"))


def run_families(
    corpus: Path, lab_test: Path | None, out: Path | None, write: Path | None, command: str
) -> list[FamilyReport]:
    """``edge-nids families``: fit on ``corpus``, measure, write the model JSON and the docs page.

    ``corpus`` holds ``lab/train*/*.csv`` (lab training runs) and ``attacks_public/*.csv``;
    ``lab_test`` the lab test run's CSVs (default ``corpus/lab/test``), never trained on.
    """
    train_files = [p for run in sorted((corpus / "lab").glob("train*")) for p in _csvs(run)]
    public_files = _csvs(corpus / "attacks_public")
    test_files = _csvs(lab_test or corpus / "lab" / "test")
    for what, files in (
        ("lab training", train_files),
        ("attacks_public", public_files),
        ("lab test", test_files),
    ):
        if not files:
            raise ValueError(f"no {what} flow CSVs under {corpus if what != 'lab test' else lab_test}")
    train = load_family_data(train_files, "lab/")
    public = load_family_data(public_files, "attacks_public/")
    test = load_family_data(test_files, "lab-test/")
    log.info("family data: %d lab training, %d public, %d lab test flows", len(train), len(public), len(test))
    model, reports = evaluate(train, test, public)
    if out is not None:
        out.write_text(json.dumps(model, separators=(",", ":")) + "\n", encoding="utf-8")
    if write is not None:
        write.write_text(markdown_report(reports, command, model), encoding="utf-8")
    return reports
