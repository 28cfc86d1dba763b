"""Model bundle: a directory holding ``model.tflite`` and ``bundle.json`` (numpy/json only).

``edge-nids convert`` writes a bundle; the agent, ``evaluate`` and the verification
step read it with :func:`load_bundle`, which checks every field the device relies on
(format version, feature schema + fingerprint + flow-meter profile, columns,
preprocessing, labels, threshold, sha256 of ``model.tflite``) and raises
:class:`BundleError` naming the file and the problem. Nothing here imports
TensorFlow, so the agent can import it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_nids.flows.schema import EDGE_FLOWS, PROFILES, get_schema
from edge_nids.preprocess import Preprocessor

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_JSON",
    "MODEL_FILE",
    "Bundle",
    "BundleError",
    "default_bundle_path",
    "load_bundle",
    "set_decision",
    "sha256_file",
    "write_bundle",
]

#: Version of the ``bundle.json`` layout; bump on an incompatible change.
BUNDLE_FORMAT = 1
BUNDLE_JSON = "bundle.json"
MODEL_FILE = "model.tflite"
#: Name of the shipped default bundle inside ``edge_nids/models`` (the repo's ``models/``).
DEFAULT_BUNDLE = "cnn-lstm-ctx-int8"

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "format": int,
    "model_file": str,
    "schema": dict,
    "input_columns": list,
    "preprocessing": dict,
    "labels": list,
    "attack_label_indices": list,
    "threshold": (int, float),
    "quantization": dict,
    "metrics": dict,
    "sha256": dict,
}


class BundleError(Exception):
    """A model bundle is missing, corrupted, or made for features the flow meter cannot compute."""


@dataclass(frozen=True)
class Bundle:
    """A validated model bundle; ``meta`` is the full ``bundle.json`` content."""

    path: Path
    meta: dict[str, Any]
    preprocessor: Preprocessor

    @property
    def model_path(self) -> Path:
        """The ``.tflite`` file."""
        return self.path / str(self.meta["model_file"])

    @property
    def schema_name(self) -> str:
        return str(self.meta["schema"]["name"])

    @property
    def fingerprint(self) -> str | None:
        return self.meta["schema"].get("fingerprint")

    @property
    def profile(self) -> str | None:
        """Flow-meter behaviour the model was trained on (``cicids2017`` or ``corrected``)."""
        return self.meta["schema"].get("profile")

    @property
    def input_columns(self) -> list[str]:
        """Raw feature columns the preprocessing reads, in order."""
        return list(self.meta["input_columns"])

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])

    @property
    def attack_label_indices(self) -> list[int]:
        return [int(i) for i in self.meta["attack_label_indices"]]

    @property
    def threshold(self) -> float:
        """Decision threshold on the attack probability (alert when ``score >= threshold``)."""
        return float(self.meta["threshold"])

    @property
    def escalation(self) -> Any:
        """The bundle's :class:`~edge_nids.agent.escalate.EscalationRule`, or None (no field)."""
        d = self.meta.get("escalation")
        if d is None:
            return None
        from edge_nids.agent.escalate import EscalationRule

        return EscalationRule.from_dict(d)

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.path.name)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def set_decision(path: str | Path, threshold: float, escalation: dict[str, Any] | None) -> Bundle:
    """Set a bundle's decision rule (``threshold``; ``escalation`` object, or None to remove
    it) in its bundle.json, the model untouched; returns the bundle read back (validated)."""
    from edge_nids.agent.escalate import EscalationRule

    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold {threshold} is not in [0, 1]")
    if escalation is not None:
        EscalationRule.from_dict(escalation)  # ValueError naming what is wrong, before writing
    meta_file = Path(path) / BUNDLE_JSON
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    meta["threshold"] = float(threshold)
    if escalation is None:
        meta.pop("escalation", None)
    else:
        meta["escalation"] = dict(escalation)
    tmp = meta_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(meta_file)
    return load_bundle(path)


def write_bundle(out: str | Path, model: bytes, meta: dict[str, Any]) -> Path:
    """Write ``model`` (the .tflite bytes) and ``meta`` as a bundle directory; returns its path.

    ``meta`` gets ``format``, ``model_file`` and ``sha256["model.tflite"]`` filled in; the
    result is read back with :func:`load_bundle` so a bundle that does not validate is
    never left behind silently.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).write_bytes(model)
    meta = dict(meta)
    meta["format"] = BUNDLE_FORMAT
    meta["model_file"] = MODEL_FILE
    meta["sha256"] = {**meta.get("sha256", {}), MODEL_FILE: hashlib.sha256(model).hexdigest()}
    (out / BUNDLE_JSON).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    load_bundle(out, require_computable=False)
    return out


def _fail(where: Path, problem: str) -> BundleError:
    return BundleError(f"model bundle {where}: {problem}")


def _check_schema(meta: dict[str, Any], where: Path, require_computable: bool) -> None:
    schema = meta["schema"]
    name, fp, profile = schema.get("name"), schema.get("fingerprint"), schema.get("profile")
    if not isinstance(name, str):
        raise _fail(where, "schema.name is missing")
    try:
        known = get_schema(name)
    except KeyError:
        if require_computable:
            raise _fail(
                where, f"feature schema {name!r} is not one the flow meter computes; cannot run it live"
            ) from None
        return
    if fp != known.fingerprint:
        raise _fail(
            where,
            f"schema fingerprint {fp!r} does not match {name} ({known.fingerprint}): "
            "the model was made for a different column list",
        )
    if profile not in PROFILES:
        raise _fail(where, f"flow-meter profile {profile!r} is not one of {', '.join(PROFILES)}")
    if name == EDGE_FLOWS.name and profile != "corrected":
        raise _fail(where, f"schema {name} (state and context columns) needs flow-meter profile 'corrected'")
    unknown = [c for c in meta["input_columns"] if c not in known.names]
    if unknown:
        raise _fail(where, f"input columns not in schema {name}: {', '.join(map(repr, unknown[:5]))}")


def load_bundle(path: str | Path, *, require_computable: bool = True, verify_hash: bool = True) -> Bundle:
    """Read and validate a bundle directory (or its ``bundle.json``).

    ``require_computable``: refuse bundles whose feature schema/profile the flow meter
    cannot compute (the agent's case); ``False`` allows offline models (e.g. UNSW-NB15).
    Raises :class:`BundleError` with a message naming the file and the problem.
    """
    path = Path(path)
    if path.name == BUNDLE_JSON and path.is_file():
        path = path.parent
    meta_file = path / BUNDLE_JSON
    if not path.exists():
        raise _fail(path, "no such directory")
    if not path.is_dir():
        raise _fail(path, "not a directory (a bundle is a directory with bundle.json and model.tflite)")
    try:
        text = meta_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(meta_file, "missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(meta_file, f"cannot read: {exc}") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(meta_file, f"not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise _fail(meta_file, "not a JSON object")
    for key, typ in _REQUIRED.items():
        if key not in meta:
            raise _fail(meta_file, f"required field {key!r} is missing")
        if not isinstance(meta[key], typ) or isinstance(meta[key], bool):
            raise _fail(meta_file, f"field {key!r} has the wrong type ({type(meta[key]).__name__})")
    if meta["format"] != BUNDLE_FORMAT:
        raise _fail(
            meta_file,
            f"format version {meta['format']} is not supported (this edge-nids reads {BUNDLE_FORMAT})",
        )
    _check_schema(meta, meta_file, require_computable)
    try:
        pre = Preprocessor.from_dict(meta["preprocessing"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(meta_file, f"bad preprocessing: {exc}") from None
    if pre.input_columns != meta["input_columns"]:
        raise _fail(meta_file, "preprocessing columns differ from input_columns")
    labels, attack = meta["labels"], meta["attack_label_indices"]
    if len(labels) < 2 or not attack or not all(isinstance(i, int) and 0 <= i < len(labels) for i in attack):
        raise _fail(meta_file, f"labels {labels} / attack_label_indices {attack} are inconsistent")
    if not 0.0 <= float(meta["threshold"]) <= 1.0:
        raise _fail(meta_file, f"threshold {meta['threshold']} is not in [0, 1]")
    if meta.get("escalation") is not None:
        from edge_nids.agent.escalate import EscalationRule

        try:
            EscalationRule.from_dict(meta["escalation"])
        except ValueError as exc:
            raise _fail(meta_file, str(exc)) from None
    model_file = path / meta["model_file"]
    if not model_file.is_file():
        raise _fail(model_file, "missing")
    if verify_hash:
        want = meta["sha256"].get(meta["model_file"])
        if not want:
            raise _fail(meta_file, f"no sha256 recorded for {meta['model_file']}")
        got = sha256_file(model_file)
        if got != want:
            raise _fail(
                model_file, f"sha256 {got[:12]}… does not match bundle.json ({want[:12]}…): corrupted"
            )
    return Bundle(path=path, meta=meta, preprocessor=pre)


def default_bundle_path() -> Path:
    """Directory of the default bundle shipped with the package.

    Wheels carry it as package data under ``edge_nids/models/``; in a source checkout
    ``edge_nids/models`` is a symlink to the repository's ``models/`` (also tried directly).
    """
    here = Path(__file__).resolve().parent
    candidates = [Path(__file__).parent / "models" / DEFAULT_BUNDLE, here.parent / "models" / DEFAULT_BUNDLE]
    for c in candidates:
        if (c / BUNDLE_JSON).is_file():
            return c
    raise BundleError(
        f"the default model bundle {DEFAULT_BUNDLE} is not installed (looked in {candidates[0]})"
    )
