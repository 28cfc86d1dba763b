"""``edge-nids detection``: train and judge a detector by networks it has never seen.

Grouped cross-validation over real captures: every capture of ``benign_public``
and ``attacks_public`` (see :mod:`edge_nids.training.corpus`) is assigned to one
of ``k`` folds; each fold's model is trained on the other folds plus the lab's
training runs and judged on the fold's captures, so no capture feeds both
training and evaluation. The lab test run is never trained on. Two models on the
same rows and features: the paper's CNN-LSTM (``cnn-lstm-edge``, converted to an
int8 bundle per fold and judged by replaying the held-out captures through the
agent's own pipeline, open-flow classifications included) and a random forest
(the yardstick, judged per flow on its final features). The final model is
trained on every capture and written as a bundle; the report goes to
``docs/detection.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_nids.flows.labels import BENIGN, load_labels
from edge_nids.flows.schema import EDGE_FLOWS
from edge_nids.training.corpus import Capture, _label_function, build_corpus, find_captures

__all__ = ["EXCLUDED", "flow_kind", "main", "register", "replay"]

log = logging.getLogger(__name__)

#: Columns kept out of the model: the service port (the lab's four services would be learnt
#: as "normal") and TCP stack fingerprints (initial windows, minimum header), which tell
#: operating systems and labs apart rather than attacks.
EXCLUDED: tuple[str, ...] = (
    "Destination Port",
    "Init_Win_bytes_forward",
    "Init_Win_bytes_backward",
    "min_seg_size_forward",
)

_I = {n: i for i, n in enumerate(EDGE_FLOWS.names)}
FLOW_KINDS: tuple[str, ...] = (
    "UDP, one packet, one way",
    "UDP, several packets, one way",
    "UDP, both ways",
    "TCP, > 10 packets, FIN seen",
    "TCP, 4-10 packets, FIN seen",
    "TCP, <= 3 packets, FIN seen",
    "TCP, RST seen",
    "TCP, no FIN or RST (cut by the capture's end or still open)",
    "ICMP / ICMPv6",
    "other",
)


def flow_kind(x: Sequence[float]) -> str:
    """The kind of a flow (``FLOW_KINDS``) from its ``EDGE_FLOWS`` values."""
    proto = x[_I["Protocol"]]
    fp, bp = x[_I["Total Fwd Packets"]], x[_I["Total Backward Packets"]]
    if proto == 17:
        if bp == 0:
            return FLOW_KINDS[0] if fp == 1 else FLOW_KINDS[1]
        return FLOW_KINDS[2]
    if proto == 6:
        n = fp + bp
        if x[_I["RST Flag Count"]]:
            return FLOW_KINDS[6]
        if x[_I["FIN Flag Count"]]:
            return FLOW_KINDS[3] if n > 10 else FLOW_KINDS[4] if n >= 4 else FLOW_KINDS[5]
        return FLOW_KINDS[7]
    if proto in (1, 58):
        return FLOW_KINDS[8]
    return FLOW_KINDS[9]


@dataclass
class CaptureFlows:
    """One capture's flows (final features from the CSV) and labels."""

    cap: Capture
    X: np.ndarray
    classes: np.ndarray

    @property
    def attack(self) -> np.ndarray:
        return self.classes != BENIGN


def load_flows(caps: Sequence[Capture]) -> list[CaptureFlows]:
    from edge_nids.training.datasets import load_cic

    out = []
    for cap in caps:
        d = load_cic([cap.csv], "flows")
        out.append(CaptureFlows(cap, d.features.to_numpy(np.float64), d.classes.astype(str)))
    return out


def assign_folds(caps: Sequence[Capture], k: int, seed: int) -> dict[str, int]:
    """Capture name → fold: benign and attack captures dealt round-robin in a seeded order,
    attack captures grouped by type first so every fold holds several types."""
    rng = np.random.default_rng(seed)
    benign = [c.name for c in caps if c.source == "benign_public"]
    attacks = sorted((c.attack_type, c.name) for c in caps if c.source == "attacks_public")
    folds: dict[str, int] = {}
    for i, name in enumerate(rng.permutation(benign)):
        folds[str(name)] = i % k
    start = int(rng.integers(k))
    for i, (_, name) in enumerate(attacks):
        folds[name] = (start + i) % k
    return folds


def training_rows(
    flows: Sequence[CaptureFlows], per_capture: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of every capture, at most ``per_capture`` per capture and class (seeded sample)."""
    rng = np.random.default_rng(seed)
    Xs, ys = [], []
    for cf in flows:
        for cls in np.unique(cf.classes):
            idx = np.flatnonzero(cf.classes == cls)
            if len(idx) > per_capture:
                idx = np.sort(rng.choice(idx, per_capture, replace=False))
            Xs.append(cf.X[idx])
            ys.append(np.full(len(idx), cls != BENIGN))
    return np.concatenate(Xs), np.concatenate(ys).astype(np.int64)


def _finite(X: np.ndarray) -> np.ndarray:
    return np.nan_to_num(X, nan=0.0, posinf=1e12, neginf=-1e12)


def fit_forest(X: np.ndarray, y: np.ndarray, seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    keep = [i for i, n in enumerate(EDGE_FLOWS.names) if n not in EXCLUDED]
    rf = RandomForestClassifier(
        n_estimators=200, min_samples_leaf=2, class_weight="balanced", n_jobs=2, random_state=seed
    )
    rf.fit(_finite(X[:, keep]), y)
    rf.edge_keep = keep
    return rf


def forest_scores(rf: Any, X: np.ndarray) -> np.ndarray:
    return rf.predict_proba(_finite(X[:, rf.edge_keep]))[:, 1]


@dataclass
class Trained:
    """A fitted CNN-LSTM with its preprocessing and the rows it saw."""

    model: Any
    preprocessor: Any
    X_calib: np.ndarray
    epochs: int
    seconds: float


def fit_cnn(X: np.ndarray, y: np.ndarray, seed: int, model_name: str, epochs: int) -> Trained:
    """The CNN-LSTM on raw ``EDGE_FLOWS`` rows: signed-log min-max preprocessing, balanced
    classes, early stopping on a seeded 10 % validation part."""
    from edge_nids.preprocess import Preprocessor
    from edge_nids.training.models import build_model, keras_module
    from edge_nids.training.prepare import class_weights

    keras = keras_module()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_val = max(1, len(y) // 10)
    va, tr = order[:n_val], order[n_val:]
    pre = Preprocessor.fit(X[tr], EDGE_FLOWS.names, log="all", exclude=list(EXCLUDED))
    Xt, Xv = pre.transform(X[tr]), pre.transform(X[va])
    model = build_model(model_name, Xt.shape[1], 2, seed=seed, lr=3e-3, dropout=0.2)
    t0 = time.perf_counter()
    hist = model.fit(
        Xt,
        y[tr],
        validation_data=(Xv, y[va]),
        epochs=epochs,
        batch_size=128,
        class_weight=class_weights(y[tr], 2, 1.0),
        callbacks=[
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True),
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=4),
        ],
        verbose=0,
    )
    calib = Xt[np.sort(rng.choice(len(Xt), size=min(500, len(Xt)), replace=False))]
    return Trained(model, pre, calib.astype(np.float32), len(hist.history["loss"]), time.perf_counter() - t0)


def cnn_scores(t: Trained, X: np.ndarray) -> np.ndarray:
    from edge_nids.training.fit import predict

    return predict(t.model, t.preprocessor.transform(X))[:, 1]


def write_bundle_from(t: Trained, work: Path, out: Path, threshold: float, name: str, notes: dict) -> Path:
    """MODEL_DIR for ``t`` under ``work``, converted to an int8 bundle at ``out``."""
    from edge_nids.convert.pipeline import ConvertConfig, convert_model_dir

    work.mkdir(parents=True, exist_ok=True)
    t.model.save(work / "model.keras")
    (work / "preprocess.json").write_text(json.dumps(t.preprocessor.to_dict(), indent=1) + "\n")
    train = {
        "format": 1,
        "dataset": "flows",
        "profile": "corrected",
        "schema": EDGE_FLOWS.name,
        "schema_fingerprint": EDGE_FLOWS.fingerprint,
        "input_columns": t.preprocessor.input_columns,
        "model_inputs": t.preprocessor.output_columns,
        "labels": ["benign", "attack"],
        "attack_label_indices": [1],
        "multiclass": False,
        "model": t.model.name.replace("_", "-"),
        "params": int(t.model.count_params()),
        "epochs_run": t.epochs,
        "exclude_features": list(EXCLUDED),
        "training_time_s": round(t.seconds, 1),
        **notes,
    }
    (work / "train.json").write_text(json.dumps(train, indent=1) + "\n")
    np.savez(work / "calibration.npz", X=t.X_calib)
    convert_model_dir(ConvertConfig(model_dir=work, mode="int8", out=out, threshold=threshold, name=name))
    return out


@dataclass
class Replayed:
    """What the agent made of one capture: per flow its label, kind and whether it was flagged."""

    labels: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    flagged: list[bool] = field(default_factory=list)
    srcs: list[bytes] = field(default_factory=list)
    dsts: list[bytes] = field(default_factory=list)
    first_us: list[int] = field(default_factory=list)
    alert_us: list[int | None] = field(default_factory=list)
    alert_lines: int = 0


def replay(bundle: Path, pcap: Path, label: str | Callable[[Any], str], threshold: float | None = None) -> Replayed:
    """Replay ``pcap`` through the agent's pipeline with ``bundle`` (defaults of the agent
    config); a flow is flagged when any of its classifications, open or final, reached the
    threshold, as an alert would be raised."""
    from edge_nids.agent.config import from_dict
    from edge_nids.agent.pipeline import Pipeline
    from edge_nids.agent.service import load_model
    from edge_nids.agent.stats import AgentStats
    from edge_nids.flows.pcap import open_capture

    cfg = from_dict({"model": {"path": str(bundle), "threshold": threshold}})
    model = load_model(cfg)
    pipe = Pipeline(cfg, model, None, None, AgentStats(), None)
    first_alert: dict[int, int] = {}
    out = Replayed()

    def seen(flow: Any, score: float, attack: bool, final: bool) -> None:
        if attack and id(flow) not in first_alert:
            first_alert[id(flow)] = pipe.now_us
        if final:
            t = first_alert.pop(id(flow), None)
            out.labels.append(label if isinstance(label, str) else label(flow))
            out.kinds.append(flow_kind(flow.edge_features()))
            out.flagged.append(t is not None)
            out.srcs.append(flow.src)
            out.dsts.append(flow.dst)
            out.first_us.append(flow.first_us)
            out.alert_us.append(t)

    pipe.on_verdict = seen
    with open_capture(pcap) as cap:
        for rec in cap:
            pipe.packet(rec)
    pipe.finish()
    out.alert_lines = pipe.aggregator.emitted_lines
    return out


# -- the report ---------------------------------------------------------------------------


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.2f} % ({k}/{n})" if n else "—"


class Tally:
    """Flows and flagged flows by key."""

    def __init__(self) -> None:
        self.n: dict[Any, int] = defaultdict(int)
        self.k: dict[Any, int] = defaultdict(int)

    def add(self, key: Any, flagged: bool) -> None:
        self.n[key] += 1
        self.k[key] += int(flagged)

    def cell(self, key: Any) -> str:
        return _pct(self.k.get(key, 0), self.n.get(key, 0))


def _lab_first_alerts(rep: Replayed, labels_csv: Path) -> dict[str, list[float]]:
    """Per attack label, seconds from each attack run's start to its first flagged flow."""
    rules = load_labels(labels_csv).rules
    out: dict[str, list[float]] = defaultdict(list)
    for rule in rules:
        pair = {rule.attacker, rule.victim}
        times = [
            t
            for s, d, f, t in zip(rep.srcs, rep.dsts, rep.first_us, rep.alert_us, strict=True)
            if t is not None and {s, d} == pair and rule.start_us <= f <= rule.end_us
        ]
        out[rule.label].append((min(times) - rule.start_us) / 1e6 if times else float("inf"))
    return out


def run(args: argparse.Namespace) -> int:
    from edge_nids.training.datasets import data_root

    t_start = time.perf_counter()
    work = Path(args.work)
    datasets = Path(args.datasets) if args.datasets else data_root()
    caps = find_captures(datasets, [Path(p) for p in args.lab], work / "corpus")
    test_caps = find_captures(None, [Path(p) for p in args.test_lab], work / "corpus")
    build_corpus([*caps, *test_caps])
    flows = load_flows(caps)
    by_name = {cf.cap.name: cf for cf in flows if not cf.cap.source.startswith("lab")}
    lab_flows = [cf for cf in flows if cf.cap.source.startswith("lab")]
    folds = assign_folds(caps, args.folds, args.seed)
    rf_scores: dict[str, np.ndarray] = {}
    cnn_offline: dict[str, np.ndarray] = {}
    replays: dict[str, Replayed] = {}
    fold_info = []
    for k in range(args.folds):
        train = lab_flows + [cf for n, cf in by_name.items() if folds[n] != k]
        held = [cf for n, cf in by_name.items() if folds[n] == k]
        X, y = training_rows(train, args.per_capture, args.seed + k)
        rf = fit_forest(X, y, args.seed)
        cnn = fit_cnn(X, y, args.seed, args.model, args.epochs)
        bundle = write_bundle_from(
            cnn, work / f"fold{k}" / "model", work / f"fold{k}" / "bundle", args.threshold, f"fold{k}", {}
        )
        for cf in held:
            rf_scores[cf.cap.name] = forest_scores(rf, cf.X) if len(cf.X) else np.zeros(0)
            cnn_offline[cf.cap.name] = cnn_scores(cnn, cf.X) if len(cf.X) else np.zeros(0)
            replays[cf.cap.name] = replay(bundle, cf.cap.pcap, _label_function(cf.cap))
        fold_info.append({"fold": k, "train_rows": len(y), "attack_rows": int(y.sum()), "epochs": cnn.epochs})
        log.warning("fold %d: %d rows, %d epochs, %.0f s so far", k, len(y), cnn.epochs, time.perf_counter() - t_start)
    # the final model: every capture
    X, y = training_rows(flows, args.per_capture, args.seed)
    final = fit_cnn(X, y, args.seed, args.model, args.epochs)
    final_rf = fit_forest(X, y, args.seed)
    notes = {
        "corpus": {
            "benign_public": sum(c.source == "benign_public" for c in caps),
            "attacks_public": sum(c.source == "attacks_public" for c in caps),
            "lab_runs": [str(p) for p in args.lab],
        },
        "rows_per_capture_and_class": args.per_capture,
        "seed": args.seed,
        "command": "edge-nids detection " + " ".join(args.argv),
    }
    out_bundle = Path(args.out)
    write_bundle_from(final, work / "final" / "model", out_bundle, args.threshold, out_bundle.name, notes)
    test_reps: dict[str, Replayed] = {}
    test_rf: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for cf in load_flows(test_caps):
        test_reps[cf.cap.name] = replay(out_bundle, cf.cap.pcap, _label_function(cf.cap))
        test_rf[cf.cap.name] = (forest_scores(final_rf, cf.X) >= 0.5, cf.classes)
    gold = []
    if datasets is not None:
        sqli = datasets / "pcaps" / "gold_cicids2017_sqlinj" / "WebattackSQLinj.pcap"
        if sqli.is_file():
            rule_src = _ip("172.16.0.1")
            gold.append(("CIC-IDS2017 SQL injection", replay(out_bundle, sqli, lambda f: "Web Attack" if rule_src in (f.src, f.dst) else BENIGN)))
    text = render(
        caps, by_name, folds, rf_scores, cnn_offline, replays, test_caps, test_reps, test_rf, gold, args, fold_info,
        time.perf_counter() - t_start,
    )
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0


def _ip(text: str) -> bytes:
    import ipaddress

    return ipaddress.ip_address(text).packed


def render(
    caps, by_name, folds, rf_scores, cnn_offline, replays, test_caps, test_reps, test_rf, gold, args, fold_info, seconds
) -> str:
    thr = args.threshold
    lines = [
        "# Detection on networks the model never saw",
        "",
        "<!-- generated by `edge-nids detection`; do not edit by hand -->",
        "",
        f"Regenerate: `edge-nids detection {' '.join(args.argv)}` ({seconds / 60:.0f} min on this machine).",
        "",
        f"Split: grouped {args.folds}-fold cross-validation by capture over `benign_public` "
        f"({sum(c.source == 'benign_public' for c in caps)} captures) and `attacks_public` "
        f"({sum(c.source == 'attacks_public' for c in caps)}); each fold's models are trained on the other "
        f"folds plus the lab training runs ({', '.join(args.lab) or 'none'}) and judged on the fold's "
        "captures, which they never saw. The lab test run "
        f"({', '.join(args.test_lab) or 'none'}) is judged with the final model, which never saw it. "
        f"At most {args.per_capture} rows per capture and class. Features: schema `{EDGE_FLOWS.name}` "
        f"without {', '.join(EXCLUDED)}.",
        "",
        f"- **CNN-LSTM (agent)**: the fold's `{args.model}` converted to int8, threshold {thr}, the held-out "
        "captures replayed through the agent's pipeline (`edge-nids run --pcap`'s code, open-flow "
        "classifications included); a flow counts as flagged when any of its classifications alerted.",
        "- **CNN-LSTM (Keras)**: the same fold model in float, on each flow's final features.",
        "- **Random forest**: the yardstick, 200 trees, same rows and features, on final features, threshold 0.5.",
        "",
    ]
    # benign per source
    lines += ["## False alarms: benign flows flagged", "", "| source | flows | CNN-LSTM (agent) | CNN-LSTM (Keras) | random forest |", "|---|---:|---:|---:|---:|"]
    tot = [Tally(), Tally(), Tally()]
    for name, cf in by_name.items():
        if cf.cap.source != "benign_public":
            continue
        r = replays[name]
        for lab, fl in zip(r.labels, r.flagged, strict=True):
            if lab == BENIGN:
                tot[0].add("all", fl)
        for s, cnn_s in ((rf_scores[name], 2), (cnn_offline[name], 1)):
            for v, cls in zip(s, cf.classes, strict=True):
                if cls == BENIGN:
                    tot[cnn_s].add("all", v >= (0.5 if cnn_s == 2 else thr))
    alert_caps = sum(1 for n, cf in by_name.items() if cf.cap.source == "benign_public" and any(replays[n].flagged))
    n_benign_caps = sum(1 for cf in by_name.values() if cf.cap.source == "benign_public")
    lines.append(
        f"| `benign_public`, each capture held out | {tot[0].n['all']} | **{tot[0].cell('all')}** | "
        f"{tot[1].cell('all')} | {tot[2].cell('all')} |"
    )
    lab_b = [Tally(), Tally()]
    for name, r in test_reps.items():
        for lab, fl in zip(r.labels, r.flagged, strict=True):
            if lab == BENIGN:
                lab_b[0].add("all", fl)
        for fl, cls in zip(*test_rf[name], strict=True):
            if cls == BENIGN:
                lab_b[1].add("all", bool(fl))
    lines.append(f"| lab test run (final model) | {lab_b[0].n['all']} | **{lab_b[0].cell('all')}** | — | {lab_b[1].cell('all')} |")
    lines += [
        "",
        f"Captures of `benign_public` with at least one alert (agent): {alert_caps} of {n_benign_caps}; "
        f"alert lines (60 s aggregation): {sum(replays[n].alert_lines for n, cf in by_name.items() if cf.cap.source == 'benign_public')}.",
        "",
    ]
    # per fold
    lines += ["Per fold (agent, benign_public): " + ", ".join(
        f"fold {k}: " + _pct(
            sum(sum(1 for lab, fl in zip(replays[n].labels, replays[n].flagged, strict=True) if lab == BENIGN and fl) for n in by_name if folds[n] == k and by_name[n].cap.source == 'benign_public'),
            sum(sum(1 for lab in replays[n].labels if lab == BENIGN) for n in by_name if folds[n] == k and by_name[n].cap.source == 'benign_public'),
        )
        for k in range(args.folds)
    ) + ".", ""]
    # by kind
    kinds = Tally()
    for name, cf in by_name.items():
        if cf.cap.source == "benign_public":
            r = replays[name]
            for lab, kind, fl in zip(r.labels, r.kinds, r.flagged, strict=True):
                if lab == BENIGN:
                    kinds.add(kind, fl)
    lines += ["### By kind of flow (`benign_public`, agent)", "", "| kind | flows | flagged |", "|---|---:|---:|"]
    for kind in FLOW_KINDS:
        if kinds.n.get(kind):
            lines.append(f"| {kind} | {kinds.n[kind]} | {kinds.cell(kind)} |")
    # worst captures
    worst = sorted(
        ((sum(fl for lab, fl in zip(replays[n].labels, replays[n].flagged, strict=True) if lab == BENIGN), n) for n, cf in by_name.items() if cf.cap.source == "benign_public"),
        reverse=True,
    )[:10]
    lines += ["", "Captures with the most flagged flows (agent): " + ", ".join(f"`{n}` {k}" for k, n in worst if k) + ".", ""]
    # attacks
    lines += [
        "## Attacks: `attacks_public`, each capture held out",
        "",
        "Attacker flows: flows with an attacker address of the capture's MANIFEST row at one end "
        "(for spoofed or anonymised sources: the flows to the victim service it names).",
        "",
        "| capture | type | attacker flows | CNN-LSTM (agent) | first alert after (s) | CNN-LSTM (Keras) | random forest | other flows flagged |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, cf in sorted(by_name.items(), key=lambda kv: (kv[1].cap.attack_type, kv[0])):
        if cf.cap.source != "attacks_public":
            continue
        r = replays[name]
        att = [(fl, f, t) for lab, fl, f, t in zip(r.labels, r.flagged, r.first_us, r.alert_us, strict=True) if lab != BENIGN]
        ben = [fl for lab, fl in zip(r.labels, r.flagged, strict=True) if lab == BENIGN]
        k = sum(fl for fl, _, _ in att)
        first = min((f for _, f, _ in att), default=None)
        t_alert = min((t for _, _, t in att if t is not None), default=None)
        delay = f"{(t_alert - first) / 1e6:.2f}" if t_alert is not None and first is not None else "—"
        am = cf.attack
        lines.append(
            f"| `{name}` | {cf.cap.attack_type} | {len(att)} | {_pct(k, len(att))} | {delay} | "
            f"{_pct(int((cnn_offline[name][am] >= thr).sum()), int(am.sum()))} | "
            f"{_pct(int((rf_scores[name][am] >= 0.5).sum()), int(am.sum()))} | {_pct(sum(ben), len(ben))} |"
        )
    # lab test
    lines += ["", "## Lab test run (final model, never trained on)", "", "| label | flows | CNN-LSTM (agent) | first alert after (s), per run | random forest |", "|---|---:|---:|---|---:|"]
    lab_t, lab_rf = Tally(), Tally()
    firsts: dict[str, list[float]] = defaultdict(list)
    for cap in test_caps:
        r = test_reps[cap.name]
        for lab, fl in zip(r.labels, r.flagged, strict=True):
            lab_t.add(lab, fl)
        for fl, cls in zip(*test_rf[cap.name], strict=True):
            lab_rf.add(cls, bool(fl))
        labels_csv = cap.pcap.parent / "labels.csv"
        if labels_csv.is_file():
            for lab, ts in _lab_first_alerts(r, labels_csv).items():
                if any(lab == x for x in r.labels):
                    firsts[lab].extend(ts)
    for lab in sorted(lab_t.n, key=lambda x: (x != BENIGN, x)):
        ft = ", ".join("none" if t == float("inf") else f"{t:.2f}" for t in sorted(set(firsts.get(lab, [])))) or "—"
        lines.append(f"| {lab} | {lab_t.n[lab]} | {lab_t.cell(lab)} | {ft} | {lab_rf.cell(lab)} |")
    for title, r in gold:
        att = [fl for lab, fl in zip(r.labels, r.flagged, strict=True) if lab != BENIGN]
        lines += ["", f"Shared gold capture, {title} (final model): {_pct(sum(att), len(att))} of the attacker's flows flagged."]
    lines += ["", "Folds: " + json.dumps(fold_info), ""]
    return "\n".join(lines)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "detection",
        help="grouped cross-validation on real captures; train the default; write docs/detection.md",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("--datasets", help="shared datasets folder (default: $EDGE_NIDS_DATA or ../shared/datasets)")
    p.add_argument("--lab", action="append", default=[], help="lab run folder to train on (repeatable)")
    p.add_argument("--test-lab", action="append", default=[], help="lab run folder to judge only (repeatable)")
    p.add_argument("--work", default="runs/detection", help="corpus CSVs, fold models (default runs/detection)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--per-capture", type=int, default=1500, help="rows per capture and class (default 1500)")
    p.add_argument("--model", default="cnn-lstm-edge")
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("-o", "--out", default="runs/detection/final/bundle", help="the final model's bundle")
    p.add_argument("--write", help="write the report here (e.g. docs/detection.md) instead of stdout")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    import sys

    args.argv = sys.argv[2:]
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    return run(args)


main = _main
