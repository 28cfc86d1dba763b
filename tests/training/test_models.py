"""Model shapes and parameter counts (tf-keras)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.tensorflow


def test_cnn_lstm_is_the_papers_model() -> None:
    pytest.importorskip("tf_keras")
    from edge_nids.training.models import build_model

    m = build_model("cnn-lstm", 78, 2)
    kinds = [type(layer).__name__ for layer in m.layers]
    assert kinds == ["InputLayer", "Reshape", "Conv1D", "MaxPooling1D", "LSTM", "Dense", "Dropout", "Dense"]
    # Conv1D 3·32+32, LSTM 4·(64·(32+64)+64), Dense 64·32+32, Dense 32·2+2
    assert m.count_params() == 128 + 24832 + 2080 + 66
    assert m.get_layer("lstm").input_shape == (None, 38, 32)


def test_lite_variant_has_few_lstm_steps_and_static_batch() -> None:
    pytest.importorskip("tf_keras")
    from edge_nids.training.models import MODELS, build_model

    m = build_model("cnn-lstm-lite", 70, 2, unroll=True, batch_size=1)
    assert m.input_shape == (1, 70)
    assert m.get_layer("lstm").input_shape[1] <= 10
    assert m.get_layer("lstm").unroll
    assert m.count_params() <= build_model("cnn-lstm", 70, 2).count_params() * 1.05
    for name in ("cnn", "lstm"):
        assert 15_000 <= build_model(name, 78, 2).count_params() <= 35_000
    assert set(MODELS) >= {"cnn-lstm", "cnn", "lstm", "cnn-lstm-lite"}
    with pytest.raises(ValueError, match="unknown model"):
        build_model("transformer", 78, 2)


def test_same_seed_same_weights() -> None:
    pytest.importorskip("tf_keras")
    import numpy as np

    from edge_nids.training.models import build_model

    a = build_model("cnn", 40, 2, seed=5).get_weights()
    b = build_model("cnn", 40, 2, seed=5).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
