"""`edge-nids train` on a few hundred real rows writes every artifact; `evaluate --json` reads it back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from edge_nids.cli import main

pytestmark = [pytest.mark.tensorflow, pytest.mark.shared_data]

ARTIFACTS = (
    "model.keras",
    "preprocess.json",
    "train.json",
    "metrics.json",
    "calibration.npz",
    "test.npz",
    "confusion_matrix.png",
    "roc.png",
    "history.png",
    "report.md",
)


@pytest.fixture(scope="module")
def small_csv(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 BENIGN and 300 attack rows of the real CIC-IDS2017 sample, original text."""
    src = shared_data / "cic-ids2017/MachineLearningCVE/stratified_sample_12001.csv"
    lines = src.read_text(encoding="utf-8", errors="replace").splitlines()
    benign = [ln for ln in lines[1:] if ln.endswith(",BENIGN")][:300]
    attack = [ln for ln in lines[1:] if not ln.endswith(",BENIGN")][:300]
    out = tmp_path_factory.mktemp("data") / "small.csv"
    out.write_text("\n".join([lines[0], *benign, *attack]) + "\n", encoding="utf-8")
    return out


def _train_cnn_argv(csv: Path, out: Path) -> list[str]:
    """``edge-nids train`` arguments for a small CNN on ``csv`` written to ``out``."""
    return ["train", "--dataset", "cic-ids2017", "--data", str(csv), "--model", "cnn", "--out", str(out)]


@pytest.fixture(scope="module")
def model_dir(small_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("tf_keras")
    out = tmp_path_factory.mktemp("model") / "m"
    argv = _train_cnn_argv(small_csv, out)
    extra = ["--max-per-class", "250", "--exclude-feature", "Destination Port"]
    assert main([*argv, "--epochs", "15", "--batch-size", "32", "--lr", "0.003", "--seed", "1", *extra]) == 0
    return out


def test_class_cap_and_excluded_column_are_recorded_and_rebuilt(model_dir: Path, small_csv: Path) -> None:
    """--max-per-class and --exclude-feature reach train.json, the preprocessing and a rebuild."""
    from edge_nids.convert.prune import rebuild_prepared

    train = json.loads((model_dir / "train.json").read_text())
    assert train["max_per_class"] == 250 and train["exclude_features"] == ["Destination Port"]
    per_class: dict[str, int] = {}
    for part in train["split_classes"].values():
        for name, n in part["classes"].items():
            per_class[name] = per_class.get(name, 0) + n
    assert per_class["BENIGN"] == 250 and max(per_class.values()) == 250  # the attack classes are smaller
    kept = sum(per_class.values())
    assert sum(train["split_sizes"].values()) == kept < train["cleaning"]["rows_out"]
    assert f"{kept} of {train['cleaning']['rows_out']} cleaned rows kept" in " ".join(train["notes"])
    assert "Destination Port" in train["input_columns"] and "Destination Port" not in train["model_inputs"]
    pre = json.loads((model_dir / "preprocess.json").read_text())
    port = next(c for c in pre["columns"] if c["name"] == "Destination Port")
    assert port["keep"] is False
    assert "'Destination Port' excluded" in (model_dir / "report.md").read_text()
    prep = rebuild_prepared(train)
    assert prep.split.sizes() == train["split_sizes"]
    assert prep.preprocessor.output_columns == train["model_inputs"]


def test_train_writes_every_artifact(model_dir: Path) -> None:
    from edge_nids.flows.schema import CIC_IDS2017

    for name in ARTIFACTS:
        assert (model_dir / name).exists(), name
    train = json.loads((model_dir / "train.json").read_text())
    assert train["schema_fingerprint"] == CIC_IDS2017.fingerprint
    assert train["input_columns"] == CIC_IDS2017.names
    assert train["profile"] == "cicids2017"
    assert train["labels"] == ["benign", "attack"] and train["attack_label_indices"] == [1]
    assert len(train["data_files"][0]["sha256"]) == 64
    # every cleaned row is in the split but those --max-per-class left out, as the note says
    note = next(n for n in train["notes"] if "--max-per-class" in n)
    kept, cleaned = (int(x) for x in re.search(r"(\d+) of (\d+) cleaned rows kept", note).groups())
    assert cleaned == train["cleaning"]["rows_out"] and sum(train["split_sizes"].values()) == kept
    cal = np.load(model_dir / "calibration.npz")["X"]
    assert cal.dtype == np.float32 and cal.shape[1] == len(train["model_inputs"])
    assert 0.0 <= cal.min() and cal.max() <= 1.0


def test_tiny_model_beats_majority_class(model_dir: Path) -> None:
    metrics = json.loads((model_dir / "metrics.json").read_text())
    test = np.load(model_dir / "test.npz")
    majority = np.bincount(test["y"]).max() / len(test["y"])
    assert metrics["n"] == len(test["y"])
    assert metrics["accuracy"] > majority + 0.1
    assert metrics["roc_auc"] > 0.9


def test_evaluate_json_reproduces_metrics(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["evaluate", str(model_dir), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    saved = json.loads((model_dir / "metrics.json").read_text())
    assert got["confusion_matrix"] == saved["confusion_matrix"]
    assert got["accuracy"] == pytest.approx(saved["accuracy"])


def test_evaluate_on_other_data(
    model_dir: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = shared_data / "cic-ids2017/MachineLearningCVE/day_heads_rdube/th1_Thursday-Morning-WebAttacks.csv"
    capsys.readouterr()
    assert main(["evaluate", str(model_dir), "--data", str(head), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["n"] > 900 and "Web Attack – XSS" in got["per_class_recall"]


def test_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "train",
                "--dataset",
                "cic-ids2017",
                "--data",
                str(tmp_path / "nope.csv"),
                "--out",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "nope.csv: no such file" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "none")]) == 2
    assert "no such model directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "kdd99", "--out", str(tmp_path)])
    assert exc.value.code == 2


def test_multiclass_labels(small_csv: Path, tmp_path: Path) -> None:
    pytest.importorskip("tf_keras")
    out = tmp_path / "mc"
    argv = _train_cnn_argv(small_csv, out)
    assert main([*argv, "--multiclass", "--epochs", "2", "--batch-size", "64"]) == 0
    train = json.loads((out / "train.json").read_text())
    with open(small_csv, encoding="utf-8") as f:
        classes = {line.rsplit(",", 1)[1].strip() for line in list(f)[1:]}
    # cleaning may remove every row of a tiny class, never add one
    assert train["labels"][0] == "BENIGN" and 3 <= len(train["labels"]) <= len(classes)
    assert train["attack_label_indices"] == list(range(1, len(train["labels"])))
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["confusion_matrix"]) == len(train["labels"])
