"""The shipped bundles load as their model card states; the CIC-trained one classifies real
CIC-IDS2017 rows as stated (the default is checked on the lab's demo capture by
tests/lab/test_demo_detection.py and on real captures by docs/detection.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_nids.bundle import default_bundle_path, load_bundle
from edge_nids.flows.schema import CIC_IDS2017, EDGE_FLOWS

MODELS = Path(__file__).resolve().parents[2] / "models"
CIC_BUNDLE = MODELS / "cnn-lstm-edge-cic-int8"
#: bundle -> (feature schema, flow-meter profile, quantization mode, most bytes of model.tflite)
SHIPPED = {
    # the paper's stack (13 LSTM steps written out): 57,824 bytes; the 4-step variant was 38,904
    "cnn-lstm-ctx-int8": (EDGE_FLOWS, "corrected", "int8", 64 * 1024),
    "cnn-lstm-edge-cic-int8": (CIC_IDS2017, "cicids2017", "int8", 40 * 1024),
}


def test_default_is_the_context_int8_bundle() -> None:
    assert default_bundle_path().name == "cnn-lstm-ctx-int8"
    card = (MODELS / "README.md").read_text()
    assert "## cnn-lstm-ctx-int8 (default)" in card


def test_every_bundle_in_models_is_listed_here() -> None:
    assert {p.parent.name for p in MODELS.glob("*/bundle.json")} == set(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_bundles_load_as_their_card_says(name: str) -> None:
    schema, profile, mode, most_bytes = SHIPPED[name]
    b = load_bundle(MODELS / name)
    assert b.name == name
    assert b.schema_name == schema.name and b.fingerprint == schema.fingerprint and b.profile == profile
    assert b.meta["quantization"]["mode"] == mode
    assert b.model_path.stat().st_size <= most_bytes
    assert b.meta["model"]["batch_sizes"] == "dynamic"
    assert f"## {name}" in (MODELS / "README.md").read_text()


@pytest.mark.shared_data
@pytest.mark.tensorflow
def test_cic_bundle_accuracy_on_its_real_test_rows(shared_data: Path) -> None:
    """Rebuild the held-out split from the bundle's training record and classify the raw rows."""
    pytest.importorskip("pandas", reason="rebuilding the split needs the train extra")
    from edge_nids.agent.classifier import Classifier
    from edge_nids.convert.prune import rebuild_prepared

    path = CIC_BUNDLE
    train = json.loads((path / "training" / "train.json").read_text())
    prep = rebuild_prepared(train, shared_data)
    raw, y = prep.raw("test"), prep.y[prep.split.test]
    clf = Classifier(path)
    verdicts = clf.verdicts(raw)
    acc = 100 * float(np.mean(verdicts == (y == 1)))
    stated = clf.bundle.meta["metrics"]["tflite"]
    assert len(y) == stated["rows"]
    assert acc == pytest.approx(stated["tflite_accuracy"], abs=1e-9)
    assert acc >= 97.0  # the model card's figure, rounded down
