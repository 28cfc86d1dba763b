"""The paper's CNN-LSTM, its CNN-only and LSTM-only baselines, and a device-sized variant (tf-keras).

Every model takes preprocessed rows ``[batch, n_features]`` (float32 in [0, 1]),
treats them as a 1-channel sequence and ends in a softmax over the classes.
``unroll=True`` with a static ``batch_size`` gives LSTMs that convert to TFLite
as plain ops (what int8 quantization needs).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_SEED", "MODELS", "build_model", "ensemble", "keras_module"]

DEFAULT_SEED = 42


def keras_module() -> Any:
    """``tf_keras`` (Keras 2), with ``TF_USE_LEGACY_KERAS=1`` set before TensorFlow loads."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tf_keras

    return tf_keras


def _head(keras: Any, x: Any, n_classes: int, dropout: float) -> Any:
    x = keras.layers.Dense(32, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.layers.Dense(n_classes, activation="softmax", name="softmax")(x)


def _cnn_lstm(keras: Any, x: Any, n_classes: int, unroll: bool, dropout: float) -> Any:
    """Paper: Conv1D 32 (k 3, relu) → MaxPool 2 → LSTM 64 → Dense 32 → Dropout → softmax."""
    x = keras.layers.Conv1D(32, 3, activation="relu", name="conv1d")(x)
    x = keras.layers.MaxPooling1D(2, name="maxpool")(x)
    x = keras.layers.LSTM(64, unroll=unroll, name="lstm")(x)
    return _head(keras, x, n_classes, dropout)


def _cnn_lstm_lite(keras: Any, x: Any, n_classes: int, unroll: bool, dropout: float) -> Any:
    """Same layer types, but Conv1D with kernel = stride 4 and MaxPool 2: the LSTM sees
    ``⌊F/8⌋`` steps (9 for 78 features) instead of 38, for fast unrolled int8 inference."""
    x = keras.layers.Conv1D(32, 4, strides=4, activation="relu", name="conv1d")(x)
    x = keras.layers.MaxPooling1D(2, name="maxpool")(x)
    x = keras.layers.LSTM(64, unroll=unroll, name="lstm")(x)
    return _head(keras, x, n_classes, dropout)


def _cnn_lstm_edge(keras: Any, x: Any, n_classes: int, unroll: bool, dropout: float) -> Any:
    """Like ``cnn-lstm-lite`` with Conv1D kernel = stride 8: the LSTM sees ``⌊F/16⌋`` steps
    (4 for 70-78 inputs); the int8 TFLite model fits the device targets (see docs/convert.md)."""
    x = keras.layers.Conv1D(32, 8, strides=8, activation="relu", name="conv1d")(x)
    x = keras.layers.MaxPooling1D(2, name="maxpool")(x)
    x = keras.layers.LSTM(64, unroll=unroll, name="lstm")(x)
    return _head(keras, x, n_classes, dropout)


def _cnn_lstm_lite8(keras: Any, x: Any, n_classes: int, unroll: bool, dropout: float) -> Any:
    """Same layer types; overlapping Conv1D (kernel 6, stride 3) and MaxPool 3: the LSTM sees
    8 steps for 78 features (70 after preprocessing → 8)."""
    x = keras.layers.Conv1D(32, 6, strides=3, activation="relu", name="conv1d")(x)
    x = keras.layers.MaxPooling1D(3, name="maxpool")(x)
    x = keras.layers.LSTM(64, unroll=unroll, name="lstm")(x)
    return _head(keras, x, n_classes, dropout)


def _cnn(keras: Any, x: Any, n_classes: int, unroll: bool, dropout: float) -> Any:
    """CNN-only baseline: two Conv1D 32 (k 3) + MaxPool 2 blocks → Flatten → Dense 32 → softmax."""
    x = keras.layers.Conv1D(32, 3, activation="relu", name="conv1d")(x)
    x = keras.layers.MaxPooling1D(2, name="maxpool")(x)
    x = keras.layers.Conv1D(32, 3, activation="relu", name="conv1d_2")(x)
    x = keras.layers.MaxPooling1D(2, name="maxpool_2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return _head(keras, x, n_classes, dropout)


def _lstm(keras: Any, x: Any, n_classes: int, unroll: bool, dropout: float) -> Any:
    """LSTM-only baseline: LSTM 64 over the F features as F time steps → Dense 32 → softmax."""
    x = keras.layers.LSTM(64, unroll=unroll, name="lstm")(x)
    return _head(keras, x, n_classes, dropout)


#: name → body builder ``(keras, input_tensor, n_classes, unroll, dropout) -> output_tensor``.
MODELS: dict[str, Callable[..., Any]] = {
    "cnn-lstm": _cnn_lstm,
    "cnn": _cnn,
    "lstm": _lstm,
    "cnn-lstm-lite": _cnn_lstm_lite,
    "cnn-lstm-edge": _cnn_lstm_edge,
    "cnn-lstm-lite8": _cnn_lstm_lite8,
}


def build_model(
    name: str,
    n_features: int,
    n_classes: int,
    *,
    unroll: bool = False,
    batch_size: int | None = None,
    seed: int = DEFAULT_SEED,
    lr: float = 1e-3,
    dropout: float = 0.2,
) -> Any:
    """A compiled ``tf_keras.Model`` (Adam, sparse categorical cross-entropy, accuracy).

    ``batch_size`` fixes the batch dimension (needed for TFLite LSTMs); seeds are set
    from ``seed`` so the same call gives the same initial weights.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    keras = keras_module()
    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape=(n_features,), batch_size=batch_size, name="features")
    x = keras.layers.Reshape((n_features, 1), name="reshape")(inp)
    out = MODELS[name](keras, x, n_classes, unroll, dropout)
    model = keras.Model(inp, out, name=name.replace("-", "_"))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def ensemble(members: list[Any], name: str) -> Any:
    """One model whose output is the mean of ``members``' class probabilities (same inputs).

    Each member stays a whole sub-model (``member0``, ``member1``, ...), so its own layers,
    weights and conversion are those of a single model; the TFLite converter writes each
    member's steps out and averages them (:func:`edge_nids.convert.tflite.ensemble_members`).
    """
    keras = keras_module()
    n = int(members[0].input_shape[-1])
    inp = keras.Input(shape=(n,), name="features")
    outs = [keras.Model(m.inputs, m.outputs, name=f"member{i}")(inp) for i, m in enumerate(members)]
    return keras.Model(inp, keras.layers.Average(name="mean")(outs), name=name)
