"""Loaders on real rows of every file kind: BOM, inf/Infinity, NaN, en-dash labels, duplicate header."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from edge_nids.flows.schema import CIC_IDS2017
from edge_nids.training.datasets import DataError, load_cic, load_dataset, load_unsw, normalise_label

pytestmark = pytest.mark.shared_data

MLCVE = Path("cic-ids2017/MachineLearningCVE")


def _raw_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        return list(csv.reader(f))


def test_normalise_label_variants() -> None:
    for raw in ("Web Attack \ufffd XSS", "Web Attack \x96 XSS", "Web Attack – XSS", " Web Attack - XSS "):
        assert normalise_label(raw) == "Web Attack – XSS"
    assert normalise_label("BENIGN ") == "BENIGN"
    assert normalise_label("DoS Hulk") == "DoS Hulk"


def test_stratified_sample_inf_nan_labels(shared_data: Path) -> None:
    path = shared_data / MLCVE / "stratified_sample_12001.csv"
    d = load_cic([path])
    rows = _raw_rows(path)
    assert len(d) == len(rows) - 1 == 12001
    assert list(d.features.columns) == CIC_IDS2017.names
    # every "inf" cell of the file is +inf in the frame, every empty cell NaN
    x = d.features.to_numpy()
    n_inf = sum(c.strip().lower() == "inf" for r in rows[1:] for c in r[:78])
    n_empty = sum(c.strip() == "" for r in rows[1:] for c in r[:78])
    assert n_inf > 0 and n_empty == 9
    assert np.isposinf(x).sum() == n_inf
    assert np.isnan(x).sum() == n_empty
    assert "Web Attack – XSS" in set(d.classes)
    assert not any("\ufffd" in c for c in d.classes)
    assert d.is_attack.sum() == sum(r[-1] != "BENIGN" for r in rows[1:])
    # the duplicated " Fwd Header Length" lands in both of its schema columns
    assert np.array_equal(d.features["Fwd Header Length"], d.features["Fwd Header Length.1"])


def test_day_heads_original_formatting(shared_data: Path) -> None:
    folder = shared_data / MLCVE / "day_heads_rdube"
    d = load_cic([folder])  # a folder stands for its CSVs
    rows = [r for p in sorted(folder.glob("*.csv")) for r in _raw_rows(p)[1:]]
    assert len(d) == len(rows)
    n_infinity = sum(c == "Infinity" for r in rows for c in r[:78])
    n_nan = sum(c == "NaN" for r in rows for c in r[:78])
    assert n_infinity > 0 and n_nan > 0
    x = d.features.to_numpy()
    assert np.isposinf(x).sum() == n_infinity
    assert np.isnan(x).sum() == n_nan
    assert {"Web Attack – Brute Force", "Web Attack – Sql Injection", "Web Attack – XSS"} <= set(d.classes)


def test_traffic_labelling_85_columns_u0096(shared_data: Path) -> None:
    path = shared_data / "pcaps/gold_cicids2017_sqlinj/WebattackSQLinj.expected_TrafficLabelling_rows.csv"
    raw = path.read_bytes()
    assert b"\xc2\x96" in raw  # the U+0096 variant of the en dash
    d = load_cic([path])
    rows = _raw_rows(path)
    assert len(d) == len(rows) - 1 == 16
    assert set(d.classes) == {"Web Attack – Sql Injection"}
    # Destination Port comes from column 5, Flow Duration from column 8
    assert d.features["Destination Port"].tolist() == [float(r[4]) for r in rows[1:]]
    assert d.features["Flow Duration"].tolist() == [float(r[7]) for r in rows[1:]]


def test_extract_output_loads_as_flows(shared_data: Path, gold_sqlinj_pcap: Path, tmp_path: Path) -> None:
    from edge_nids.cli import main

    out = tmp_path / "flows.csv"
    assert (
        main(
            ["extract", "-q", "-o", str(out), "--label", "Web Attack – Sql Injection", str(gold_sqlinj_pcap)]
        )
        == 0
    )
    d = load_dataset("flows", [out])
    assert len(d) == len(_raw_rows(out)) - 1 > 0
    assert set(d.classes) == {"Web Attack – Sql Injection"}
    assert d.schema == CIC_IDS2017.name
    assert 80.0 in set(d.features["Destination Port"])


def test_unsw_bom_id_categoricals(shared_data: Path) -> None:
    path = shared_data / "unsw-nb15/UNSW_NB15_testing-set.csv"
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    d = load_unsw([path])
    assert len(d) == 82332
    assert "id" not in d.features.columns and "\ufeffid" not in d.features.columns
    assert d.categorical == ["proto", "service", "state"]
    assert d.features.shape[1] == 42
    assert int(d.is_attack.sum()) == 45332
    assert int((d.classes == "Normal").sum()) == 37000
    assert d.partition is None and "not the official" in d.notes[0]


def test_unsw_official_partitions(shared_data: Path) -> None:
    d = load_unsw(
        [
            shared_data / "unsw-nb15/UNSW_NB15_training-set.first5000.csv",
            shared_data / "unsw-nb15/UNSW_NB15_testing-set.csv",
        ]
    )
    assert d.partition is not None
    assert (d.partition == "train").sum() == 5000 and (d.partition == "test").sum() == 82332


def test_clear_errors(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_cic([tmp_path / "missing.csv"])
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("kdd99", [tmp_path])
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="2 columns"):
        load_cic([bad])
    with pytest.raises(DataError, match="not a UNSW-NB15"):
        load_unsw([shared_data / MLCVE / "stratified_sample_12001.csv"])
