"""`edge-nids evaluate` on a converted model bundle (the shipped CIC one, on real CIC rows), on
rows of the wrong schema, and on a broken one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_nids.cli import main


def _shipped_bundle(repo_root: Path, name: str = "cnn-lstm-edge-cic-int8") -> Path:
    path = repo_root / "models" / name
    if not (path / "bundle.json").is_file():
        pytest.skip(f"no model bundle {path}")
    return path


@pytest.mark.shared_data
def test_evaluate_bundle_on_real_rows(
    repo_root: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ai_edge_litert")
    bundle = _shipped_bundle(repo_root)
    head = shared_data / "cic-ids2017/MachineLearningCVE/day_heads_rdube/th1_Thursday-Morning-WebAttacks.csv"
    capsys.readouterr()
    assert main(["evaluate", str(bundle), "--data", str(head), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["n"] == sum(v["n"] for v in m["per_class_recall"].values()) > 900
    assert m["tp"] + m["fn"] == 7  # the seven web-attack rows of that day head
    assert 0.0 <= m["fpr"] <= 1.0 and m["labels"] == ["benign", "attack"]


@pytest.mark.shared_data
def test_rows_of_another_schema_are_a_clear_error(
    repo_root: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ai_edge_litert")
    bundle = _shipped_bundle(repo_root, "cnn-lstm-ctx-int8")  # reads edge-flows-94, not the 78
    head = shared_data / "cic-ids2017/MachineLearningCVE/day_heads_rdube/th1_Thursday-Morning-WebAttacks.csv"
    capsys.readouterr()
    assert main(["evaluate", str(bundle), "--data", str(head)]) == 2
    err = capsys.readouterr().err
    assert "78 feature columns" in err and "edge-flows-94" in err and "Traceback" not in err


def test_broken_bundle_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bundle.json").write_text("{}")
    assert main(["evaluate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edge-nids: error:") and "bundle.json" in err
