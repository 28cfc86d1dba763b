"""Cleaning counts on real rows and stratified splits that never share a row."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edge_nids.training.clean import clean
from edge_nids.training.datasets import load_cic
from edge_nids.training.prepare import prepare
from edge_nids.training.split import cap_per_class, split_indices, stratified_split

SAMPLE = Path("cic-ids2017/MachineLearningCVE/stratified_sample_12001.csv")


@pytest.mark.shared_data
def test_clean_counts_on_real_sample(shared_data: Path) -> None:
    path = shared_data / SAMPLE
    raw = load_cic([path])
    data, rep = clean(raw)
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        rows = list(csv.reader(f))[1:]
    empty_rows = sum(any(c.strip() == "" for c in r[:78]) for r in rows)
    inf_rows = sum(any(c.strip().lower() == "inf" for c in r[:78]) for r in rows)
    assert rep.rows_in == 12001
    assert rep.incomplete == empty_rows
    assert rep.infinite <= inf_rows  # a row with both NaN and inf counts as incomplete
    assert rep.incomplete + rep.infinite >= inf_rows
    removed = rep.incomplete + rep.infinite + rep.corrupt + rep.negative + rep.duplicates
    assert rep.rows_out == len(data) == rep.rows_in - removed
    x = data.features.to_numpy()
    assert np.isfinite(x).all()
    assert not data.features.duplicated().any()
    # every duplicate removed was a real duplicate of a kept row
    kept_keys = set(pd.util.hash_pandas_object(data.features, index=False))
    finite = np.isfinite(raw.features.to_numpy()).all(axis=1)
    raw_keys = pd.util.hash_pandas_object(raw.features[finite], index=False)
    assert raw.features[finite].duplicated().sum() >= rep.duplicates > 200
    assert set(raw_keys) >= kept_keys


def test_stratified_split_is_disjoint_and_proportional() -> None:
    strata = np.array(["a"] * 700 + ["b"] * 250 + ["c"] * 49 + ["d"])
    s = split_indices(strata, seed=7, test_fraction=0.3, val_fraction=0.1)
    parts = [set(s.train), set(s.val), set(s.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert set().union(*parts) == set(range(len(strata)))
    assert (strata[s.test] == "a").sum() == 210 and (strata[s.test] == "b").sum() == 75
    assert (strata[s.val] == "c").sum() == 4
    assert "d" in set(strata[s.train])  # a single-row class stays in training
    again = split_indices(strata, seed=7, test_fraction=0.3, val_fraction=0.1)
    assert np.array_equal(again.test, s.test)
    other = split_indices(strata, seed=8, test_fraction=0.3, val_fraction=0.1)
    assert not np.array_equal(other.test, s.test)


def test_official_partition_split() -> None:
    strata = np.array(["x", "y"] * 50)
    part = np.array(["train"] * 60 + ["test"] * 40)
    s = split_indices(strata, seed=1, test_fraction=0.3, val_fraction=0.1, partition=part)
    assert set(s.test) == set(range(60, 100))
    assert set(s.train) | set(s.val) == set(range(60))
    assert not set(s.train) & set(s.val)


def test_fractions_must_sum_to_one() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_split(np.zeros(4), (0.5, 0.4), seed=0)


def test_cap_per_class_keeps_small_classes_whole() -> None:
    classes = np.array(["BENIGN"] * 7 + ["PortScan"] * 50 + ["DoS"] * 3)
    keep = cap_per_class(classes, 10, seed=1)
    assert np.all(np.diff(keep) > 0)
    kept = dict(zip(*np.unique(classes[keep], return_counts=True), strict=True))
    assert kept == {"BENIGN": 7, "PortScan": 10, "DoS": 3}
    assert np.array_equal(keep, cap_per_class(classes, 10, seed=1))
    assert not np.array_equal(keep, cap_per_class(classes, 10, seed=2))
    with pytest.raises(ValueError, match="at least 1"):
        cap_per_class(classes, 0, seed=1)


def test_prepare_caps_each_class_of_real_rows(shared_data: Path) -> None:
    prep = prepare("cic-ids2017", [str(shared_data / SAMPLE)], seed=3, max_per_class=200)
    labels, counts = np.unique(prep.data.classes, return_counts=True)
    assert counts.max() == 200 and set(labels) >= {"BENIGN", "DoS Hulk", "PortScan", "DDoS"}
    assert dict(zip(labels, counts, strict=True))["SSH-Patator"] < 200  # a small class stays whole
    assert any("--max-per-class" in n and "BENIGN" in n for n in prep.notes)
