"""Preprocessor: fitted on training rows only, JSON round trip, log columns, unseen categories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_nids.preprocess import Preprocessor


def test_minmax_fitted_on_train_only_and_clipped() -> None:
    train = np.array([[0.0, 5.0, 1.0], [10.0, 5.0, 3.0], [5.0, 5.0, 2.0]])
    pre = Preprocessor.fit(train, ["a", "const", "b"], log="none")
    assert pre.output_columns == ["a", "b"]  # constant column dropped
    out = pre.transform(train)
    assert out.dtype == np.float32
    assert np.allclose(out, [[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]])
    test = np.array([[20.0, 9.0, -1.0], [np.nan, 0.0, np.inf]])
    assert np.allclose(pre.transform(test), [[1.0, 0.0], [0.0, 1.0]])


def test_log_on_heavy_tailed_columns() -> None:
    rng = np.random.default_rng(0)
    heavy = np.concatenate([rng.integers(0, 10, 990), [1e6] * 10]).astype(float)
    light = rng.uniform(0, 1, 1000)
    pre = Preprocessor.fit(np.column_stack([heavy, light]), ["heavy", "light"], log="auto")
    assert [c.log for c in pre.columns] == [True, False]
    out = pre.transform(np.array([[9.0, 0.5]]))
    assert out[0, 0] == pytest.approx(np.log1p(9) / np.log1p(1e6), rel=1e-6)
    plain = Preprocessor.fit(np.column_stack([heavy, light]), ["heavy", "light"], log="none")
    assert plain.transform(np.array([[9.0, 0.5]]))[0, 0] == pytest.approx(9e-6, rel=1e-4)


def test_categorical_one_hot_with_unseen_bucket() -> None:
    X = np.array([["tcp", 1.0], ["udp", 2.0], ["tcp", 3.0], ["icmp", 4.0]], dtype=object)
    pre = Preprocessor.fit(X, ["proto", "n"], categorical=["proto"], min_count=1)
    assert pre.output_columns == ["proto=icmp", "proto=tcp", "proto=udp", "proto=<unseen>", "n"]
    out = pre.transform(np.array([["udp", 1.0], ["sctp", 4.0]], dtype=object))
    assert out.tolist() == [[0, 0, 1, 0, 0], [0, 0, 0, 1, 1]]


def test_json_round_trip_gives_identical_output() -> None:
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.exponential(1e4, 200), rng.normal(0, 1, 200), np.full(200, 3.0)])
    pre = Preprocessor.fit(X, ["x", "y", "z"])
    again = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    Y = np.column_stack([rng.exponential(1e4, 50), rng.normal(0, 2, 50), rng.normal(0, 2, 50)])
    assert np.array_equal(pre.transform(Y), again.transform(Y))
    assert again.input_columns == ["x", "y", "z"]
    with pytest.raises(ValueError, match="format"):
        Preprocessor.from_dict({"format": 99, "columns": []})


def test_shape_is_checked() -> None:
    pre = Preprocessor.fit(np.array([[0.0], [1.0]]), ["a"])
    with pytest.raises(ValueError, match="expected"):
        pre.transform(np.zeros((2, 3)))


def test_preprocess_imports_only_numpy(repo_root: Path) -> None:
    code = (
        "import sys, edge_nids.preprocess; "
        "print(','.join(m for m in ('tensorflow','tf_keras','keras','pandas','sklearn') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo_root
    )
    assert out.stdout.strip() == ""


def test_excluded_column_is_read_but_never_reaches_the_model() -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 100, size=(50, 3))
    pre = Preprocessor.fit(X, ["a", "port", "b"], exclude=["port"])
    assert pre.input_columns == ["a", "port", "b"] and pre.output_columns == ["a", "b"]
    other = X.copy()
    other[:, 1] = 65535.0  # whatever the excluded column holds, the output is the same
    assert np.array_equal(pre.transform(X), pre.transform(other))
    with pytest.raises(ValueError, match="'nope': not an input column"):
        Preprocessor.fit(X, ["a", "port", "b"], exclude=["nope"])
