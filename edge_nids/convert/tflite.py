"""tf-keras model → TFLite flatbuffer (builtin ops only).

The model is rebuilt with its LSTMs unrolled (optional). An unrolled LSTM has no
TensorList ops, so by default it converts as ONE graph with a dynamic batch
dimension that the interpreter resizes at run time (XNNPACK included). A fused LSTM
converts to plain builtins only with a static batch dimension: then the model is
traced once per batch size and every batch size becomes one signature (``b1``,
``b256``) of a single ``.tflite`` file, sharing the weights' buffers, and the
:class:`~edge_nids.agent.classifier.Classifier` picks the signature per call.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_nids.training.models import keras_module

__all__ = [
    "MODES",
    "ConversionError",
    "convert_keras",
    "ensemble_members",
    "load_keras_model",
    "op_names",
    "rebuild",
    "stepped_forward",
    "strip_tensor_names",
]

log = logging.getLogger(__name__)

#: Conversion modes: full integer (int8 in/out), float16 weights, dynamic-range int8 weights, float32.
MODES: tuple[str, ...] = ("int8", "float16", "dynamic", "float")

#: Signature name of a graph with a dynamic batch dimension.
_DYNAMIC_KEY = "serving_default"


class ConversionError(Exception):
    """The model cannot be converted as asked (bad input, unsupported op, Flex op)."""


def load_keras_model(path: str | Path) -> Any:
    """Load a tf-keras ``model.keras`` (no optimizer state needed)."""
    keras = keras_module()
    try:
        return keras.models.load_model(str(path), compile=False)
    except (OSError, ValueError) as exc:
        raise ConversionError(f"{path}: cannot load the Keras model ({exc})") from None


def rebuild(model: Any, *, unroll: bool, batch_size: int | None = None) -> Any:
    """Copy of ``model`` (same weights) with LSTM/GRU ``unroll`` set and the batch dimension fixed."""
    keras = keras_module()
    cfg = model.get_config()
    layers = cfg.get("layers", [])
    for layer in layers:
        c = layer.get("config", {})
        if layer.get("class_name") in ("LSTM", "GRU", "SimpleRNN"):
            c["unroll"] = unroll
        if "batch_input_shape" in c and layer.get("class_name") == "InputLayer":
            c["batch_input_shape"] = [batch_size, *list(c["batch_input_shape"])[1:]]
    if isinstance(model, keras.Sequential):
        copy = keras.Sequential.from_config(cfg)
    else:
        copy = keras.Model.from_config(cfg)
    copy.set_weights(model.get_weights())
    return copy


def _representative(X: np.ndarray, batch_sizes: Sequence[int], rows: int) -> Iterator[Any]:
    """Calibration samples for every signature (single rows for b1, row blocks for larger)."""
    X = np.asarray(X, dtype=np.float32)[:rows]
    for b in batch_sizes:
        key = _DYNAMIC_KEY if b == 0 else f"b{b}"
        if b <= 1:
            for i in range(len(X)):
                yield key, {"features": X[i : i + 1]}
        else:
            reps = max(1, len(X) // b)
            for r in range(reps):
                yield key, {"features": np.resize(np.roll(X, -r * b, axis=0), (b, X.shape[1]))}


def convert_keras(
    model: Any,
    mode: str,
    *,
    calibration: np.ndarray | None = None,
    batch_sizes: Sequence[int] | None = None,
    unroll: bool = True,
    calibration_rows: int = 500,
    strip_names: bool = True,
    per_channel: bool = False,
    stepped: bool = True,
) -> bytes:
    """Convert ``model`` (inputs ``[batch, k]``) to a ``.tflite`` flatbuffer in ``mode``.

    ``batch_sizes`` None (or empty): one signature ``serving_default`` with a dynamic
    batch dimension (needs ``unroll``); else one signature ``b<N>`` per static batch
    size. Input ``features``, output ``probs``. int8 needs ``calibration``
    (preprocessed training rows, float32 ``[m, k]``); its weights are quantized per
    tensor unless ``per_channel`` (per-channel scales cost ~3 KB per LSTM weight
    matrix in zero points and scales; same accuracy on the shipped model).
    ``strip_names`` removes tensor names and conversion metadata (see
    :func:`strip_tensor_names`). ``stepped`` (with ``unroll``): trace the LSTM as hand-written
    steps (:func:`stepped_forward`) instead of Keras's unrolled cell, where the model allows.
    """
    if mode not in MODES:
        raise ConversionError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "int8" and (calibration is None or len(calibration) == 0):
        raise ConversionError("int8 needs calibration rows (MODEL_DIR/calibration.npz or --calibration)")
    dynamic = not batch_sizes
    batch_sizes = [0] if dynamic else sorted({int(b) for b in batch_sizes or ()})
    if not dynamic and batch_sizes[0] < 1:
        raise ConversionError(f"batch sizes must be >= 1, got {batch_sizes}")
    if not unroll and dynamic:
        raise ConversionError(
            "a fused LSTM needs a static batch size; pass one, e.g. --batch-sizes 1 (or unroll it)"
        )
    if not unroll and len(batch_sizes) > 1:
        raise ConversionError(
            "a fused LSTM supports a single batch size (its state tensors break multi-signature "
            "calibration); pass one batch size, e.g. --batch-sizes 1"
        )
    import tensorflow as tf

    shape = list(model.input_shape)
    if len(shape) != 2:
        raise ConversionError(f"model input shape {shape} is not [batch, features]")
    k = int(shape[1])
    module = tf.Module()
    members = ensemble_members(model)
    if members:  # the mean of the members' probabilities, each member converted as on its own
        module.members = [rebuild(m, unroll=unroll, batch_size=None) for m in members]
        parts = [_forward(m, unroll and stepped) for m in module.members]

        def forward(x: Any) -> Any:
            total = parts[0](x)
            for f in parts[1:]:
                total = total + f(x)  # ADD (ADD_N has no int8 kernel: it would dequantize)
            return total * (1.0 / len(parts))

    else:
        module.model = rebuild(model, unroll=unroll, batch_size=None)
        forward = _forward(module.model, unroll and stepped)

    def make(b: int) -> Any:
        spec = tf.TensorSpec([b or None, k], tf.float32, name="features")
        return tf.function(lambda features: {"probs": forward(features)}, input_signature=[spec])

    signatures = {(_DYNAMIC_KEY if b == 0 else f"b{b}"): make(b) for b in batch_sizes}
    for key, fn in signatures.items():
        setattr(module, key, fn)
    with tempfile.TemporaryDirectory(prefix="edge-nids-convert-") as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=list(signatures))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if mode == "int8":
            assert calibration is not None
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            calib = np.asarray(calibration, dtype=np.float32)
            if calib.ndim != 2 or calib.shape[1] != k:
                raise ConversionError(f"calibration rows have shape {calib.shape}, the model needs [n, {k}]")
            conv.representative_dataset = lambda: _representative(calib, batch_sizes, calibration_rows)
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
            if not per_channel:
                conv._experimental_disable_per_channel = True
        elif mode == "float16":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
        elif mode == "dynamic":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        try:
            flat = conv.convert()
        except Exception as exc:  # the converter raises ConverterError and plain Exceptions
            raise ConversionError(f"TFLite conversion ({mode}) failed: {str(exc).splitlines()[0]}") from exc
    bad = [op for op in op_names(flat) if op.startswith("Flex") or op not in _builtin_names()]
    if bad:
        raise ConversionError(f"converted model needs non-builtin ops: {', '.join(sorted(set(bad)))}")
    return strip_tensor_names(bytes(flat)) if strip_names else bytes(flat)


def ensemble_members(model: Any) -> list[Any] | None:
    """The members of an ensemble model (an input, K sub-models of it, the ``Average`` of
    their outputs: :func:`edge_nids.training.models.ensemble`), else None."""
    layers = [la for la in model.layers if la.__class__.__name__ != "InputLayer"]
    if len(layers) < 3 or layers[-1].__class__.__name__ != "Average":
        return None
    members = layers[:-1]
    keras = keras_module()
    if not all(isinstance(m, keras.Model) for m in members):
        return None
    return members


def _forward(model: Any, stepped: bool) -> Any:
    """Inference function of one (rebuilt) model: hand-written LSTM steps where it allows."""
    return (stepped_forward(model) if stepped else None) or (lambda x: model(x, training=False))


def _lstm_steps(tf: Any, layer: Any, weights: list[np.ndarray], x: Any) -> Any:
    """A Keras LSTM (``return_sequences=False``) on ``x`` [batch, T, d] as plain ops: per step
    the input projection (one FULLY_CONNECTED with the bias; measured: one projection of all
    steps at once shares one int8 scale and lost 0.5 accuracy points), ``h @ U``, the gates
    and the cell update; step 0 skips the zero state (no FILL, no ``h @ U``, no ``f * c``).
    Same function as the Keras cell (gate order i, f, c, o; float TFLite = Keras to 1e-6)."""
    W, U, b = weights if layer.use_bias else (*weights, None)
    T = int(x.shape[1])
    act, rec = layer.activation, layer.recurrent_activation
    Wc = tf.constant(W)
    steps = [tf.matmul(s, Wc) for s in tf.unstack(x, axis=1)]
    if b is not None:
        bc = tf.constant(b)
        steps = [s + bc for s in steps]
    U = tf.constant(U)
    h = c = None
    for t in range(T):
        z = steps[t] if h is None else steps[t] + tf.matmul(h, U)
        i, f, g, o = tf.split(z, 4, axis=1)
        ig = rec(i) * act(g)
        c = ig if c is None else rec(f) * c + ig
        h = rec(o) * act(c)
    return h


def _plain_conv1d(layer: Any) -> bool:
    c = layer.get_config()
    return layer.__class__.__name__ == "Conv1D" and (
        c.get("padding") == "valid"
        and tuple(c.get("dilation_rate", (1,))) == (1,)
        and c.get("groups", 1) == 1
        and c.get("data_format", "channels_last") == "channels_last"
    )


def _plain_pool1d(layer: Any) -> bool:
    c = layer.get_config()
    return layer.__class__.__name__ == "MaxPooling1D" and (
        c.get("padding") == "valid" and c.get("data_format", "channels_last") == "channels_last"
    )


def stepped_forward(model: Any) -> Any:
    """``model``'s forward pass (inference) with its LSTM written out step by step and its
    Reshape layers as plain reshapes (no dynamic-shape ops); None when the model is not a
    single chain of layers or its LSTM is not a plain one (then Keras's unroll is used)."""
    import tensorflow as tf

    layers = [la for la in model.layers if la.__class__.__name__ != "InputLayer"]
    for prev, la in zip([None, *layers[:-1]], layers, strict=True):
        nodes = la.inbound_nodes
        if len(nodes) != 1:
            return None
        inbound = nodes[0].inbound_layers
        inbound = inbound if isinstance(inbound, list) else [inbound]
        if prev is not None and inbound != [prev]:
            return None
        if la.__class__.__name__ == "LSTM":
            cfg = la.get_config()
            if cfg.get("return_sequences") or cfg.get("go_backwards") or cfg.get("stateful"):
                return None
            if cfg.get("return_state") or cfg.get("time_major"):
                return None
        elif la.__class__.__name__ in ("GRU", "SimpleRNN", "Bidirectional", "RNN"):
            return None

    weights = {id(la): la.get_weights() for la in layers if la.__class__.__name__ == "LSTM"}

    weights.update({id(la): la.get_weights() for la in layers if _plain_conv1d(la)})

    def forward(x: Any) -> Any:
        # Conv1D/MaxPooling1D run as their 2-D ops on [batch, 1, steps, channels] directly
        # (Keras wraps each in EXPAND_DIMS + RESHAPE); other layers see [batch, steps, channels]
        wide = False
        for n, la in enumerate(layers):
            name = la.__class__.__name__
            nxt = layers[n + 1] if n + 1 < len(layers) else None
            if name == "Reshape" and len(la.target_shape) == 2 and nxt is not None and _plain_conv1d(nxt):
                x, wide = tf.reshape(x, [-1, 1, *la.target_shape]), True
                continue
            if wide and _plain_conv1d(la):
                kernel, *bias = weights[id(la)]
                x = tf.nn.conv2d(x, tf.constant(kernel[None]), [1, 1, la.strides[0], 1], "VALID")
                if bias:
                    x = x + tf.constant(bias[0])
                x = la.activation(x)
                continue
            if wide and _plain_pool1d(la):
                x = tf.nn.max_pool2d(x, [1, la.pool_size[0]], [1, la.strides[0]], "VALID")
                continue
            if wide:
                x, wide = tf.reshape(x, [-1, int(x.shape[2]), int(x.shape[3])]), False
            if name == "LSTM":
                x = _lstm_steps(tf, la, weights[id(la)], x)
            elif name == "Reshape":
                x = tf.reshape(x, [-1, *la.target_shape])
            else:
                x = la(x, training=False)
        return x

    return forward


def strip_tensor_names(model: bytes) -> bytes:
    """Drop tensor and subgraph names (about a fifth of an unrolled model's bytes) and the
    converter's ``CONVERSION_METADATA`` record, and point every tensor without constant
    data at the shared empty buffer 0 (the converter gives each its own empty buffer:
    ~12 bytes per tensor).

    Signatures keep their own input/output names and tensor indices, so the
    interpreter's signature runners, and the Classifier, work unchanged.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    obj.description = None
    for md in list(obj.metadata or []):
        name = md.name.decode() if isinstance(md.name, bytes) else str(md.name)
        if name == "CONVERSION_METADATA":
            obj.buffers[md.buffer].data = None
            obj.metadata.remove(md)
    for sg in obj.subgraphs:
        sg.name = None
        for t in sg.tensors:
            t.name = None
    keep = [0] + [i for i, b in enumerate(obj.buffers) if i and b.data is not None and len(b.data)]
    keep += [md.buffer for md in obj.metadata or [] if md.buffer not in keep]
    if all(b.offset == 0 for b in obj.buffers):  # data stored inline (models < 2 GB)
        remap = {old: new for new, old in enumerate(keep)}
        for sg in obj.subgraphs:
            for t in sg.tensors:
                t.buffer = remap.get(t.buffer, 0)
        for md in obj.metadata or []:
            md.buffer = remap[md.buffer]
        obj.buffers = [obj.buffers[i] for i in keep]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(obj))


def _builtin_names() -> set[str]:
    from tensorflow.lite.python import schema_py_generated as fb

    return {k for k in vars(fb.BuiltinOperator) if not k.startswith("_") and k != "CUSTOM"}


def op_names(model: bytes) -> list[str]:
    """Names of every op in every subgraph of a ``.tflite`` flatbuffer (builtin names, or the
    custom code for custom/Flex ops)."""
    from tensorflow.lite.python import schema_py_generated as fb
    from tensorflow.lite.python import schema_util

    builtin = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    m = fb.Model.GetRootAsModel(model, 0)
    codes = []
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        code = schema_util.get_builtin_code_from_operator_code(oc)
        if code == fb.BuiltinOperator.CUSTOM:
            codes.append((oc.CustomCode() or b"CUSTOM").decode())
        else:
            codes.append(builtin.get(code, str(code)))
    names = []
    for g in range(m.SubgraphsLength()):
        sg = m.Subgraphs(g)
        for j in range(sg.OperatorsLength()):
            names.append(codes[sg.Operators(j).OpcodeIndex()])
    return names
