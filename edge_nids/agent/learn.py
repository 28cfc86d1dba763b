"""``edge-nids learn``: run the bundle over traffic declared normal and write a site file.

The traffic goes through the same :class:`~edge_nids.agent.pipeline.Pipeline` as
``edge-nids run`` (same flow meter, batching and open-flow re-checks); each flow
keeps the highest score any of its classifications gave. Per service
(:func:`~edge_nids.agent.site.service_key`) the site file gets the flow count,
a high quantile of those scores plus a margin, and the largest context counts.

Learning an attack as normal is guarded against: the report names the services,
the sources whose flows scored highest and the families of the flagged flows; a
learning run where one source has at least ``refuse_source_flows`` flagged flows
that the family stage names a scan, flood or brute force is refused
(:class:`LearnRefused`, unless ``force``: an attack comes from somewhere, while the
family stage's mistakes on benign traffic are spread over many hosts, measured on
the public benign captures: at most 9 from one source), and warnings are given when
more than ``warn_flagged_share`` of the flows are flagged or ``warn_attack_flows``
flagged flows are named attack families.
"""

from __future__ import annotations

import logging
import select
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from edge_nids.agent.families import FAMILY_INFO, FamilyModel
from edge_nids.agent.site import (
    ATTACK_FAMILIES,
    ServiceBaseline,
    Site,
    bundle_identity,
    learn_levels,
    require_context,
    service_key,
)

__all__ = ["LearnParams", "LearnRefused", "LearnResult", "Learner", "format_report", "parse_duration"]

log = logging.getLogger(__name__)


class LearnRefused(ValueError):
    """The learning traffic looks like an attack; nothing was written."""


@dataclass(frozen=True)
class LearnParams:
    """How a site file is learnt (see the module docstring)."""

    quantile: float = 0.999
    margin: float = 0.02
    context_quantile: float = 0.99  #: site-wide context bounds (services seen too little)
    min_flows: int = 20
    by_address: bool = False
    warn_flagged_share: float = 0.05
    refuse_source_flows: int = 20  #: refuse when one source has this many attack-named flagged flows
    warn_attack_flows: int = 10  #: warn when all sources together have this many
    force: bool = False


@dataclass
class _Seen:
    service: str
    src: str
    score: float
    context: tuple[int, ...]
    features: list[float] | None  # EDGE_FLOWS values, kept for flagged flows only


@dataclass
class LearnResult:
    """The learnt site and what learning saw."""

    site: Site
    flows: int
    flagged: int
    per_service: dict[str, tuple[int, int]]  # service → (flows, flagged)
    sources: list[tuple[str, int, int, float]]  # (address, flows, flagged, top score), worst first
    families: dict[str, int]  # family → flagged flows
    attack_sources: dict[str, Counter]  # address → families named among its flagged flows
    warnings: list[str] = field(default_factory=list)


class Learner:
    """Collects verdicts from a Pipeline (``pipeline.on_verdict = learner.observe``)."""

    def __init__(self, model: Any, families: FamilyModel, params: LearnParams) -> None:
        require_context(model.bundle)  # SiteError: site files need the context counts
        self.model = model
        self.families = families
        self.params = params
        self._best: dict[int, float] = {}
        self.seen: list[_Seen] = []

    def observe(self, flow: Any, score: float, attack: bool, final: bool) -> None:
        """The Pipeline's verdict hook: remember each flow's highest score, record it when it ends."""
        key = id(flow)
        best = max(score, self._best.pop(key, 0.0))
        if not final:
            self._best[key] = best
            return
        flagged = best >= self.model.threshold
        self.seen.append(
            _Seen(
                service_key(flow, self.params.by_address),
                flow.src_ip,
                best,
                tuple(flow.context),
                flow.edge_features() if flagged else None,
            )
        )

    def result(self, captures: Sequence[str]) -> LearnResult:
        """Build the site from what was observed; :class:`LearnRefused` when it looks like an attack."""
        p = self.params
        thr = self.model.threshold
        flagged = [s for s in self.seen if s.features is not None]
        names = self.families.names(np.array([s.features for s in flagged])) if flagged else []
        fam_count = Counter(names)
        attack_sources: dict[str, Counter] = defaultdict(Counter)
        svc_families: dict[str, Counter] = defaultdict(Counter)
        for s, fam in zip(flagged, names, strict=True):
            svc_families[s.service][fam] += 1
            if fam in ATTACK_FAMILIES:
                attack_sources[s.src][fam] += 1
        by_service: dict[str, list[_Seen]] = defaultdict(list)
        by_src: dict[str, list[float]] = defaultdict(list)
        for s in self.seen:
            by_service[s.service].append(s)
            by_src[s.src].append(s.score)
        services = {}
        for key, rows in by_service.items():
            scores = np.array([r.score for r in rows])
            ctx = np.array([r.context for r in rows]).max(axis=0).tolist()
            services[key] = ServiceBaseline(
                flows=len(rows),
                flagged=int((scores >= thr).sum()),
                level=learn_levels(scores, p.quantile, p.margin, thr),
                context_max=ctx,
                top_score=float(scores.max()),
                families=dict(svc_families[key]),
            )
        site_wide = None
        if self.seen:
            all_scores = np.array([r.score for r in self.seen])
            all_ctx = np.array([r.context for r in self.seen])
            site_wide = ServiceBaseline(
                flows=len(self.seen),
                flagged=int((all_scores >= thr).sum()),
                level=learn_levels(all_scores, p.quantile, p.margin, thr),
                context_max=np.floor(np.quantile(all_ctx, p.context_quantile, axis=0)).astype(int).tolist(),
                top_score=float(all_scores.max()),
                families={k: v for k, v in fam_count.items()},
            )
        sources = sorted(
            ((a, len(v), sum(x >= thr for x in v), max(v)) for a, v in by_src.items()),
            key=lambda t: (-t[2], -t[3], t[0]),
        )
        n = len(self.seen)
        warnings = []
        n_attack = sum(fam_count[f] for f in ATTACK_FAMILIES)
        if n and len(flagged) > p.warn_flagged_share * n:
            warnings.append(
                f"{len(flagged)} of {n} flows ({100 * len(flagged) / n:.1f} %) were flagged by the bundle: "
                "is this traffic really normal?"
            )
        ranked = sorted(attack_sources.items(), key=lambda kv: -sum(kv[1].values()))
        worst = ", ".join(
            f"{a} ({', '.join(f'{c} {FAMILY_INFO[f].signature[11:]}' for f, c in fams.most_common(2))})"
            for a, fams in ranked[:3]
        )
        top = sum(ranked[0][1].values()) if ranked else 0
        if top >= p.refuse_source_flows:
            msg = (
                f"the learning traffic looks like an attack: {n_attack} flagged flows are named a scan, "
                f"flood or brute force, {top} of them from one source; from {worst}"
            )
            if not p.force:
                raise LearnRefused(msg + "; remove that traffic (or pass --force to learn it anyway)")
            warnings.append(msg + " (learnt anyway: --force)")
        elif n_attack >= p.warn_attack_flows:
            warnings.append(
                f"{n_attack} flagged flows are named a scan, flood or brute force (from {worst}): "
                "these families stay alerting on services where learning did not see them"
            )
        site = Site(
            bundle=bundle_identity(self.model.bundle),
            services=services,
            site=site_wide,
            by_address=p.by_address,
            min_flows=p.min_flows,
            learned={
                "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "captures": list(captures),
                "flows": n,
                "flagged": len(flagged),
                "threshold": thr,
                "quantile": p.quantile,
                "margin": p.margin,
            },
        )
        return LearnResult(
            site=site,
            flows=n,
            flagged=len(flagged),
            per_service={k: (v.flows, v.flagged) for k, v in services.items()},
            sources=sources,
            families=dict(fam_count),
            attack_sources=dict(attack_sources),
            warnings=warnings,
        )


def _pipeline(cfg: Any, model: Any, learner: Learner, iface: str | None) -> Any:
    from edge_nids.agent.pipeline import Pipeline
    from edge_nids.agent.stats import AgentStats

    pipe = Pipeline(cfg, model, None, None, AgentStats(), iface)
    pipe.on_verdict = learner.observe
    return pipe


def learn_pcaps(
    cfg: Any, model: Any, families: FamilyModel, pcaps: Iterable[str], params: LearnParams
) -> LearnResult:
    """Learn from capture files (each replayed on its own, as ``edge-nids run --pcap`` would)."""
    from edge_nids.agent.pipeline import replay_capture

    learner = Learner(model, families, params)
    names = []
    for path in pcaps:
        replay_capture(_pipeline(cfg, model, learner, None), path)
        names.append(str(path))
        log.info("learnt from %s: %d flows so far", path, len(learner.seen))
    return learner.result(names)


def learn_live(
    cfg: Any, model: Any, families: FamilyModel, iface: str, duration_s: float, params: LearnParams
) -> LearnResult:
    """Learn from ``duration_s`` seconds of live traffic on ``iface`` (Ctrl-C or SIGTERM ends early)."""
    from edge_nids.agent.capture import LiveCapture, compile_bpf

    c = cfg.capture
    bpf = compile_bpf(c.bpf, iface) if c.bpf else None
    learner = Learner(model, families, params)
    pipe = _pipeline(cfg, model, learner, iface)
    stop = []
    old = signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    cap = LiveCapture.from_config(iface, c, bpf)
    end = time.monotonic() + duration_s
    try:
        while not stop and time.monotonic() < end:
            r, _, _ = select.select([cap.fileno()], [], [], 0.1)
            if r:
                for rec in cap.read(512):
                    pipe.packet(rec)
            pipe.tick(max(time.time_ns() // 1000, pipe.now_us))
    except KeyboardInterrupt:
        log.info("learning stopped early")
    finally:
        cap.close()
        signal.signal(signal.SIGTERM, old)
    pipe.finish()
    return learner.result([f"live:{iface}"])


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``24h``, ``7d`` → seconds; ValueError on anything else."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    mult = units.get(t[-1:], None)
    num = t[:-1] if mult else t
    try:
        v = float(num) * (mult or 1)
    except ValueError:
        raise ValueError(f"duration {text!r}: use a number with s, m, h or d (e.g. 24h)") from None
    if v <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return v


def format_report(r: LearnResult, top: int = 10) -> str:
    """What learning saw, for the operator to check before trusting the site file."""
    lines = [f"learnt {r.flows} flows, {r.flagged} flagged by the bundle; {len(r.per_service)} services"]
    lines.append(f"  {'service':<28} {'flows':>7} {'flagged':>8} {'level':>7}")
    for key, (n, k) in sorted(r.per_service.items(), key=lambda kv: -kv[1][0])[:top]:
        b = r.site.services[key]
        used = "" if n >= r.site.min_flows else "  (too few flows: not used)"
        lines.append(f"  {key:<28} {n:>7} {k:>8} {b.level:>7.3f}{used}")
    if len(r.per_service) > top:
        lines.append(f"  ... and {len(r.per_service) - top} more services")
    lines.append("highest-scoring sources:")
    lines.append(f"  {'source':<40} {'flows':>7} {'flagged':>8} {'top score':>10}")
    for a, n, k, s in r.sources[:top]:
        lines.append(f"  {a:<40} {n:>7} {k:>8} {s:>10.3f}")
    if r.families:
        lines.append(
            "families of flagged flows: " + ", ".join(f"{f} {c}" for f, c in sorted(r.families.items()))
        )
    for w in r.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)
