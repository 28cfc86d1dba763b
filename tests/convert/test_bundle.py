"""Bundle validation: corrupted, edited, mismatched or incomplete bundles give a clear BundleError."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_nids.bundle import BundleError, load_bundle


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit(path: Path, change: Callable[[dict], None]) -> None:
    meta = json.loads((path / "bundle.json").read_text())
    change(meta)
    (path / "bundle.json").write_text(json.dumps(meta))


@pytest.mark.tensorflow
@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("flip_model_byte", r"model\.tflite: sha256 .* corrupted"),
        ("remove_model", r"model\.tflite: missing"),
        ("remove_json", r"bundle\.json: missing"),
        ("truncate_json", r"bundle\.json: not valid JSON"),
        ("fingerprint", r"fingerprint 'deadbeefdeadbeef' does not match"),
        ("schema", r"schema 'unsw-nb15-42' is not one the flow meter computes"),
        ("profile", r"profile 'zeek' is not one of"),
        ("format", r"format version 99 is not supported"),
        ("column", r"input columns not in schema"),
        ("no_labels", r"required field 'labels' is missing"),
        ("threshold", r"threshold 1.5 is not in \[0, 1\]"),
    ],
)
def test_damaged_bundle_is_refused(
    tiny_bundles: dict[str, Path], tmp_path: Path, damage: str, message: str
) -> None:
    b = _copy(tiny_bundles["int8"], tmp_path / "b")
    load_bundle(b)  # intact copy loads
    if damage == "flip_model_byte":
        data = bytearray((b / "model.tflite").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (b / "model.tflite").write_bytes(bytes(data))
    elif damage == "remove_model":
        (b / "model.tflite").unlink()
    elif damage == "remove_json":
        (b / "bundle.json").unlink()
    elif damage == "truncate_json":
        (b / "bundle.json").write_text((b / "bundle.json").read_text()[:200])
    elif damage == "fingerprint":
        _edit(b, lambda m: m["schema"].update(fingerprint="deadbeefdeadbeef"))
    elif damage == "schema":
        _edit(b, lambda m: m["schema"].update(name="unsw-nb15-42"))
    elif damage == "profile":
        _edit(b, lambda m: m["schema"].update(profile="zeek"))
    elif damage == "format":
        _edit(b, lambda m: m.update(format=99))
    elif damage == "column":
        _edit(b, lambda m: m["input_columns"].__setitem__(0, "Bogus Column"))
    elif damage == "no_labels":
        _edit(b, lambda m: m.pop("labels"))
    elif damage == "threshold":
        _edit(b, lambda m: m.update(threshold=1.5))
    with pytest.raises(BundleError, match=message) as info:
        load_bundle(b)
    assert str(b) in str(info.value)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such directory"):
        load_bundle(tmp_path / "absent")


@pytest.mark.parametrize("module", ["edge_nids.bundle", "edge_nids.agent.classifier", "edge_nids.agent"])
def test_device_side_imports_nothing_heavy(module: str) -> None:
    heavy = ("tensorflow", "keras", "tf_keras", "pandas", "sklearn")
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
