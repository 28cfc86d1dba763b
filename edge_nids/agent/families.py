"""Attack family of a flagged flow: a shipped decision tree over ``EDGE_FLOWS``, in numpy only.

The detector bundle says whether a flow is an attack; :class:`FamilyModel` says which
kind (:data:`FAMILIES`), from the flow's ``EDGE_FLOWS`` values
(``Flow.edge_features()``), whatever the bundle reads. The tree is fitted on a
workstation by :mod:`edge_nids.training.families` (``edge-nids families``) and
shipped as ``data/families.json``: node arrays (feature, threshold, children,
class probabilities), walked for a whole batch at once, one numpy step per level.
Per-family precision and recall: ``docs/families.md``.

Each family has the Suricata-style ``alert`` fields it is reported with
(:data:`FAMILY_INFO`): ``signature`` text, ``category`` (the classtype
description of Suricata's ``classification.config``) and its own ``signature_id``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_nids.flows.schema import EDGE_FLOWS

__all__ = [
    "DEFAULT_FAMILIES_PATH",
    "FAMILIES",
    "FAMILY_INFO",
    "FAMILY_PROTOCOLS",
    "FamilyError",
    "FamilyInfo",
    "FamilyModel",
    "load_family_model",
]

#: The families, in the order of the tree's class probabilities.
FAMILIES: tuple[str, ...] = (
    "scan",
    "syn_flood",
    "udp_flood",
    "http_flood",
    "slow_dos",
    "brute_force",
    "other",
)

#: Families that name a transport: a flow of another protocol is not one of them whatever the
#: trees say. The trees never saw an ICMPv6 flood and named THC-IPv6's neighbour-discovery
#: floods ``udp_flood``; over the ~150,000 flows of the evaluation corpus (lab, public benign
#: and attack captures) the trees put 2 flows in a family of another protocol (ICMPv6 named
#: ``udp_flood``).
FAMILY_PROTOCOLS: dict[str, int] = {"syn_flood": 6, "udp_flood": 17, "http_flood": 6}
_PROTOCOL = EDGE_FLOWS.index("Protocol")

#: The tree shipped with the agent.
DEFAULT_FAMILIES_PATH = Path(__file__).resolve().parent / "data" / "families.json"

_SCAN = "Detection of a Network Scan"
_DOS = "Attempted Denial of Service"
_BRUTE = "Attempted User Privilege Gain"
_MISC = "Misc activity"


@dataclass(frozen=True)
class FamilyInfo:
    """How alerts of one family are reported: EVE ``alert.signature``, ``category``, ``signature_id``."""

    signature: str
    category: str
    signature_id: int


FAMILY_INFO: dict[str, FamilyInfo] = {
    "scan": FamilyInfo("edge-nids: port scan", _SCAN, 9_000_101),
    "syn_flood": FamilyInfo("edge-nids: SYN flood", _DOS, 9_000_102),
    "udp_flood": FamilyInfo("edge-nids: UDP flood", _DOS, 9_000_103),
    "http_flood": FamilyInfo("edge-nids: HTTP flood", _DOS, 9_000_104),
    "slow_dos": FamilyInfo("edge-nids: slow DoS (slowloris)", _DOS, 9_000_105),
    "brute_force": FamilyInfo("edge-nids: brute force", _BRUTE, 9_000_106),
    "other": FamilyInfo("edge-nids: anomalous flow", _MISC, 9_000_107),
}


class FamilyError(ValueError):
    """A family model file is missing, malformed or made for another feature schema."""


class FamilyModel:
    """Decision trees over ``EDGE_FLOWS`` rows → family index (into :data:`FAMILIES`) per row.

    The trees' node arrays are concatenated (children as absolute node numbers, leaves
    pointing at themselves), so a batch walks every tree at once: ``depth`` numpy steps
    on an ``[n, trees]`` array of current nodes, then the leaves' probabilities averaged.
    """

    def __init__(self, trees: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> None:
        feats, thrs, lefts, rights, probs, roots = [], [], [], [], [], []
        offset = 0
        for t in trees:
            f = np.asarray(t["feature"], dtype=np.intp)
            n = len(f)
            leaf = f < 0
            own = np.arange(offset, offset + n)
            feats.append(np.where(leaf, 0, f))
            thrs.append(np.asarray(t["threshold"], dtype=np.float64))
            lefts.append(np.where(leaf, own, np.asarray(t["left"], dtype=np.intp) + offset))
            rights.append(np.where(leaf, own, np.asarray(t["right"], dtype=np.intp) + offset))
            probs.append(np.asarray(t["probability"], dtype=np.float64))
            roots.append(offset)
            offset += n
        self.feature = np.concatenate(feats)
        self.threshold = np.concatenate(thrs)
        self.left = np.concatenate(lefts)
        self.right = np.concatenate(rights)
        self.probability = np.concatenate(probs)
        self.roots = np.array(roots, dtype=np.intp)
        self.meta = meta or {}
        self.depth = max(_depth(t) for t in trees)
        # the walk reads only the columns some node tests (31 of 94), as one flat array, and
        # finds a node's child at child[2 * node + (x > threshold)]: one gather per step
        # instead of two and a where (bench: 256 rows 650 -> 370 µs with the sum below)
        # sorted(set()), not np.unique: that imports numpy.ma, 8-10 ms of CPU at every start
        self._columns = np.array(sorted(set(self.feature.tolist())), dtype=np.intp)
        self._column_pos = np.searchsorted(self._columns, self.feature)
        self._child = np.stack([self.left, self.right], axis=1).ravel()

    @property
    def n_nodes(self) -> int:
        return len(self.feature)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FamilyModel:
        """From the JSON form written by ``edge_nids.training.families.export_model``."""
        try:
            if d["format"] != 1:
                raise FamilyError(f"family model format {d['format']!r} is not 1")
            schema = d["schema"]
            if schema["name"] != EDGE_FLOWS.name or schema["fingerprint"] != EDGE_FLOWS.fingerprint:
                raise FamilyError(f"family model made for schema {schema}, not {EDGE_FLOWS.name}")
            if list(d["families"]) != list(FAMILIES):
                raise FamilyError(f"family model families {d['families']} are not {list(FAMILIES)}")
            trees = list(d["trees"])
            for t in trees:
                n = len(t["feature"])
                if n == 0 or any(len(t[k]) != n for k in ("threshold", "left", "right", "probability")):
                    raise FamilyError("family model: node arrays of different lengths")
                if max(t["feature"]) >= len(EDGE_FLOWS) or any(
                    len(p) != len(FAMILIES) for p in t["probability"]
                ):
                    raise FamilyError("family model: a feature index outside EDGE_FLOWS or a bad leaf")
        except (KeyError, TypeError) as exc:
            raise FamilyError(f"family model: missing or bad field {exc}") from None
        if not trees:
            raise FamilyError("family model: no trees")
        return cls(trees, meta=d.get("meta"))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``EDGE_FLOWS`` rows [n, 94] → family probabilities [n, len(FAMILIES)] (mean over trees)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.shape[1] != len(EDGE_FLOWS):
            raise ValueError(f"features have shape {X.shape}, expected [n, {len(EDGE_FLOWS)}]")
        # as scikit-learn saw them in training: float32, NaN → -1, ±inf → ±1e18
        V = X[:, self._columns]
        V = np.nan_to_num(V, nan=-1.0, posinf=1e18, neginf=-1e18).astype(np.float32).astype(np.float64)
        flat = V.ravel()
        row = (np.arange(len(V)) * V.shape[1])[:, None]
        node = np.broadcast_to(self.roots, (len(V), len(self.roots)))
        for _ in range(self.depth):  # leaves point at themselves; no NaN is left, so > is "not <="
            right = flat.take(row + self._column_pos.take(node)) > self.threshold.take(node)
            node = self._child.take(2 * node + right)
        # the mean over trees: summed tree after tree, as mean(axis=1) does (the same floats),
        # over [trees, n, families], which numpy adds row by row 2x faster than it reduces
        # the middle axis of [n, trees, families]
        return self.probability.take(node.T, axis=0).sum(axis=0) / len(self.roots)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``EDGE_FLOWS`` rows [n, 94] → index into :data:`FAMILIES` per row."""
        return self.predict_proba(X).argmax(axis=1)

    def names(self, X: np.ndarray) -> list[str]:
        """``EDGE_FLOWS`` rows → family names; a family that names a transport the flow does
        not use (:data:`FAMILY_PROTOCOLS`) is ``other``."""
        idx = self.predict(X)  # checks the shape
        X = np.asarray(X, dtype=np.float64)
        proto = (X[None, :] if X.ndim == 1 else X)[:, _PROTOCOL]
        names = [FAMILIES[i] for i in idx]
        return [n if FAMILY_PROTOCOLS.get(n, p) == p else "other" for n, p in zip(names, proto, strict=True)]


def _depth(tree: dict[str, Any]) -> int:
    """Levels below the root of one tree's node arrays."""
    feature, left, right = tree["feature"], tree["left"], tree["right"]
    depth, frontier = 0, [0]
    while True:
        frontier = [c for n in frontier if feature[n] >= 0 for c in (left[n], right[n])]
        if not frontier:
            return depth
        depth += 1


def load_family_model(path: str | Path | None = None) -> FamilyModel:
    """The family tree at ``path`` (default: the shipped one); :class:`FamilyError` if unusable."""
    p = Path(path) if path is not None else DEFAULT_FAMILIES_PATH
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FamilyError(f"family model {p}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FamilyError(f"family model {p}: cannot read ({exc})") from None
    if not isinstance(d, dict):
        raise FamilyError(f"family model {p}: not a JSON object")
    try:
        return FamilyModel.from_dict(d)
    except FamilyError as exc:
        raise FamilyError(f"{p}: {exc}") from None
