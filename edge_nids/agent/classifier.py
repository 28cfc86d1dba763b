"""The one wrapper around the LiteRT interpreter (numpy + ai-edge-litert only).

``Classifier(bundle)`` takes raw flow features ``[n, len(schema)]`` (float64, in the
order of the bundle's feature schema, e.g. ``schema.CIC_IDS2017``), selects the
bundle's input columns, applies its preprocessing, quantizes for int8 models, runs
the model in batches sized to its static batch dimension(s) (padding the last
batch) and returns attack probabilities. The agent, ``convert``'s verification and
``evaluate`` all go through it, so they see the same numbers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_nids.bundle import Bundle, BundleError, load_bundle
from edge_nids.flows.schema import get_schema
from edge_nids.preprocess import Preprocessor

__all__ = ["Classifier", "RuntimeMissingError", "load_interpreter_class"]

log = logging.getLogger(__name__)


#: Fused RNN kernels that carry their state across invokes in variable tensors; the
#: Classifier resets those before every call so each flow is scored on its own.
_STATEFUL_OPS = frozenset(
    {
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "UNIDIRECTIONAL_SEQUENCE_RNN",
        "BIDIRECTIONAL_SEQUENCE_LSTM",
        "BIDIRECTIONAL_SEQUENCE_RNN",
        "LSTM",
        "RNN",
    }
)


class RuntimeMissingError(ImportError):
    """Neither ai-edge-litert nor tflite-runtime is installed."""


def load_interpreter_class() -> Any:
    """``ai_edge_litert.interpreter.Interpreter``, else ``tflite_runtime.interpreter.Interpreter``."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise RuntimeMissingError(
                "no TFLite runtime: install ai-edge-litert (pip install 'edge-nids[agent]'), or "
                "tflite-runtime where it has no wheel (pip install 'edge-nids[agent-tflite]')"
            ) from None
        except (ImportError, AttributeError) as exc:  # built against numpy 1.x, numpy 2 installed
            import numpy

            raise RuntimeMissingError(
                f"tflite-runtime does not import with numpy {numpy.__version__} ({exc}); it needs "
                "numpy<2: pip install 'edge-nids[agent-tflite]'"
            ) from None
    return Interpreter


@dataclass
class _Runner:
    """One subgraph with a static batch size: raw tensor indices, (de)quantization.

    ``resizable`` runners own a whole interpreter whose graph has a dynamic batch
    dimension; :meth:`resize` sets it to the exact number of rows of a call (no padding).
    """

    wrapper: Any
    subgraph: int
    batch: int
    in_index: int
    out_index: int
    in_dtype: Any
    in_scale: float
    in_zero: int
    out_scale: float
    out_zero: int
    reset: bool = False
    interp: Any = None
    n_inputs: int = 0
    out_dtype: Any = None

    def __post_init__(self) -> None:
        self._buf: np.ndarray | None = None
        self._q: np.ndarray | None = None
        if self.in_scale:
            info = np.iinfo(self.in_dtype)
            self._lo, self._hi = float(info.min), float(info.max)
        if self.interp is not None:
            self.resize(self.batch)

    @property
    def resizable(self) -> bool:
        return self.interp is not None

    def resize(self, n: int) -> None:
        """Set the batch dimension of a resizable runner to ``n`` rows."""
        # the wrapper's own calls: Interpreter.resize_tensor_input refuses while anything
        # (this runner included) holds a reference to the wrapper
        self.wrapper.ResizeInputTensor(self.in_index, np.array([n, self.n_inputs], np.int32), False)
        self.wrapper.AllocateTensors()
        self.batch = n

    def input_buffer(self, n: int) -> np.ndarray:
        """Where the (quantized) inputs of an ``n``-row call go (copied in by :meth:`invoke`).

        Not a view of the interpreter's input tensor: XNNPACK may move that buffer when it
        reshapes its graph at the first invoke after a resize (measured: heap corruption).
        """
        if self.interp is not None and n != self.batch:
            self.resize(n)
        if self._q is None or self._q.shape[0] != n:
            self._q = np.empty((n, self.n_inputs), self.in_dtype)
        return self._q

    def invoke(self) -> np.ndarray:
        """Run on what :meth:`input_buffer` holds → the raw output tensor (a copy)."""
        if self.reset:  # fused RNN ops keep their state in variable tensors between invokes
            self.wrapper.ResetVariableTensors()
        self.wrapper.SetTensor(self.in_index, self._q, self.subgraph)
        self.wrapper.Invoke(self.subgraph)
        return self.wrapper.GetTensor(self.out_index, self.subgraph)

    def dequantize(self, y: np.ndarray) -> np.ndarray:
        if self.out_scale:
            out = y.astype(np.float32)
            out -= self.out_zero
            out *= self.out_scale
            return out
        return y.astype(np.float32, copy=False)

    def run(self, x: np.ndarray) -> np.ndarray:
        """float32 model inputs [batch, k] → float32 class probabilities [batch, C]."""
        q = self.input_buffer(len(x))
        if self.in_scale:
            if self._buf is None or self._buf.shape != x.shape:
                self._buf = np.empty(x.shape, np.float32)
            f = self._buf
            np.divide(x, self.in_scale, out=f)
            np.rint(f, out=f)
            f += self.in_zero
            np.clip(f, self._lo, self._hi, out=f)
            np.copyto(q, f, casting="unsafe")
        else:
            np.copyto(q, x, casting="unsafe")
        return self.dequantize(self.invoke())


class _FusedQuantize:
    """Raw feature rows → model inputs, written straight into the runner's input buffer.

    Column selection, signed log, min-max scaling, clipping to [0, 1] and (int8 models)
    the input quantization ``q = round(x / scale) + zero`` folded into one gather, the
    log on the log columns and one multiply-add per element (``q = round(v·A + B)``
    clipped to the images of 0 and 1): about a dozen numpy calls per batch whatever its
    size, the per-call cost that dominates single-flow latency. NaN maps to the image of
    0 and ±inf to the images of 1 / 0, as in ``Preprocessor.transform``. For int8 the
    result can differ from quantizing ``Preprocessor.transform``'s float32 output by one
    step where a value falls on a rounding tie; float models (``scale`` 0) get the
    min-max value up to float rounding.
    """

    def __init__(
        self, pre: Preprocessor, select: np.ndarray | None, scale: float, zero: int, dtype: Any
    ) -> None:
        self.quantized = bool(scale)
        if not scale:  # float input: scale 1, zero 0, no rounding
            scale, zero = 1.0, 0
        keep, self.log, lo, span = pre.numeric_arrays()
        self.idx = keep if select is None else np.asarray(select, dtype=np.intp)[keep]
        self.any_log = bool(self.log.any())
        self.a = 1.0 / (span * scale)
        self.b = zero - lo * self.a
        if self.quantized:
            info = np.iinfo(dtype)
            self.q0 = float(np.clip(np.rint(zero), info.min, info.max))
            self.q1 = float(np.clip(np.rint(1.0 / scale + zero), info.min, info.max))
        else:
            self.q0, self.q1 = 0.0, 1.0

    def __call__(self, X: np.ndarray, out: np.ndarray) -> None:
        """``X`` raw rows [n, n_features] float64 → ``out`` [n, k] (int8), in place."""
        # no np.errstate (it costs as much as two of these calls): NaN and ±inf raise no
        # warning here, only a finite value above ~1e300 (overflow to inf, still correct)
        v = X.take(self.idx, axis=1)
        if self.any_log:
            t = np.abs(v)
            np.log1p(t, out=t)
            np.copysign(t, v, out=t)
            np.copyto(v, t, where=self.log)
        v *= self.a
        v += self.b
        np.fmax(v, self.q0, out=v)  # fmax/fmin: NaN → the image of 0
        np.fmin(v, self.q1, out=v)
        if self.quantized:
            np.rint(v, out=v)
        np.copyto(out, v, casting="unsafe")


def _quant(detail: dict[str, Any]) -> tuple[float, int]:
    scale, zero = detail.get("quantization", (0.0, 0))
    return float(scale), int(zero)


class Classifier:
    """Attack probabilities for raw flow features, through a bundle's TFLite model.

    ``bundle``: a :class:`~edge_nids.bundle.Bundle` or a bundle directory.
    ``num_threads``: interpreter threads (1 on a Pi that also captures packets).
    ``max_batch``: rows per invoke for models with a dynamic batch dimension.
    """

    def __init__(self, bundle: Bundle | str | Path, num_threads: int = 1, max_batch: int = 256) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self._num_threads = num_threads
        self._max_batch = max(1, int(max_batch))
        self._interp = self._interpreter()
        self._runners = self._make_runners()
        self.dynamic = self._runners[0].resizable
        self.batch_sizes = [1, self._max_batch] if self.dynamic else sorted(r.batch for r in self._runners)
        try:
            schema = get_schema(self.bundle.schema_name)
            self.n_features = len(schema)
            self._select: np.ndarray | None = np.array([schema.index(c) for c in self.bundle.input_columns])
        except KeyError:
            self.n_features = len(self.bundle.input_columns)
            self._select = None
        pre = self.bundle.preprocessor
        numeric = all(c.kind == "numeric" for c in pre.columns)
        self._attack = np.array(self.bundle.attack_label_indices)
        self.threshold = self.bundle.threshold
        first = self._runners[0]
        self.input_dtype = np.dtype(first.in_dtype)
        # raw features → quantized inputs in one pass, attack probability by table lookup
        self._fused: _FusedQuantize | None = None
        self._lut: np.ndarray | None = None
        self._a = int(self._attack[0]) if len(self._attack) == 1 else -1
        int8_in = first.in_scale and self.input_dtype == np.int8
        if numeric and (int8_in or self.input_dtype == np.float32):
            self._fused = _FusedQuantize(pre, self._select, first.in_scale, first.in_zero, first.in_dtype)
            out_dtype = np.dtype(first.out_dtype)
            if out_dtype == np.int8 and first.out_scale:
                # entry u holds int8 value u (mod 256), so lut[y] works with int8 y directly
                q = np.arange(256, dtype=np.uint8).view(np.int8).astype(np.float32)
                self._lut = (q - first.out_zero) * np.float32(first.out_scale)
            elif out_dtype != np.float32:
                self._a = -1
        log.info(
            "classifier %s: batch sizes %s%s, input %s",
            self.bundle.name,
            self.batch_sizes,
            " (dynamic)" if self.dynamic else "",
            self.input_dtype,
        )

    def _interpreter(self) -> Any:
        Interpreter = load_interpreter_class()
        try:
            return Interpreter(model_path=str(self.bundle.model_path), num_threads=self._num_threads)
        except (ValueError, RuntimeError) as exc:
            raise BundleError(
                f"model bundle {self.bundle.model_path}: not a loadable TFLite model ({exc})"
            ) from None

    def _make_runners(self) -> list[_Runner]:
        it = self._interp
        self._sigs = it.get_signature_list() or {}
        runners = []
        ins = it.get_input_details()
        if len(self._sigs) <= 1 and len(ins) == 1 and int(ins[0]["shape_signature"][0]) == -1:
            # one graph with a dynamic batch dimension: one interpreter kept at batch 1 (no
            # resizing on the single-flow path), one resized to each call's row count
            (ind,), (outd,) = ins, it.get_output_details()
            for interp, batch in ((it, 1), (self._interpreter(), self._max_batch)):
                runners.append(self._runner(interp._interpreter, 0, ind, outd, interp=interp, batch=batch))
        elif self._sigs:
            for key in self._sigs:
                sr = it.get_signature_runner(key)
                (ind,) = sr.get_input_details().values()
                (outd,) = sr.get_output_details().values()
                runners.append(self._runner(sr._interpreter_wrapper, sr._subgraph_index, ind, outd))
                sr._interpreter_wrapper.AllocateTensors(sr._subgraph_index)
        else:
            it.allocate_tensors()
            (ind,), (outd,) = it.get_input_details(), it.get_output_details()
            runners.append(self._runner(it._interpreter, 0, ind, outd))
        ops = {str(d.get("op_name", "")) for d in it._get_ops_details()}
        if ops & _STATEFUL_OPS:
            for r in runners:
                r.reset = True
        return sorted(runners, key=lambda r: r.batch)

    @staticmethod
    def _runner(
        wrapper: Any,
        subgraph: int,
        ind: dict[str, Any],
        outd: dict[str, Any],
        interp: Any = None,
        batch: int | None = None,
    ) -> _Runner:
        shape = [int(s) for s in ind["shape"]]
        if len(shape) != 2 or (batch is None and shape[0] < 1):
            raise BundleError(f"model input shape {shape} is not [batch, features] with a static batch")
        s_in, z_in = _quant(ind)
        s_out, z_out = _quant(outd)
        return _Runner(
            wrapper,
            subgraph,
            shape[0] if batch is None else batch,
            int(ind["index"]),
            int(outd["index"]),
            ind["dtype"],
            s_in,
            z_in,
            s_out,
            z_out,
            interp=interp,
            n_inputs=shape[1],
            out_dtype=outd["dtype"],
        )

    def _dynamic_rows(self, n: int) -> int:
        """Rows of an ``n``-row call through the resizable interpreter (zero rows padded): its
        current size when that pads at most 16 rows, else ``n`` rounded up to a multiple of 8.

        Resizing costs about 70 µs on the 2-CPU VM (ResizeInputTensor, AllocateTensors and
        XNNPACK's reshape at the next invoke: a 2-row call took 49 µs at a constant size and
        119 µs alternating with 3 rows), the work of about 20 padded rows, and the size of a
        batch sent out by its timer changes at nearly every call. Rows are scored independently,
        so padding changes no score (checked on 6,000 real flows, zero and garbage padding)."""
        current = self._runners[-1].batch
        if n <= current <= n + 16:
            return current
        return min(self._max_batch, -(-n // 8) * 8)

    def _plan(self, n: int) -> list[tuple[_Runner, int, int, int]]:
        """How ``n`` rows are split into invokes: (runner, start, stop, rows in the call).

        Dynamic models: full ``max_batch`` chunks, the rest in one call padded to a size that
        spares most resizes (:meth:`_dynamic_rows`; a single row through the batch-1
        interpreter). Static models: full batches through the largest signature, the rest
        through batch-1 calls when that is cheaper (fewer than 1/8 of a batch), else one padded
        batch.
        """
        small, big = self._runners[0], self._runners[-1]
        if self.dynamic:
            if n == 1:
                return [(small, 0, 1, 1)]
            m = self._max_batch
            bounds = [(i, min(n, i + m)) for i in range(0, n, m)]
            return [
                (big, i, j, self._dynamic_rows(j - i)) if j - i > 1 else (small, i, j, 1) for i, j in bounds
            ]
        plan = []
        i = 0
        while n - i >= big.batch:
            plan.append((big, i, i + big.batch, big.batch))
            i += big.batch
        rest = n - i
        if rest:
            if small.batch == 1 and (big.batch == 1 or rest * 8 < big.batch):
                plan.extend((small, j, j + 1, 1) for j in range(i, n))
            else:
                r = min((r for r in self._runners if r.batch >= rest), key=lambda r: r.batch)
                plan.append((r, i, n, r.batch))
        return plan

    # -- public API ---------------------------------------------------------------------------
    def _raw(self, features: np.ndarray) -> np.ndarray:
        X = np.asarray(features, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"features have shape {X.shape}, expected [n, {self.n_features}]")
        return X

    def preprocess(self, features: np.ndarray) -> np.ndarray:
        """Raw features [n, n_features] (schema order) → float32 model inputs [n, k]."""
        X = self._raw(features)
        if self._select is not None:
            X = X[:, self._select]
        return self.bundle.preprocessor.transform(X)

    def predict_preprocessed(self, X: np.ndarray) -> np.ndarray:
        """Preprocessed inputs [n, k] → class probabilities [n, C] (float32)."""
        X = np.asarray(X, dtype=np.float32)
        out = np.empty((len(X), len(self.bundle.labels)), np.float32)
        for r, i, j, rows in self._plan(len(X)):
            if rows == j - i:
                out[i:j] = r.run(X[i:j])
            else:  # padded static batch
                pad = np.zeros((rows, X.shape[1]), np.float32)
                pad[: j - i] = X[i:j]
                out[i:j] = r.run(pad)[: j - i]
        return out

    def _invoke_raw(self, X: np.ndarray) -> Any:
        """Raw rows → (runner, raw output tensor, rows) per invoke, through the fused quantizer."""
        assert self._fused is not None
        for r, i, j, rows in self._plan(len(X)):
            q = r.input_buffer(rows)
            if rows == j - i:
                self._fused(X[i:j], q)
            else:
                self._fused(X[i:j], q[: j - i])
                q[j - i :] = 0
            yield r, r.invoke(), i, j

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Raw features [n, n_features] → class probabilities [n, C] in ``bundle.labels`` order."""
        if self._fused is None:
            return self.predict_preprocessed(self.preprocess(features))
        X = self._raw(features)
        out = np.empty((len(X), len(self.bundle.labels)), np.float32)
        for r, y, i, j in self._invoke_raw(X):
            out[i:j] = r.dequantize(y[: j - i])
        return out

    def attack_scores(self, probabilities: np.ndarray) -> np.ndarray:
        """Class probabilities [n, C] → attack probability [n] (sum over the attack classes)."""
        return probabilities[:, self._attack].sum(axis=1)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Raw features [n, n_features] → attack probability [n] (sum over attack classes)."""
        a, lut = self._a, self._lut
        if self._fused is None or a < 0:
            return self.attack_scores(self.probabilities(features))
        X = self._raw(features)
        r = self._runners[0]
        if len(X) == 1 and r.batch == 1:  # the agent's common case, in as few calls as possible
            self._fused(X, r.input_buffer(1))
            y = r.invoke()[:, a]
            return y if lut is None else lut.take(y)  # int8 indices wrap like the table
        out = np.empty(len(X), np.float32)
        for _, y, i, j in self._invoke_raw(X):
            col = y[: j - i, a]
            out[i:j] = col if lut is None else lut.take(col)
        return out

    def verdicts(self, features: np.ndarray) -> np.ndarray:
        """Raw features → bool [n], True where the attack probability reaches the threshold."""
        return self.scores(features) >= self.threshold
