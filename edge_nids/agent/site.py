"""Site baselines: what normal traffic of one network scores, per service, so it stops alerting.

A site file (``edge-nids learn``, applied with ``edge-nids run --site`` / ``model.site``)
holds, per service (protocol and server port, optionally also the server address),
how many flows learning saw, a high quantile of their attack scores, the largest
context counts (``flows.context.CONTEXT_COLUMNS``) among them and the families the
family stage gave its flagged flows; and the same for the whole site (``site``
baseline: context bounds there are a high quantile, not the largest value, so that
one busy peer-to-peer host does not open the bounds for everyone). At run time a
flow the bundle flags is let through silently (:meth:`Site.suppresses`) only when
all hold, with its service's baseline if learning saw ``min_flows`` flows of it,
else the site's:

* its score is below the learnt level (quantile + margin, never below the threshold
  in force when learnt);
* none of its context counts exceeds the learnt bound (a scan, flood or guessing
  run from a host is many more flows than the normal traffic of it);
* the family stage names it ``other``, or (service baselines only) a family that
  learning already saw on that service's flagged flows (a poller that looks like
  brute force); a scan, flood or brute force on a service never learnt as such
  always alerts.

So a site file can only silence flows like the learnt ones; a scan, flood or brute
force the bundle catches still alerts unless its service's normal traffic was
already named so, and then only within that traffic's own volumes. The file records
the bundle it was learnt for (name and the sha256 of its model); :meth:`Site.check`
refuses another bundle.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_nids.flows.context import CONTEXT_COLUMNS

__all__ = [
    "ATTACK_FAMILIES",
    "SITE_FORMAT",
    "ServiceBaseline",
    "Site",
    "SiteError",
    "bundle_identity",
    "learn_levels",
    "load_site",
    "require_context",
    "service_key",
]

SITE_FORMAT = 1

#: Families a site file never silences.
ATTACK_FAMILIES: frozenset[str] = frozenset(
    {"scan", "syn_flood", "udp_flood", "http_flood", "slow_dos", "brute_force"}
)

_PROTO = {socket.IPPROTO_TCP: "tcp", socket.IPPROTO_UDP: "udp", socket.IPPROTO_ICMP: "icmp", 58: "icmp6"}


class SiteError(ValueError):
    """A site file is unreadable, malformed, or learnt for another model bundle."""


def service_key(flow: Any, by_address: bool = False) -> str:
    """The service of a flow: ``tcp/443``, or ``tcp/443@192.0.2.10`` with the server address."""
    proto = _PROTO.get(flow.proto, str(flow.proto))
    key = f"{proto}/{flow.dport}"
    return f"{key}@{flow.dst_ip}" if by_address else key


def require_context(bundle: Any) -> None:
    """SiteError for a bundle whose flow profile gives no context counts (``cicids2017``).

    Without them a site file cannot tell a flood from the learnt traffic of its service
    (measured with the CIC bundle: a site file learnt on benign captures silenced the
    demo's SYN flood), so site files are refused for such bundles.
    """
    if (bundle.profile or "cicids2017") != "corrected":
        raise SiteError(
            f"model bundle {bundle.name} uses flow profile {bundle.profile or 'cicids2017'!r}, which gives "
            "flows no context counts; site files need a bundle of the 'corrected' profile"
        )


def bundle_identity(bundle: Any) -> dict[str, str]:
    """What a site file records of a bundle: its name and its model file's sha256."""
    meta = bundle.meta
    return {
        "name": bundle.name,
        "sha256": str((meta.get("sha256") or {}).get(meta.get("model_file", ""), "")),
    }


@dataclass
class ServiceBaseline:
    """What learning saw of one service: flows, flagged flows, score level, largest context counts."""

    flows: int
    flagged: int
    level: float  #: learnt score level: quantile of the scores + margin (capped at 1)
    context_max: list[int]
    top_score: float = 0.0
    families: dict[str, int] = field(default_factory=dict)  #: families of the flagged flows

    def to_dict(self) -> dict[str, Any]:
        return {
            "flows": self.flows,
            "flagged": self.flagged,
            "level": round(self.level, 6),
            "top_score": round(self.top_score, 6),
            "context_max": [int(x) for x in self.context_max],
            "families": dict(sorted(self.families.items())),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServiceBaseline:
        ctx = [int(x) for x in d["context_max"]]
        if len(ctx) != len(CONTEXT_COLUMNS):
            raise SiteError(f"context_max has {len(ctx)} values, expected {len(CONTEXT_COLUMNS)}")
        fams = {str(k): int(v) for k, v in dict(d.get("families", {})).items()}
        return cls(
            int(d["flows"]), int(d["flagged"]), float(d["level"]), ctx, float(d.get("top_score", 0.0)), fams
        )


@dataclass
class Site:
    """A learnt site: baselines per service and the bundle they were learnt with."""

    bundle: dict[str, str]
    services: dict[str, ServiceBaseline]
    site: ServiceBaseline | None = None  #: the whole site, for services seen too little
    by_address: bool = False
    min_flows: int = 20
    learned: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    suppressed: int = 0  #: flagged flows let through since loading

    def check(self, bundle: Any) -> None:
        """SiteError unless ``bundle`` is the one this site was learnt with (and gives context)."""
        require_context(bundle)
        have = bundle_identity(bundle)
        if have["sha256"] != self.bundle.get("sha256"):
            raise SiteError(
                f"site file {self.path or '(given)'} was learnt for model bundle "
                f"{self.bundle.get('name')} (sha256 {str(self.bundle.get('sha256'))[:12]}…), but the "
                f"agent runs {have['name']} (sha256 {have['sha256'][:12]}…): learn the site again "
                "with this bundle (edge-nids learn ... --model BUNDLE)"
            )

    def baseline(self, flow: Any) -> ServiceBaseline | None:
        """The learnt baseline of the flow's service, if learning saw enough of it."""
        b = self.services.get(service_key(flow, self.by_address))
        return b if b is not None and b.flows >= self.min_flows else None

    def suppresses(self, flow: Any, score: float, family: str) -> bool:
        """True when a flow the bundle flagged is like the learnt traffic of its service (see module doc)."""
        b = self.baseline(flow)
        if b is not None:
            known = family not in ATTACK_FAMILIES or family in b.families
        else:
            b, known = self.site, family not in ATTACK_FAMILIES
        if b is None or not known or score >= b.level:
            return False
        ctx = flow.context
        if any(c > m for c, m in zip(ctx, b.context_max, strict=True)):
            return False
        self.suppressed += 1
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SITE_FORMAT,
            "bundle": dict(self.bundle),
            "by_address": self.by_address,
            "min_flows": self.min_flows,
            "learned": self.learned,
            "site": self.site.to_dict() if self.site is not None else None,
            "services": {k: v.to_dict() for k, v in sorted(self.services.items())},
        }

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: str = "") -> Site:
        try:
            if d.get("format") != SITE_FORMAT:
                raise SiteError(f"format {d.get('format')!r} is not {SITE_FORMAT}")
            services = {str(k): ServiceBaseline.from_dict(v) for k, v in d["services"].items()}
            return cls(
                bundle={"name": str(d["bundle"]["name"]), "sha256": str(d["bundle"]["sha256"])},
                services=services,
                site=ServiceBaseline.from_dict(d["site"]) if d.get("site") else None,
                by_address=bool(d.get("by_address", False)),
                min_flows=int(d.get("min_flows", 20)),
                learned=dict(d.get("learned", {})),
                path=path,
            )
        except SiteError as exc:
            raise SiteError(f"site file {path}: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SiteError(f"site file {path}: missing or bad field ({exc})") from None


def load_site(path: str | Path) -> Site:
    """Read a site file; :class:`SiteError` with the path and the problem."""
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SiteError(f"site file {p}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SiteError(f"site file {p}: cannot read ({exc})") from None
    if not isinstance(d, dict):
        raise SiteError(f"site file {p}: not a JSON object")
    return Site.from_dict(d, str(p))


def learn_levels(scores: np.ndarray, quantile: float, margin: float, floor: float) -> float:
    """A service's score level: the ``quantile`` of its learnt scores + ``margin``, at least ``floor``,
    at most 1 (a score of 1 is never below it)."""
    q = float(np.quantile(scores, quantile)) if len(scores) else 0.0
    return min(1.0, max(floor, q + margin))
