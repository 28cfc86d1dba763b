"""``edge-nids extract``: golden outputs of the scenario captures, labels, errors."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from edge_nids.cli import main
from edge_nids.flows.extract import format_timestamp, format_value
from edge_nids.flows.labels import LabelError, load_labels
from edge_nids.flows.schema import EDGE_EXTRA_HEADER, TRAFFIC_LABELLING_HEADER
from lab.labels import LabelRow

DATA = Path(__file__).resolve().parent.parent / "data"
T0 = 1_700_000_000  # start of every scenario capture, epoch s


def _load_make_golden():
    spec = importlib.util.spec_from_file_location("make_golden", DATA / "make_golden.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


make_golden = _load_make_golden()
GOLDEN_CASES = [(c, p) for c in make_golden.captures() for p in make_golden.PROFILES]


@pytest.mark.parametrize(("capture", "profile"), GOLDEN_CASES, ids=[f"{c.name}-{p}" for c, p in GOLDEN_CASES])
def test_scenario_output_matches_golden(capture: Path, profile: str) -> None:
    csv_path = make_golden.GOLDEN / f"{capture.name}.{profile}.csv"
    summary_path = make_golden.GOLDEN / f"{capture.name}.{profile}.summary.json"
    assert csv_path.is_file(), f"missing golden file {csv_path}: run tests/data/make_golden.py"
    text, summary = make_golden.render(capture, profile)
    assert json.loads(summary) == json.loads(summary_path.read_text())
    assert text == csv_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("profile", make_golden.PROFILES)
def test_format_and_link_type_variants_give_identical_rows(profile: str) -> None:
    base = make_golden.render(DATA / "tcp_fin_close.pcap", profile)[0]
    variants = ["_be.pcap", "_ns.pcap", "_be_ns.pcap", ".pcapng", "_be_ns.pcapng", "_multi.pcapng"]
    variants += ["_null.pcap", "_raw.pcap", "_sll.pcap", "_sll2.pcap"]
    for v in variants:
        assert make_golden.render(DATA / f"tcp_fin_close{v}", profile)[0] == base, v


def test_golden_flows_of_tcp_fin_close_hand_checked() -> None:
    """The hand-checked facts of tests/data/golden/README.md, asserted."""
    cic = list(csv.reader((make_golden.GOLDEN / "tcp_fin_close.pcap.cicids2017.csv").open()))
    cor = list(csv.reader((make_golden.GOLDEN / "tcp_fin_close.pcap.corrected.csv").open()))
    assert cic[0] == TRAFFIC_LABELLING_HEADER
    col = {h: i for i, h in enumerate(TRAFFIC_LABELLING_HEADER)}
    main_flow, trailing = cic[1], cic[2]
    # packets 1-8 (ends at the server's FIN), then 9-10 as a trailing flow
    assert (main_flow[col[" Total Fwd Packets"]], main_flow[col[" Total Backward Packets"]]) == ("4", "4")
    assert main_flow[col[" Flow Duration"]] == "4000"
    assert (trailing[col[" Total Fwd Packets"]], trailing[col[" Total Backward Packets"]]) == ("1", "1")
    assert trailing[col[" Flow Duration"]] == "500"
    # corrected: one flow of all 10 packets, closed by the final ACK
    assert len(cor) == 2 and cor[1][col[" Flow Duration"]] == "5000"
    assert cor[1][col["Init_Win_bytes_forward"]] == "64240"
    assert cor[1][col[" Init_Win_bytes_backward"]] == "65160"  # the SYN-ACK's window


def _extract(tmp_path: Path, *args: str) -> list[list[str]]:
    out = tmp_path / "out.csv"
    assert main(["extract", *args, "-o", str(out), "-q"]) == 0
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    if "corrected" in args:
        assert rows[0] == [*TRAFFIC_LABELLING_HEADER[:-1], *EDGE_EXTRA_HEADER, " Label"]
    else:
        assert rows[0] == TRAFFIC_LABELLING_HEADER
    return rows[1:]


def test_header_and_label_text(tmp_path: Path) -> None:
    rows = _extract(tmp_path, str(DATA / "tcp_fin_close.pcap"), "--label", "DoS Hulk")
    assert [r[-1] for r in rows] == ["DoS Hulk", "DoS Hulk"]
    assert all(len(r) == 85 for r in rows)
    rows = _extract(tmp_path, str(DATA / "tcp_fin_close.pcap"))
    assert {r[-1] for r in rows} == {"BENIGN"}


def test_several_inputs_share_one_table(tmp_path: Path) -> None:
    rows = _extract(
        tmp_path, str(DATA / "udp_dns.pcap"), str(DATA / "tcp_rst_close.pcap"), "--profile", "corrected"
    )
    assert sorted(r[4] for r in rows) == ["53", "80", "9"]


def test_labels_file(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "scenario,label,attacker,victim,start,end\n"
        f"early,Too Early,198.51.100.20,192.0.2.10,{T0 - 100},{T0 - 1}\n"
        f"web,Web Attack,198.51.100.20,192.0.2.10,{T0 - 1}.5,{T0 + 1}\n"
        f"dns,Other,192.0.2.10,198.51.100.20,{T0 - 1},{T0 + 1}\n"
    )
    rows = _extract(
        tmp_path, str(DATA / "tcp_fin_close.pcap"), str(DATA / "udp_dns.pcap"), "--labels", str(labels)
    )
    by_dport = {r[4]: r[-1] for r in rows}
    # the pair matches in either direction; the first row whose window holds the start wins
    assert by_dport["80"] == "Web Attack"
    assert by_dport["53"] == "BENIGN"  # 198.51.100.53 is not in any row


def test_labels_row_with_any_source_labels_every_flow_of_its_victim(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "scenario,label,attacker,victim,start,end\n"
        f"spoofed,DoS SYN Flood,0.0.0.0,198.51.100.20,{T0 - 1},{T0 + 1}\n"
        f"late,Other,0.0.0.0,198.51.100.53,{T0 + 5},{T0 + 9}\n"
    )
    rows = _extract(
        tmp_path, str(DATA / "tcp_fin_close.pcap"), str(DATA / "udp_dns.pcap"), "--labels", str(labels)
    )
    by_dport = {r[4]: r[-1] for r in rows}
    # the web flow has the victim 198.51.100.20 at one end (any source); the DNS server's row
    # has a window after its flow
    assert by_dport["80"] == "DoS SYN Flood"
    assert by_dport["53"] == "BENIGN"
    lab_row = LabelRow("spoofed", "DoS SYN Flood", "0.0.0.0", "192.0.2.10", T0 - 1, T0 + 1)
    assert lab_row.covers(T0, "1.2.3.4", "192.0.2.10") and lab_row.covers(T0, "192.0.2.10", "9.9.9.9")
    assert not lab_row.covers(T0, "1.2.3.4", "192.0.2.11") and not lab_row.covers(
        T0 + 2, "1.2.3.4", "192.0.2.10"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b\n", "header must be"),
        ("scenario,label,attacker,victim,start,end\nx,L,10.0.0.300,10.0.0.2,1,2\n", "not an IP address"),
        ("scenario,label,attacker,victim,start,end\nx,L,10.0.0.1,10.0.0.2,one,2\n", "not a number"),
        ("scenario,label,attacker,victim,start,end\nx,L,10.0.0.1,10.0.0.2,5,2\n", "before start"),
        ("scenario,label,attacker,victim,start,end\nx,L,10.0.0.1\n", "expected 6 fields"),
    ],
)
def test_bad_labels_file(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(content)
    with pytest.raises(LabelError, match=message):
        load_labels(labels)
    rc = main(["extract", str(DATA / "udp_dns.pcap"), "-o", str(tmp_path / "o.csv"), "--labels", str(labels)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and err.count("\n") == 0 and "Traceback" not in err


def test_bad_inputs_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_capture = tmp_path / "notes.txt"
    not_capture.write_text("hello, this is not a capture\n")
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    cases = [
        ([str(tmp_path / "missing.pcap"), "-o", str(tmp_path / "o.csv")], "no such file"),
        ([str(not_capture), "-o", str(tmp_path / "o.csv")], "not a pcap or pcapng file"),
        ([str(empty), "-o", str(tmp_path / "o.csv")], "empty file"),
        ([str(tmp_path), "-o", str(tmp_path / "o.csv")], "is a directory"),
        ([str(DATA / "udp_dns.pcap"), "-o", str(tmp_path / "no" / "o.csv")], "cannot write"),
        ([str(DATA / "udp_dns.pcap"), "-o", str(tmp_path / "o.csv"), "--max-flows", "0"], "max_flows"),
        (
            [str(DATA / "udp_dns.pcap"), "-o", str(tmp_path / "o.csv"), "--labels", "/nonexistent"],
            "no such labels",
        ),
    ]
    for args, message in cases:
        assert main(["extract", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("edge-nids extract: error:") and message in err and "\n" not in err, err
    # a bad capture among good ones fails before any output is written
    out = tmp_path / "partial.csv"
    assert main(["extract", str(DATA / "udp_dns.pcap"), str(not_capture), "-o", str(out)]) == 2
    assert not out.exists()


def test_bad_profile_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["extract", str(DATA / "udp_dns.pcap"), "-o", "x.csv", "--profile", "nope"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_summary_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.csv"
    assert (
        main(["extract", str(DATA / "truncated_and_corrupt.pcap"), "-o", str(out), "--profile", "corrected"])
        == 0
    )
    err = capsys.readouterr().err
    assert "packets 16, decoded 2, flows 2" in err
    assert "truncated_tcp 1" in err and "bad_tcp_offset 2" in err and "packets/s" in err


def test_timestamp_format_and_offset() -> None:
    assert (
        format_timestamp(1_499_348_407_419_016, -3) == "6/7/2017 10:40:07"
    )  # the gold capture's first packet
    assert format_timestamp(T0 * 1_000_000) == "14/11/2023 22:13:20"
    assert format_value(float("nan")) == "NaN" and format_value(float("inf")) == "Infinity"
    assert format_value(3) == "3" and format_value(0.5) == "0.5"


def test_utc_offset_option(tmp_path: Path) -> None:
    rows = _extract(tmp_path, str(DATA / "udp_dns.pcap"), "--utc-offset", "-3")
    assert rows[0][6] == "14/11/2023 19:13:20"


def test_progress_line_on_slow_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from edge_nids.flows import extract as ex

    monkeypatch.setattr(ex, "_PROGRESS_AFTER_S", 0.0)  # pretend the input is slow
    monkeypatch.setattr(ex, "_PROGRESS_EVERY", 8)
    err = io.StringIO()
    ex.extract([DATA / "bulk_transfer.pcap"], io.StringIO(), progress=True, progress_stream=err)
    text = err.getvalue()
    assert text.count("\r") == 4 and "packets/s" in text and text.endswith("\n")  # 33 packets / 8
    quiet = io.StringIO()
    ex.extract([DATA / "bulk_transfer.pcap"], io.StringIO(), progress=False, progress_stream=quiet)
    assert quiet.getvalue() == ""


def test_output_dash_is_standard_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["extract", str(DATA / "udp_dns.pcap"), "-o", "-", "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(",")[:2] == ["Flow ID", " Source IP"] and len(lines) == 2
    assert not (tmp_path / "-").exists()
