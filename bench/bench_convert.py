"""Conversion benchmark: size, latency and accuracy of every TFLite mode vs. Keras.

For each MODEL_DIR (what ``edge-nids train`` writes; e.g. the paper's ``cnn-lstm`` and
``cnn-lstm-lite``) it converts the model in every mode, with the LSTM fused, unrolled
by Keras, and written out as steps (the default), and prints a markdown table, one
interpreter thread:

- bytes: ``model.tflite`` size (unrolled: one graph with a dynamic batch dimension
  unless ``--batch-sizes 1,256``; a fused LSTM gets only b1, so its "batched" figure is
  a loop of single calls);
- µs/flow single: one flow of raw features per ``Classifier.scores`` call, the agent's
  path (preprocess, quantize, invoke, attack probability), median of ``--repeat``
  rows; "invoke only": the interpreter alone on one pre-quantized flow (the rest is
  numpy and Python overhead);
- µs/flow batched: raw rows pushed through ``Classifier.scores`` 256 per invoke;
- accuracy: attack-vs-benign accuracy on MODEL_DIR/test.npz, and the Keras row
  (``model.predict_on_batch`` on one flow) for reference.

Usage: ``python bench/bench_convert.py MODEL_DIR [MODEL_DIR ...] [--repeat 300] [--modes int8,float]
[--lstm fused,keras,stepped] [--batch-sizes dynamic]``. Prints the 1-minute load average
before and after, since timings on a shared machine depend on it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]


def _median_us(fn: Any, n: int) -> float:
    times = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn(i)
        times.append(time.perf_counter_ns() - t0)
    return float(np.median(times)) / 1e3


def _invoke_us(clf: Any, X: np.ndarray, repeat: int) -> float:
    """Median µs of the interpreter alone on one pre-quantized flow (SetTensor, Invoke, GetTensor)."""
    r = clf._runners[0]
    x = X[:1]
    q = (
        np.clip(np.rint(x / r.in_scale) + r.in_zero, -128, 127).astype(r.in_dtype)
        if r.in_scale
        else x.astype(r.in_dtype)
    )

    def once(_: int) -> None:
        if r.reset:
            r.wrapper.ResetVariableTensors()
        r.wrapper.SetTensor(r.in_index, q, r.subgraph)
        r.wrapper.Invoke(r.subgraph)
        r.wrapper.GetTensor(r.out_index, r.subgraph)

    return _median_us(once, repeat)


def _bench_model_dir(
    model_dir: Path, modes: list[str], repeat: int, batch_sizes: list[int] | None, lstms: list[str]
) -> list[dict[str, Any]]:
    from edge_nids.agent.classifier import Classifier
    from edge_nids.bundle import load_bundle
    from edge_nids.convert.pipeline import ConvertConfig, convert_model_dir
    from edge_nids.convert.tflite import load_keras_model

    test = np.load(model_dir / "test.npz")
    X, y = test["X"].astype(np.float32), test["y"]
    raw = test["X_raw"].astype(np.float64) if "X_raw" in test.files else None
    model = load_keras_model(model_dir / "model.keras")
    truth = y == 1
    rows: list[dict[str, Any]] = []
    p = model.predict(X, batch_size=1024, verbose=0)[:, 1]
    model.predict_on_batch(X[:1])
    single = _median_us(lambda i: model.predict_on_batch(X[i % len(X) : i % len(X) + 1]), min(repeat, 200))
    t0 = time.perf_counter()
    model.predict(X, batch_size=256, verbose=0)
    batched = (time.perf_counter() - t0) / len(X) * 1e6
    name = model_dir.name
    rows.append(
        {
            "model": name,
            "variant": "Keras (tf-keras)",
            "bytes": (model_dir / "model.keras").stat().st_size,
            "single": single,
            "batched": batched,
            "accuracy": 100 * float(np.mean((p >= 0.5) == truth)),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            for lstm in lstms:
                unroll = lstm != "fused"
                out = Path(tmp) / f"{mode}-{lstm}"
                cfg = ConvertConfig(
                    model_dir=model_dir,
                    mode=mode,
                    out=out,
                    max_drop=100.0,
                    unroll=unroll,
                    stepped=lstm == "stepped",
                    batch_sizes=batch_sizes if unroll else [1],
                )
                label = _LSTM_LABELS[lstm]
                try:
                    s = convert_model_dir(cfg)
                except Exception as exc:  # report the failure in the table, keep benchmarking
                    rows.append({"model": name, "variant": f"{mode} {label}: {exc}"})
                    continue
                clf = Classifier(load_bundle(out), num_threads=1)
                if raw is not None:  # the agent's path: raw features → attack probability

                    def call(rows: np.ndarray, c: Any = clf) -> Any:
                        return c.scores(rows)

                    src = raw
                else:

                    def call(rows: np.ndarray, c: Any = clf) -> Any:
                        return c.predict_preprocessed(rows)

                    src = X
                call(src[:1])
                single = _median_us(lambda i, s=src, f=call: f(s[i % len(s) : i % len(s) + 1]), repeat)
                invoke = _invoke_us(clf, X, repeat)
                nb = max(256, (len(src) // 256) * 256)
                Xb = np.resize(src, (nb, src.shape[1]))
                call(Xb[:256])
                t0 = time.perf_counter()
                call(Xb)
                batched = (time.perf_counter() - t0) / nb * 1e6
                rows.append(
                    {
                        "model": name,
                        "variant": f"TFLite {mode} ({label})",
                        "bytes": s["bytes"],
                        "single": single,
                        "invoke": invoke,
                        "batched": batched,
                        "accuracy": s["verify"]["tflite_accuracy"],
                        "agreement": 100 * s["verify"]["agreement"],
                    }
                )
                print(_row(rows[-1]), file=sys.stderr, flush=True)
    return rows


_LSTM_LABELS = {"fused": "fused LSTM", "keras": "LSTM unrolled by Keras", "stepped": "LSTM as steps"}


def _load() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def _row(r: dict[str, Any]) -> str:
    if "bytes" not in r:
        return f"| {r['model']} | {r['variant']} | | | | | | |"
    agree = f"{r['agreement']:.2f}" if "agreement" in r else "–"
    invoke = f"{r['invoke']:.1f}" if "invoke" in r else "–"
    return (
        f"| {r['model']} | {r['variant']} | {r['bytes'] / 1024:.1f} | {r['single']:.1f} | {invoke} | "
        f"{r['batched']:.2f} | {r['accuracy']:.2f} | {agree} |"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dirs", nargs="+", type=Path, metavar="MODEL_DIR")
    ap.add_argument("--repeat", type=int, default=300, help="single-flow calls timed per variant")
    ap.add_argument("--modes", default="float,dynamic,float16,int8")
    ap.add_argument("--batch-sizes", default="dynamic", help="'dynamic' or static sizes like 1,256")
    ap.add_argument("--lstm", default="fused,keras,stepped", help="LSTM variants: fused,keras,stepped")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for d in args.model_dirs:
        if not (d / "model.keras").is_file() or not (d / "test.npz").is_file():
            print(f"bench_convert: {d} is not a MODEL_DIR with model.keras and test.npz", file=sys.stderr)
            return 2
    modes = [m for m in args.modes.split(",") if m]
    sizes = None if args.batch_sizes == "dynamic" else [int(b) for b in args.batch_sizes.split(",")]
    lstms = [v for v in args.lstm.split(",") if v]
    if not set(lstms) <= set(_LSTM_LABELS):
        print(f"bench_convert: --lstm takes {','.join(_LSTM_LABELS)}, got {args.lstm!r}", file=sys.stderr)
        return 2
    load_before = _load()
    rows = []
    for d in args.model_dirs:
        rows.extend(_bench_model_dir(d, modes, args.repeat, sizes, lstms))
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        "?",
    )
    print(
        f"CPU: {cpu}; {os.cpu_count()} cores; 1 interpreter thread; batch sizes {sizes or 'dynamic'}; "
        f"load average (1 min) {load_before} before, {_load()} after\n"
    )
    print(
        "| model | variant | KiB | µs/flow single | µs invoke only | µs/flow batched (256) | accuracy % "
        "| agreement % |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(_row(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
