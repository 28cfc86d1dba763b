"""The lab's labels file: exact format, round trip, and clear errors on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.labels import HEADER, LabelError, LabelRow, format_labels, parse_labels, read_labels, write_labels

ROWS = [
    LabelRow("nmap_syn", "PortScan", "198.51.100.66", "192.0.2.10", 1795710626.018810, 1795710628.340363),
    LabelRow(
        "syn_flood", "DoS SYN Flood", "198.51.100.66", "192.0.2.10", 1795710631.354696, 1795710634.222806
    ),
]


def test_header_is_the_shared_contract() -> None:
    assert HEADER == ("scenario", "label", "attacker", "victim", "start", "end")
    assert format_labels([]).splitlines() == ["scenario,label,attacker,victim,start,end"]


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    write_labels(path, ROWS)
    text = path.read_text()
    assert (
        text.splitlines()[1]
        == "nmap_syn,PortScan,198.51.100.66,192.0.2.10,1795710626.018810,1795710628.340363"
    )
    assert read_labels(path) == ROWS
    assert not list(tmp_path.glob("*.tmp"))


def test_covers_is_direction_agnostic_and_inclusive() -> None:
    row = ROWS[0]
    assert row.covers(row.start, "198.51.100.66", "192.0.2.10")
    assert row.covers(row.end, "192.0.2.10", "198.51.100.66")
    assert not row.covers(row.end + 1e-3, "192.0.2.10", "198.51.100.66")
    assert not row.covers(row.start + 1, "203.0.113.5", "192.0.2.10")


def test_addresses_are_normalised() -> None:
    row = LabelRow("x", "PortScan", "2001:DB8:0::1", "2001:db8::2", 1.0, 2.0)
    assert row.attacker == "2001:db8::1"
    text = "scenario,label,attacker,victim,start,end\nx,PortScan,2001:db8::1,2001:db8::2,1,2\n"
    assert parse_labels(text) == [row]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("scenario,label,src,dst,start,end\n", "line 1: header"),
        (
            "scenario,label,attacker,victim,start,end\nx,PortScan,198.51.100.1,192.0.2.1,1\n",
            "line 2: 5 fields",
        ),
        ("scenario,label,attacker,victim,start,end\nx,PortScan,198.51.100.1,192.0.2.300,1,2\n", "not an IP"),
        ("scenario,label,attacker,victim,start,end\nx,PortScan,198.51.100.1,192.0.2.1,3,2\n", "before start"),
        ("scenario,label,attacker,victim,start,end\nx,BENIGN,198.51.100.1,192.0.2.1,1,2\n", "BENIGN"),
        (
            "scenario,label,attacker,victim,start,end\nx,PortScan,198.51.100.1,192.0.2.1,soon,2\n",
            "not numbers",
        ),
        ("scenario,label,attacker,victim,start,end\nx,PortScan,198.51.100.1,192.0.2.1,nan,2\n", "finite"),
        ("scenario,label,attacker,victim,start,end\nx,,198.51.100.1,192.0.2.1,1,2\n", "label"),
        ("scenario,label,attacker,victim,start,end\nx,PortScan,192.0.2.1,192.0.2.1,1,2\n", "same address"),
    ],
)
def test_bad_text_raises_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(LabelError, match=message) as info:
        parse_labels(text, "run/labels.csv")
    assert str(info.value).startswith("run/labels.csv")


def test_blank_lines_are_skipped() -> None:
    text = format_labels(ROWS).replace("\n", "\n\n", 1)
    assert parse_labels(text) == ROWS


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match=r"missing\.csv: cannot read"):
        read_labels(tmp_path / "missing.csv")
