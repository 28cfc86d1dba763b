"""Conversion of a tiny real-data model in every mode: types, ops, agreement, metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.tensorflow, pytest.mark.shared_data]

INPUT_DTYPES = {"int8": np.int8, "float16": np.float32, "dynamic": np.float32, "float": np.float32}


@pytest.mark.parametrize("mode", ["int8", "float16", "dynamic"])
def test_mode_loads_with_expected_types_and_builtin_ops(tiny_bundles: dict[str, Path], mode: str) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from edge_nids.convert.tflite import _builtin_names, op_names

    model = (tiny_bundles[mode] / "model.tflite").read_bytes()
    it = Interpreter(model_content=model)
    assert set(it.get_signature_list()) == {"b1", "b32"}
    for key, batch in (("b1", 1), ("b32", 32)):
        r = it.get_signature_runner(key)
        (inp,) = r.get_input_details().values()
        (out,) = r.get_output_details().values()
        assert inp["dtype"] == INPUT_DTYPES[mode]
        assert out["dtype"] == INPUT_DTYPES[mode]
        assert int(inp["shape"][0]) == batch and list(out["shape"]) == [batch, 2]
    ops = op_names(model)
    assert ops, "no ops found"
    assert not [o for o in ops if o.startswith("Flex") or o not in _builtin_names()]
    if mode == "int8":  # unrolled: no fused (float-only-fast) LSTM kernel left
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in ops


@pytest.mark.parametrize("mode", ["int8", "float16", "dynamic", "float"])
def test_mode_agrees_with_keras_on_test_rows(
    tiny_model_dir: Path, tiny_bundles: dict[str, Path], mode: str
) -> None:
    from edge_nids.agent.classifier import Classifier
    from edge_nids.convert.tflite import load_keras_model

    test = np.load(tiny_model_dir / "test.npz")
    keras = load_keras_model(tiny_model_dir / "model.keras")
    p_keras = keras.predict(test["X"], verbose=0)[:, 1]
    clf = Classifier(tiny_bundles[mode])
    p = clf.scores(test["X_raw"])
    assert p.shape == (len(test["y"]),)
    tol = {"float": 1e-4, "float16": 5e-3, "dynamic": 0.05, "int8": 0.25}[mode]
    assert np.max(np.abs(p - p_keras)) < tol
    agree = np.mean((p >= 0.5) == (p_keras >= 0.5))
    assert agree >= (1.0 if mode == "float" else 0.97)
    # the verification numbers stored in the bundle are what the Classifier gives
    meta = json.loads((tiny_bundles[mode] / "bundle.json").read_text())
    acc = 100 * np.mean((p >= 0.5) == (test["y"] == 1))
    assert meta["metrics"]["tflite"]["tflite_accuracy"] == pytest.approx(acc, abs=1e-9)
    assert meta["metrics"]["tflite"]["agreement"] == pytest.approx(agree, abs=1e-9)


def test_metadata_round_trips(tiny_model_dir: Path, tiny_bundles: dict[str, Path]) -> None:
    from edge_nids.bundle import load_bundle, sha256_file
    from edge_nids.flows.schema import CIC_IDS2017

    train = json.loads((tiny_model_dir / "train.json").read_text())
    pre = json.loads((tiny_model_dir / "preprocess.json").read_text())
    b = load_bundle(tiny_bundles["int8"])
    assert b.schema_name == CIC_IDS2017.name == train["schema"]
    assert b.fingerprint == CIC_IDS2017.fingerprint
    assert b.profile == "cicids2017"
    assert b.input_columns == train["input_columns"]
    assert b.meta["preprocessing"] == pre
    assert b.labels == train["labels"] and b.attack_label_indices == train["attack_label_indices"]
    assert b.threshold == 0.5
    assert b.meta["sha256"]["source_model.keras"] == sha256_file(tiny_model_dir / "model.keras")
    assert b.meta["sha256"]["model.tflite"] == sha256_file(b.model_path)
    q = b.meta["quantization"]["signatures"]["b1"]["input"]
    assert q["dtype"] == "int8" and q["scale"] > 0
    assert b.meta["versions"]["tensorflow"].startswith("2.")


def test_classifier_batches_equal_single_rows(tiny_model_dir: Path, tiny_bundles: dict[str, Path]) -> None:
    """Static signatures: padding and the b1/b32 split never change a row's score."""
    from edge_nids.agent.classifier import Classifier

    raw = np.load(tiny_model_dir / "test.npz")["X_raw"][:70]
    for mode in ("int8", "float16"):
        clf = Classifier(tiny_bundles[mode])
        assert clf.batch_sizes == [1, 32]
        single = np.array([clf.scores(raw[i : i + 1])[0] for i in range(len(raw))])
        for n in (1, 5, 31, 32, 33, 70):
            np.testing.assert_allclose(clf.scores(raw[:n]), single[:n], atol=1e-6)
        probs = clf.probabilities(raw)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.02)
        assert clf.scores(raw[:0]).shape == (0,)
    with pytest.raises(ValueError, match="expected"):
        clf.scores(raw[:, :10])


def test_cli_convert_and_max_drop(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_nids.cli import main

    out = tmp_path / "b"
    rc = main(["convert", str(tiny_model_dir), "--float", "--batch-sizes", "1", "-o", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "agreement 100.00 %" in text and "wrote" in text
    # an impossible --max-drop makes the check fail: non-zero exit, clear message, bundle refused
    rc = main(
        ["convert", str(tiny_model_dir), "--float", "--batch-sizes", "1", "--max-drop", "-1", "-o", str(out)]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "points below" in err and "--max-drop" in err
    assert (out / "bundle.json.rejected").is_file() and not (out / "bundle.json").exists()


def test_cli_bad_input_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge_nids.cli import main

    rc = main(["convert", str(tmp_path / "nope"), "--int8", "-o", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a directory" in err
    (tmp_path / "md").mkdir()
    rc = main(["convert", str(tmp_path / "md"), "--int8", "-o", str(tmp_path / "o")])
    assert rc == 2
    assert "train.json: missing" in capsys.readouterr().err


def test_prune_shrinks_compressed_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    from edge_nids.convert.pipeline import ConvertConfig, convert_model_dir

    # per-channel scales: with one scale per tensor most small weights are int8 zeros already
    # (measured on this model: pruning then saved nothing after gzip)
    cfg = ConvertConfig(
        model_dir=tiny_model_dir,
        mode="int8",
        out=tmp_path / "p",
        prune=0.6,
        prune_epochs=2,
        batch_sizes=(1,),
        per_channel=True,
    )
    s = convert_model_dir(cfg)
    p = s["pruning"]
    # the kernels are pruned to the asked sparsity, and the zeros compress (before the schedule
    # fix nothing was pruned on this few-step fine-tune and the gzip size moved by ±0.3 %)
    assert p["kernel_zero_fraction"] >= 0.55, p
    assert p["gzip_bytes"] < p["gzip_bytes_unpruned"], p
    assert json.loads((tmp_path / "p" / "bundle.json").read_text())["model"]["pruning"]["sparsity"] == 0.6
    # int8 of the pruned model vs the pruned Keras model (a tiny, barely trained model: loose bound)
    assert s["verify"]["agreement"] >= 0.9, s["verify"]


def test_fused_lstm_scores_do_not_depend_on_the_previous_flow(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A fused TFLite LSTM keeps h/c in variable tensors; the Classifier must reset them per call."""
    from edge_nids.agent.classifier import Classifier
    from edge_nids.convert.pipeline import ConvertConfig, convert_model_dir
    from edge_nids.convert.tflite import ConversionError, load_keras_model

    with pytest.raises(ConversionError, match="static batch size"):  # the default is dynamic
        convert_model_dir(
            ConvertConfig(model_dir=tiny_model_dir, mode="float", out=tmp_path / "x", unroll=False)
        )
    with pytest.raises(ConversionError, match="single batch size"):
        convert_model_dir(
            ConvertConfig(
                model_dir=tiny_model_dir, mode="float", out=tmp_path / "x", unroll=False, batch_sizes=(1, 32)
            )
        )
    cfg = ConvertConfig(
        model_dir=tiny_model_dir, mode="float", out=tmp_path / "f", unroll=False, batch_sizes=(1,)
    )
    s = convert_model_dir(cfg)
    assert s["verify"]["agreement"] == 1.0
    test = np.load(tiny_model_dir / "test.npz")
    X = test["X"][:20]
    clf = Classifier(tmp_path / "f")
    first = clf.predict_preprocessed(X[:1])
    clf.predict_preprocessed(X[1:20])
    np.testing.assert_allclose(clf.predict_preprocessed(X[:1]), first, atol=1e-7)
    keras = load_keras_model(tiny_model_dir / "model.keras")
    np.testing.assert_allclose(clf.predict_preprocessed(X), keras.predict(X, verbose=0), atol=1e-4)


def test_classifier_preprocessing_is_the_trainers(
    tiny_model_dir: Path, tiny_bundles: dict[str, Path]
) -> None:
    """The Classifier's vectorized transform gives exactly Preprocessor.transform, NaN/inf included."""
    from edge_nids.agent.classifier import Classifier

    clf = Classifier(tiny_bundles["float"])
    test = np.load(tiny_model_dir / "test.npz")
    np.testing.assert_array_equal(clf.preprocess(test["X_raw"]), test["X"])
    odd = np.array([[np.nan] * 78, [np.inf] * 78, [-np.inf] * 78, [1e300] * 78, [-5.0] * 78])
    np.testing.assert_array_equal(clf.preprocess(odd), clf.bundle.preprocessor.transform(odd))
    meta = json.loads((tiny_bundles["int8"] / "bundle.json").read_text())
    assert meta["metrics"]["tflite"]["from_raw_features"] is True
    assert meta["metrics"]["tflite"]["max_abs_preprocess_diff"] == 0.0


# -- the default conversion: one graph, dynamic batch, LSTM as hand-written steps -----------------


@pytest.mark.parametrize("mode", ["int8", "float"])
def test_dynamic_graph_has_one_resizable_signature(
    tiny_dynamic: dict[str, Path], tiny_bundles: dict[str, Path], mode: str
) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from edge_nids.convert.tflite import _builtin_names, op_names

    model = (tiny_dynamic[mode] / "model.tflite").read_bytes()
    it = Interpreter(model_content=model)
    assert list(it.get_signature_list()) == ["serving_default"]
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    assert len(inp["shape_signature"]) == 2 and inp["shape_signature"][0] == -1
    assert inp["dtype"] == INPUT_DTYPES[mode]
    assert list(out["shape_signature"]) == [-1, 2]
    ops = op_names(model)
    assert not [o for o in ops if o.startswith("Flex") or o not in _builtin_names()]
    # steps written out: no zero-state ops, no fused LSTM, no dynamic-shape ops
    assert not {"FILL", "SHAPE", "STRIDED_SLICE", "PACK", "UNIDIRECTIONAL_SEQUENCE_LSTM"} & set(ops)
    if mode == "int8":  # one graph is smaller than two static signatures (b1 + b32)
        assert len(model) < (tiny_bundles[mode] / "model.tflite").stat().st_size
    meta = json.loads((tiny_dynamic[mode] / "bundle.json").read_text())
    assert meta["model"]["batch_sizes"] == "dynamic" and meta["model"]["lstm"] == "stepped"
    assert meta["quantization"]["signatures"]["serving_default"]["batch"] == -1


def test_stepped_lstm_is_the_keras_function(tiny_model_dir: Path, tiny_dynamic: dict[str, Path]) -> None:
    """The hand-written LSTM steps compute what the Keras layer computes (float: 1e-5)."""
    from edge_nids.agent.classifier import Classifier
    from edge_nids.convert.tflite import load_keras_model

    test = np.load(tiny_model_dir / "test.npz")
    keras = load_keras_model(tiny_model_dir / "model.keras")
    clf = Classifier(tiny_dynamic["float"])
    p_keras = keras.predict(test["X"], verbose=0)
    np.testing.assert_allclose(clf.probabilities(test["X_raw"]), p_keras, atol=1e-5)
    meta = json.loads((tiny_dynamic["int8"] / "bundle.json").read_text())
    assert meta["metrics"]["tflite"]["agreement"] >= 0.97


@pytest.mark.parametrize("mode", ["int8", "float"])
def test_dynamic_classifier_batches_equal_single_rows(
    tiny_model_dir: Path, tiny_dynamic: dict[str, Path], mode: str
) -> None:
    """Resizing to each call's row count (and max_batch chunks) never changes a row's score."""
    from edge_nids.agent.classifier import Classifier

    raw = np.load(tiny_model_dir / "test.npz")["X_raw"][:70]
    clf = Classifier(tiny_dynamic[mode], max_batch=16)
    assert clf.dynamic and clf.batch_sizes == [1, 16]
    single = np.array([clf.scores(raw[i : i + 1])[0] for i in range(len(raw))])
    for n in (70, 1, 2, 15, 16, 17, 33, 5):
        np.testing.assert_allclose(clf.scores(raw[:n]), single[:n], atol=1e-6)
    np.testing.assert_allclose(clf.probabilities(raw)[:, 1], single, atol=1e-6)
    assert clf.scores(raw[:0]).shape == (0,) and clf.probabilities(raw[:0]).shape == (0, 2)


@pytest.mark.parametrize("mode", ["int8", "float"])
def test_fused_raw_path_equals_preprocess_then_predict(
    tiny_model_dir: Path, tiny_dynamic: dict[str, Path], mode: str
) -> None:
    """scores(raw) folds preprocessing and quantization into a few numpy calls; it must give
    what the trainer's preprocessing followed by the model gives, NaN/±inf/huge values included."""
    from edge_nids.agent.classifier import Classifier

    raw = np.load(tiny_model_dir / "test.npz")["X_raw"]
    odd = np.array([[np.nan] * 78, [np.inf] * 78, [-np.inf] * 78, [1e300] * 78, [-5.0] * 78, [0.0] * 78])
    rows = np.vstack([raw, odd, raw[:3] * 1e6])
    clf = Classifier(tiny_dynamic[mode])
    assert clf._fused is not None
    ref = clf.predict_preprocessed(clf.preprocess(rows))[:, 1]
    got = clf.scores(rows)
    if mode == "float":
        np.testing.assert_allclose(got, ref, atol=1e-5)
    else:  # a rounding tie can move one input by one int8 step; outputs are whole steps of 1/256
        assert np.mean(got == ref) >= 0.99
        np.testing.assert_allclose(got, ref, atol=0.05)
    np.testing.assert_array_equal(clf.scores(odd), got[len(raw) : len(raw) + len(odd)])


@pytest.mark.parametrize("mode", ["int8", "float"])
def test_ensemble_converts_to_the_mean_of_its_members(
    tiny_model_dir: Path, tmp_path: Path, mode: str
) -> None:
    """An ensemble (the tiny model and a copy with other weights) converts to one graph whose
    output is the mean of the members' probabilities: float to 1e-5 of Keras, int8 within its
    output steps, single rows as in batches."""
    import shutil

    from edge_nids.agent.classifier import Classifier
    from edge_nids.convert.pipeline import ConvertConfig, convert_model_dir
    from edge_nids.convert.tflite import ensemble_members, load_keras_model, op_names
    from edge_nids.training.models import ensemble

    one = load_keras_model(tiny_model_dir / "model.keras")
    other = load_keras_model(tiny_model_dir / "model.keras")
    rng = np.random.default_rng(7)
    other.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in other.get_weights()])
    test = np.load(tiny_model_dir / "test.npz")
    p1, p2 = (m.predict(test["X"], verbose=0) for m in (one, other))
    assert np.abs(p1 - p2).max() > 0.05  # the members disagree, so the mean is not either one

    both = ensemble([one, other], "cnn_lstm_lite_x2")
    assert [m.name for m in ensemble_members(both) or []] == ["member0", "member1"]
    assert ensemble_members(one) is None
    md = tmp_path / "model"
    shutil.copytree(tiny_model_dir, md)
    both.save(md / "model.keras")
    out = tmp_path / mode
    convert_model_dir(ConvertConfig(model_dir=md, mode=mode, out=out, max_drop=1.0))

    clf = Classifier(out)
    assert clf.dynamic
    assert not [op for op in op_names((out / "model.tflite").read_bytes()) if op in ("WHILE", "ADD_N")]
    got = clf.probabilities(test["X_raw"])
    mean = (p1 + p2) / 2
    if mode == "float":
        np.testing.assert_allclose(got, mean, atol=1e-5)
    else:
        assert np.mean(np.argmax(got, axis=1) == np.argmax(mean, axis=1)) >= 0.97
        assert np.abs(got - mean).max() < 0.1
    single = np.array([clf.scores(test["X_raw"][i : i + 1])[0] for i in range(40)])
    np.testing.assert_array_equal(clf.scores(test["X_raw"][:40]), single)
