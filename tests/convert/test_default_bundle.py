"""The shipped default bundle loads, and classifies real CIC-IDS2017 rows as its card states."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_nids.bundle import default_bundle_path, load_bundle
from edge_nids.flows.schema import CIC_IDS2017


def test_default_bundle_loads_and_is_int8() -> None:
    b = load_bundle(default_bundle_path())
    assert b.fingerprint == CIC_IDS2017.fingerprint and b.profile == "cicids2017"
    assert b.meta["quantization"]["mode"] == "int8"
    assert b.model_path.stat().st_size <= 40 * 1024  # issue 4: <= 40 KB
    assert b.meta["model"]["batch_sizes"] == "dynamic"
    card = (default_bundle_path().parent / "README.md").read_text()
    assert b.name in card


@pytest.mark.shared_data
@pytest.mark.tensorflow
def test_default_bundle_accuracy_on_its_real_test_rows(shared_data: Path) -> None:
    """Rebuild the held-out split from the bundle's training record and classify the raw rows."""
    pytest.importorskip("pandas", reason="rebuilding the split needs the train extra")
    from edge_nids.agent.classifier import Classifier
    from edge_nids.convert.prune import rebuild_prepared

    path = default_bundle_path()
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
