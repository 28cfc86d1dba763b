"""Capture-file reading: pcap/pcapng variants, chunk boundaries, cut files, bad files."""

from __future__ import annotations

import gzip
import itertools
import logging
import struct
from pathlib import Path

import pytest

from edge_nids.flows import pcap
from edge_nids.flows.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    CaptureError,
    open_capture,
)

DATA = Path(__file__).resolve().parent.parent / "data"

T0 = 1_700_000_000_000_000  # µs: the scenarios' start, 2023-11-14 22:13:20 UTC
#: tcp_fin_close: packet times (µs after T0) and frame sizes, from tests/data/README.md
FIN_OFFSETS = [0, 500, 1000, 1200, 2000, 3000, 3500, 4000, 4500, 5000]
FIN_SIZES = [60, 66, 60, 72, 60, 154, 60, 60, 60, 60]
FIN_FROM_CLIENT = [True, False, True, True, False, False, True, False, True, False]


def read_all(path: Path) -> list[tuple[int, int, bytes, int]]:
    with open_capture(path) as cap:
        return list(cap)


def test_pcap_le_us_fields() -> None:
    with open_capture(DATA / "tcp_fin_close.pcap") as cap:
        assert cap.format == "pcap"
        assert cap.linktype == LINKTYPE_ETHERNET
        recs = list(cap)
    assert cap.records == 10
    assert cap.counts == {}
    assert [ts - T0 for ts, _, _, _ in recs] == FIN_OFFSETS
    assert [len(f) for _, _, f, _ in recs] == FIN_SIZES
    assert [w for _, _, _, w in recs] == FIN_SIZES
    assert all(lt == LINKTYPE_ETHERNET for _, lt, _, _ in recs)
    # frame 1: client MAC 02:00:00:00:00:0a -> server 02:00:00:00:00:14, IPv4
    assert recs[0][2][:14] == bytes.fromhex("02000000001402000000000a0800")


@pytest.mark.parametrize(
    "name",
    [
        "tcp_fin_close_ns.pcap",  # ns resolution, +123 ns
        "tcp_fin_close_be.pcap",  # big-endian
        "tcp_fin_close_be_ns.pcap",  # big-endian, ns, +999 ns
        "tcp_fin_close.pcapng",  # default 10^-6 resolution, blocks to skip, an EPB comment
        "tcp_fin_close_be_ns.pcapng",  # big-endian, if_tsresol 10^-9, +456 ns
    ],
)
def test_format_variants_give_identical_records(name: str) -> None:
    assert read_all(DATA / name) == read_all(DATA / "tcp_fin_close.pcap")


def test_ns_timestamps_are_floored_to_us() -> None:
    # +999 ns past each µs: flooring keeps the µs, rounding would not.
    assert [ts - T0 for ts, *_ in read_all(DATA / "tcp_fin_close_be_ns.pcap")] == FIN_OFFSETS


@pytest.mark.parametrize(
    ("name", "linktype", "header"),
    [
        ("tcp_fin_close_sll.pcap", LINKTYPE_LINUX_SLL, 16),
        ("tcp_fin_close_sll2.pcap", LINKTYPE_LINUX_SLL2, 20),
        ("tcp_fin_close_raw.pcap", LINKTYPE_RAW, 0),
        ("tcp_fin_close_null.pcap", LINKTYPE_NULL, 4),
    ],
)
def test_link_type_variants(name: str, linktype: int, header: int) -> None:
    base = read_all(DATA / "tcp_fin_close.pcap")
    with open_capture(DATA / name) as cap:
        assert cap.linktype == linktype
        recs = list(cap)
    assert [r[0] for r in recs] == [r[0] for r in base]
    assert all(r[1] == linktype for r in recs)
    # the same IP bytes (Ethernet padding included) behind a different link header
    assert [r[2][header:] for r in recs] == [r[2][14:] for r in base]
    assert [r[3] for r in recs] == [r[3] - 14 + header for r in base]


def test_pcapng_interfaces_resolutions_and_sections() -> None:
    """Two sections (LE then BE), three interfaces with 2^-20 s, 10^-7 s and offset timestamps."""
    with open_capture(DATA / "tcp_fin_close_multi.pcapng") as cap:
        assert cap.format == "pcapng"
        recs = list(cap)
        assert cap.linktype == LINKTYPE_ETHERNET  # the first interface
    assert [ts - T0 for ts, *_ in recs] == FIN_OFFSETS
    expected_links = [LINKTYPE_ETHERNET if c else LINKTYPE_LINUX_SLL2 for c in FIN_FROM_CLIENT[:7]]
    expected_links += [LINKTYPE_RAW] * 3
    assert [lt for _, lt, _, _ in recs] == expected_links
    base = read_all(DATA / "tcp_fin_close.pcap")
    for (_, lt, frame, wire), (_, _, bframe, bwire) in zip(recs, base, strict=True):
        header = {LINKTYPE_ETHERNET: 14, LINKTYPE_LINUX_SLL2: 20, LINKTYPE_RAW: 0}[lt]
        assert frame[header:] == bframe[14:]
        assert wire == bwire - 14 + header


def test_pcapng_simple_packet_blocks_cut_to_snaplen() -> None:
    recs = read_all(DATA / "tcp_fin_close_spb.pcapng")
    base = read_all(DATA / "tcp_fin_close.pcap")
    assert len(recs) == 10
    assert all(ts == 0 for ts, *_ in recs)  # simple packet blocks carry no time
    assert [len(f) for _, _, f, _ in recs] == [min(s, 64) for s in FIN_SIZES]
    assert [w for *_, w in recs] == FIN_SIZES
    assert [f for _, _, f, _ in recs] == [b[2][:64] for b in base]


@pytest.mark.parametrize(("name", "kept"), [("truncated_file.pcap", 9), ("truncated_file.pcapng", 9)])
def test_file_cut_inside_last_record_warns_and_counts(
    name: str, kept: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="edge_nids.flows.pcap"), open_capture(DATA / name) as cap:
        recs = list(cap)
    assert len(recs) == kept
    assert cap.counts == {"truncated_record": 1}
    assert recs == read_all(DATA / "tcp_fin_close.pcap")[:kept]
    assert name in caplog.text and "ends inside" in caplog.text


@pytest.mark.parametrize("chunk", [1, 7, 100])
def test_tiny_read_chunks_give_the_same_records(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """Every record and block straddles read boundaries; the result must not change."""
    names = [
        "tcp_fin_close.pcap",
        "tcp_fin_close_multi.pcapng",
        "ipv4_fragments.pcap",
        "truncated_file.pcapng",
    ]
    expected = {n: read_all(DATA / n) for n in names}
    monkeypatch.setattr(pcap, "_CHUNK", chunk)
    for n in names:
        assert read_all(DATA / n) == expected[n], n


@pytest.mark.shared_data
def test_gold_capture_records(gold_sqlinj_pcap: Path) -> None:
    with open_capture(gold_sqlinj_pcap) as cap:
        recs = list(cap)
    assert cap.format == "pcap" and cap.linktype == LINKTYPE_ETHERNET
    assert len(recs) == 94 and cap.counts == {}
    # tcpdump -tt: first packet 1499348407.419016, length 74 (the SYN of port 36196)
    assert recs[0][0] == 1_499_348_407_419_016
    assert len(recs[0][2]) == recs[0][3] == 74
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(recs))


def test_scenarios_agree_with_scapy_readers() -> None:
    """An independent reader (scapy) sees the same frames, lengths and link types."""
    scapy_utils = pytest.importorskip("scapy.utils")
    for path in sorted(DATA.glob("*.pcap*")):
        if path.name.startswith("truncated_file"):
            continue
        ours = read_all(path)
        reader_cls = scapy_utils.RawPcapNgReader if path.suffix == ".pcapng" else scapy_utils.RawPcapReader
        theirs = []
        with reader_cls(str(path)) as reader:
            for frame, meta in reader:
                theirs.append((frame, meta.wirelen, getattr(meta, "linktype", None)))
        assert [(f, w) for _, _, f, w in ours] == [(f, w) for f, w, _ in theirs], path.name
        if path.suffix == ".pcap":
            with reader_cls(str(path)) as reader:
                stamps = [m.sec * 1_000_000 + (m.usec // 1000 if reader.nano else m.usec) for _, m in reader]
            assert [ts for ts, *_ in ours] == stamps, path.name
        elif path.name != "tcp_fin_close_multi.pcapng":
            # (scapy keeps interface numbers across sections, against the pcapng spec,
            # so it misnames the second section's link type; frames and lengths agree)
            assert [lt for _, lt, _, _ in ours] == [lt for _, _, lt in theirs], path.name


# -- files that are not (good) captures ------------------------------------------------------


def _first_bytes(n: int) -> bytes:
    return (DATA / "tcp_fin_close.pcap").read_bytes()[:n]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"Flow ID,Source IP\n1,2\n", "not a pcap or pcapng file"),
        (_first_bytes(10), "truncated pcap header"),
        (_first_bytes(4) + struct.pack("<HH", 3, 0) + _first_bytes(24)[8:], "unsupported pcap version 3.0"),
        (gzip.compress(_first_bytes(200), mtime=0), "gzip-compressed"),
        (b"\x34\xcd\xb2\xa1" + _first_bytes(24)[4:], "modified (Kuznetzov) pcap is not supported"),
        (b"\x0a\x0d\x0d\x0a" + bytes(20), "bad byte-order magic"),
        (b"\x0a\x0d\x0d\x0a" + bytes(8), "truncated pcapng section header"),
        (
            b"\x0a\x0d\x0d\x0a" + struct.pack("<IIHHq", 28, 0x1A2B3C4D, 2, 0, -1) + struct.pack("<I", 28),
            "unsupported pcapng version 2.0",
        ),
    ],
)
def test_bad_files_raise_capture_error_naming_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError) as info:
        open_capture(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="no such file"):
        open_capture(tmp_path / "nope.pcap")
    with pytest.raises(CaptureError, match="is a directory"):
        open_capture(tmp_path)


def test_absurd_record_length_stops_with_a_count(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = (DATA / "tcp_fin_close.pcap").read_bytes()
    first = 24 + 16 + 60
    bad = good[:first] + struct.pack("<IIII", 1_700_000_000, 0, 10_000_000, 60) + good[first + 16 :]
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(bad)
    with caplog.at_level(logging.WARNING), open_capture(path) as cap:
        recs = list(cap)
    assert len(recs) == 1
    assert cap.counts == {"bad_record_length": 1}
    assert "10000000" in caplog.text


def test_capture_iterates_once_and_closes() -> None:
    cap = open_capture(DATA / "udp_dns.pcap")
    with cap:
        assert len(list(cap)) == 3
        with pytest.raises(CaptureError, match="only once"):
            iter(cap)
    assert cap._file.closed
