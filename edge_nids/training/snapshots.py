"""Flows as the agent sees them when it alerts: every classification of every flow, labelled.

The agent classifies a flow while it is still open (after ``flows.classify_active_s``,
then at doubling intervals) and when it ends, and alerts at the first
classification above the threshold: a slowloris connection is judged one second
into its life, not at its end. A family stage trained on finished flows only names
such snapshots wrongly (measured: the demo's slowloris alerts were named brute
force). :func:`capture_snapshots` replays a capture through the agent's own
:class:`~edge_nids.agent.pipeline.Pipeline` with a real bundle and records, at each
classification, the flow's ``EDGE_FLOWS`` values, its label, whether it had ended,
whether the bundle flagged it, and which flow it is. Results are cached as ``.npz``
next to the corpus CSVs' layout (``CACHE/<source>/<name>.npz``), rebuilt when the
capture, the bundle or the flow meter is newer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_nids.bundle import BUNDLE_JSON

__all__ = ["Snapshots", "capture_snapshots", "corpus_snapshots"]

log = logging.getLogger(__name__)


@dataclass
class Snapshots:
    """Classification snapshots: EDGE_FLOWS rows, class labels, ended?, flagged?, flow number, capture."""

    X: np.ndarray
    label: np.ndarray
    final: np.ndarray
    flagged: np.ndarray
    flow: np.ndarray
    capture: np.ndarray

    def __len__(self) -> int:
        return len(self.X)

    @classmethod
    def concat(cls, parts: Sequence[Snapshots]) -> Snapshots:
        offset, flows = 0, []
        for p in parts:  # flow numbers stay unique across captures
            flows.append(p.flow + offset)
            offset += int(p.flow.max()) + 1 if len(p.flow) else 0
        return cls(
            np.concatenate([p.X for p in parts]),
            np.concatenate([p.label for p in parts]),
            np.concatenate([p.final for p in parts]),
            np.concatenate([p.flagged for p in parts]),
            np.concatenate(flows) if flows else np.zeros(0, np.int64),
            np.concatenate([p.capture for p in parts]),
        )


def capture_snapshots(
    pcap: Path, label: str | Callable[[Any], str], model: Any, cfg: Any, name: str
) -> Snapshots:
    """Replay ``pcap`` through the agent pipeline; one row per classification of each flow."""
    from edge_nids.agent.pipeline import Pipeline, replay_capture
    from edge_nids.agent.stats import AgentStats

    rows: list[list[float]] = []
    labels: list[str] = []
    finals: list[bool] = []
    flagged: list[bool] = []
    flows: list[int] = []
    number: dict[int, int] = {}  # id(flow) of open flows → flow number
    count = [0]
    label_of = (lambda f: label) if isinstance(label, str) else label

    def hook(flow: Any, score: float, attack: bool, final: bool) -> None:
        key = id(flow)
        n = number.get(key)
        if n is None:
            n = number[key] = count[0]
            count[0] += 1
        rows.append(flow.edge_features())
        labels.append(label_of(flow))
        finals.append(final)
        flagged.append(attack)
        flows.append(n)
        if final:  # id() may be reused by a later flow
            del number[key]

    pipe = Pipeline(cfg, model, None, None, AgentStats(), None)
    pipe.on_verdict = hook
    replay_capture(pipe, pcap)
    return Snapshots(
        np.array(rows, dtype=np.float64).reshape(len(rows), -1),
        np.array(labels, dtype=object),
        np.array(finals, dtype=bool),
        np.array(flagged, dtype=bool),
        np.array(flows, dtype=np.int64),
        np.full(len(rows), name, dtype=object),
    )


def _load_npz(path: Path, name: str) -> Snapshots:
    z = np.load(path, allow_pickle=True)
    return Snapshots(
        z["X"], z["label"], z["final"], z["flagged"], z["flow"], np.full(len(z["X"]), name, dtype=object)
    )


def corpus_snapshots(
    datasets: Path | None, lab_runs: Sequence[Path], cache: Path, model: Any, cfg: Any, sources: Sequence[str]
) -> dict[str, Snapshots]:
    """Snapshots of every capture of ``sources`` (``lab:<run>``, ``attacks_public``, ``benign_public``).

    Uses :func:`edge_nids.training.corpus.find_captures` for the captures and their labels;
    returns ``{source: Snapshots}`` with capture names ``<source>/<name>``.
    """
    from edge_nids.training.corpus import _code_mtime, _label_function, find_captures

    # a snapshot's rows follow the flow meter and the pipeline's timing, its ``flagged`` column
    # the bundle's threshold and escalation (bundle.json) too: any of them newer, replay again
    agent_code = Path(__file__).resolve().parents[1] / "agent"
    newest = max(
        _code_mtime(),
        Path(model.bundle.model_path).stat().st_mtime,
        (Path(model.bundle.path) / BUNDLE_JSON).stat().st_mtime,
        max(p.stat().st_mtime for p in agent_code.glob("*.py")),
    )
    out: dict[str, list[Snapshots]] = {s: [] for s in sources}
    for cap in find_captures(datasets, lab_runs, cache):
        if cap.source not in out:
            continue
        name = f"{cap.source}/{cap.name}"
        npz = cap.csv.with_suffix(".npz")
        if npz.is_file() and npz.stat().st_mtime >= max(cap.pcap.stat().st_mtime, newest):
            out[cap.source].append(_load_npz(npz, name))
            continue
        snap = capture_snapshots(cap.pcap, _label_function(cap), model, cfg, name)
        npz.parent.mkdir(parents=True, exist_ok=True)
        tmp = npz.with_suffix(".tmp.npz")
        np.savez_compressed(
            tmp, X=snap.X, label=snap.label, final=snap.final, flagged=snap.flagged, flow=snap.flow
        )
        tmp.replace(npz)
        log.info("%s: %d classifications of %d flows", name, len(snap), len(set(snap.flow.tolist())))
        out[cap.source].append(snap)
    return {s: Snapshots.concat(v) for s, v in out.items() if v}
