"""The stages after the detector, as the pipeline uses them: family, site baseline, explanation.

:func:`load_stages` loads them for a model (the shipped family trees, an
:class:`~edge_nids.agent.explain.Explainer` over the model's own classifier, the
configured site file checked against the bundle); :class:`Stages` gives the pipeline
the few calls it makes: the families of a batch's flagged flows, whether the site
silences a flagged flow, the EVE ``alert`` fields of a family, and the explanation
of an alert when it is written (:meth:`Stages.finish_alert`: aggregated repeats are
never explained, only written lines).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_nids.agent.explain import Explainer, ReferenceError
from edge_nids.agent.families import FAMILY_INFO, FamilyError, FamilyModel, load_family_model
from edge_nids.agent.site import Site, SiteError, load_site

__all__ = ["EXPLAIN_KEY", "StageError", "Stages", "load_stages"]

log = logging.getLogger(__name__)

#: Key of an alert record that holds (raw features, score) until the alert is written.
EXPLAIN_KEY = "_explain"


class StageError(ValueError):
    """A stage after the detector cannot be loaded (family model, references, site file)."""


_BY_SID = {info.signature_id: fam for fam, info in FAMILY_INFO.items()}

#: Explanations per second of capture time (sustained, and burst): a spoofed flood makes a new
#: alert group, so a new written line, per packet; each explanation costs ~0.3 ms (bench).
EXPLAIN_RATE_PER_S = 50.0
EXPLAIN_BURST = 200.0


@dataclass
class Stages:
    """Family trees, explainer and (optional) site baseline for one loaded model."""

    families: FamilyModel | None  #: None: the family model could not be loaded; every alert is "other"
    explainer: Explainer | None
    site: Site | None = None
    explained: int = 0  #: alert lines explained
    unexplained: int = 0  #: alert lines over the explanation budget
    _tokens: float = EXPLAIN_BURST
    _last_us: int = 0

    def family_names(self, flows: Sequence[Any], rows: np.ndarray | None = None) -> list[str]:
        """Families of flows (from their ``EDGE_FLOWS`` values), in one call; ``rows``: those
        values when the caller has them already ([len(flows), 94], float64)."""
        if not flows:
            return []
        if self.families is None:
            return ["other"] * len(flows)
        if rows is None:
            rows = np.array([f.edge_features() for f in flows], dtype=np.float64)
        return self.families.names(rows)

    def silenced(self, flow: Any, score: float, family: str) -> bool:
        """True when the site file says this flagged flow is like the site's normal traffic."""
        return self.site is not None and self.site.suppresses(flow, score, family)

    @staticmethod
    def alert_fields(family: str) -> dict[str, Any]:
        """EVE ``alert`` fields of a family: ``signature``, ``category``, ``signature_id``."""
        info = FAMILY_INFO[family]
        return {"signature_id": info.signature_id, "signature": info.signature, "category": info.category}

    def _budget(self, ts_us: int) -> bool:
        """Take one explanation from the token bucket (refilled in capture time)."""
        if ts_us > self._last_us:
            gained = (ts_us - self._last_us) / 1e6 * EXPLAIN_RATE_PER_S if self._last_us else EXPLAIN_BURST
            self._tokens = min(EXPLAIN_BURST, self._tokens + gained)
            self._last_us = ts_us
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def finish_alert(self, rec: dict[str, Any]) -> dict[str, Any]:
        """An alert line about to be written (a copy): ``alert.context.family`` from its
        signature id, the stashed row becomes ``alert.context.explanation`` (over the budget:
        ``alert.context.explanation_skipped``)."""
        rec = dict(rec)
        stash = rec.pop(EXPLAIN_KEY, None)
        alert = rec["alert"] = dict(rec["alert"])  # the aggregator keeps the original
        context = alert["context"] = dict(alert.get("context") or {})
        family = _BY_SID.get(int(alert.get("signature_id", 0)))
        if family is not None:
            context["family"] = family
        if stash is None or self.explainer is None:
            return rec
        x, score, ts_us = stash
        if self._budget(ts_us):
            self.explained += 1
            # kept as float32 while the alert waits (10,000 groups); float64 only if explained
            context["explanation"] = self.explainer.explain(np.asarray(x, dtype=np.float64), score)
        else:
            self.unexplained += 1
            context["explanation_skipped"] = f"more than {EXPLAIN_RATE_PER_S:g} alert lines/s to explain"
        return rec


def load_stages(model: Any, site_path: str | None = None) -> Stages:
    """The stages for a loaded model (``model.classifier``, ``model.bundle``); StageError on a problem.

    A bundle whose references file is broken still runs, unexplained, and a family model that
    cannot be used leaves every alert named "other" (both logged): neither stops detection.
    """
    families: FamilyModel | None
    try:
        families = load_family_model()
    except FamilyError as exc:
        log.error("alerts will be named by no attack family: %s", exc)
        families = None
    try:
        explainer: Explainer | None = Explainer(model.classifier)
    except ReferenceError as exc:
        log.error("alerts will carry no explanation: %s", exc)
        explainer = None
    site = None
    if site_path:
        try:
            site = load_site(site_path)
            site.check(model.bundle)
        except SiteError as exc:
            raise StageError(str(exc)) from None
        log.info(
            "site %s: %d services learnt (%s)",
            site_path,
            len(site.services),
            site.learned.get("created", "?"),
        )
    return Stages(families, explainer, site)
