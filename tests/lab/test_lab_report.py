"""lab.report: tables and the marker replacement that regenerates docs/lab.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.report import BEGIN, END, ReportError, count_labels, render_captures, render_table, replace_block


def test_table_lists_each_scenario_label_and_totals() -> None:
    counts = {
        ("test", "demo", "BENIGN"): {"cicids2017": 259, "corrected": 270},
        ("test", "demo", "PortScan"): {"cicids2017": 345, "corrected": 345},
        ("test", "web", "BENIGN"): {"cicids2017": 41, "corrected": 41},
    }
    lines = render_table(counts).splitlines()
    assert "| test | demo | BENIGN | 259 | 270 |" in lines
    assert "| test | BENIGN | 300 | 311 |" in lines
    assert "| test | PortScan | 345 | 345 |" in lines


def test_replace_block_keeps_the_rest_and_is_idempotent() -> None:
    doc = f"# Lab\nintro\n{BEGIN}\nold table\n{END}\nafter\n"
    once = replace_block(doc, "| a |\n")
    assert once == f"# Lab\nintro\n{BEGIN}\n| a |\n{END}\nafter\n"
    assert replace_block(once, "| a |\n") == once
    with pytest.raises(ReportError, match="markers"):
        replace_block("no markers here", "x")


def test_capture_table_reads_summary(tmp_path: Path) -> None:
    run = tmp_path / "train"
    run.mkdir()
    summary = {
        "seed": 1, "scale": 1.0, "seconds": 251.4,
        "scenarios": [{"name": "web", "packets": 5110, "dropped": 0, "duration_s": 36.04,
                       "pcap_bytes": 8965660, "attacker_outside": 0}],
    }  # fmt: skip
    (run / "summary.json").write_text(json.dumps(summary))
    lines = render_captures([run, tmp_path / "missing"]).splitlines()
    assert "| train | 1 | 1.0 | web | 5110 | 0 | 36.0 | 8.97 | 0 |" in lines
    assert lines[-1].startswith("| train | | | **whole run") and "| 251 |" in lines[-1]


def test_count_labels_reads_the_cic_label_column(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("Flow ID, Source IP, Label\na,1.2.3.4,BENIGN\nb,1.2.3.4,PortScan\nc,1.2.3.5,BENIGN\n")
    assert count_labels(path) == {"BENIGN": 2, "PortScan": 1}
