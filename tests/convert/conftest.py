"""Fixtures for the converter tests: one tiny MODEL_DIR trained in seconds on real CIC rows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

__all__: list[str] = []


@pytest.fixture(scope="session")
def tiny_model_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``edge-nids train`` on 1,500 stratified CIC-IDS2017 rows, 5 epochs (cnn-lstm-lite)."""
    pytest.importorskip("tf_keras", reason="needs the train extra (TensorFlow, tf-keras)")
    from edge_nids.cli import main

    out = tmp_path_factory.mktemp("tiny") / "model"
    argv = [
        "train",
        "--dataset",
        "cic-ids2017",
        "--data",
        str(shared_data / "cic-ids2017" / "MachineLearningCVE" / "stratified_sample_12001.csv"),
        "--model",
        "cnn-lstm-lite",
        "--max-rows",
        "1500",
        "--epochs",
        "5",
        "--patience",
        "5",
        "--out",
        str(out),
    ]
    # train.json records the command from sys.argv; --prune re-reads --max-rows from it
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["edge-nids", *argv])
        rc = main(argv)
    assert rc == 0
    return out


@pytest.fixture(scope="session")
def tiny_bundles(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny model converted in every mode with static batch signatures b1 + b32, except
    float: the default conversion (one dynamic-batch graph), shared with ``tiny_dynamic``."""
    from edge_nids.convert.pipeline import ConvertConfig, convert_model_dir
    from edge_nids.convert.tflite import MODES

    root = tmp_path_factory.mktemp("bundles")
    out = {}
    for mode in MODES:
        sizes = None if mode == "float" else (1, 32)
        cfg = ConvertConfig(model_dir=tiny_model_dir, mode=mode, out=root / mode, batch_sizes=sizes)
        convert_model_dir(cfg)
        out[mode] = root / mode
    return out


@pytest.fixture(scope="session")
def tiny_dynamic(
    tiny_model_dir: Path, tiny_bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """int8 and float converted the default way (one dynamic-batch graph, LSTM as steps)."""
    from edge_nids.convert.pipeline import ConvertConfig, convert_model_dir

    out = tmp_path_factory.mktemp("dynamic") / "int8"
    convert_model_dir(ConvertConfig(model_dir=tiny_model_dir, mode="int8", out=out))
    return {"int8": out, "float": tiny_bundles["float"]}
