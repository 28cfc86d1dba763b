"""lab/third_party.py: what it keeps of a package's files (no download here)."""

from __future__ import annotations

import gzip
from fnmatch import fnmatch
from pathlib import Path

from lab.third_party import EXCLUDE, _capture_bytes, _out_name

DATA = Path(__file__).resolve().parents[1] / "data"


def test_captures_are_kept_decompressed_and_other_files_left_out() -> None:
    pcap = (DATA / "tcp_fin_close.pcap").read_bytes()
    pcapng = (DATA / "tcp_fin_close.pcapng").read_bytes()
    assert _capture_bytes(pcap) == pcap
    assert _capture_bytes(pcapng) == pcapng
    # libtrace's examples are gzipped twice
    assert _capture_bytes(gzip.compress(gzip.compress(pcap))) == pcap
    assert _capture_bytes(b"Mon Jan  1 tcptrace README\n") is None
    assert _capture_bytes(gzip.compress(b"plain text")) is None


def test_kept_names_carry_a_suffix_the_check_reads() -> None:
    pcap = (DATA / "tcp_fin_close.pcap").read_bytes()
    pcapng = (DATA / "tcp_fin_close.pcapng").read_bytes()
    assert _out_name("icmp.pcapng.gz", pcapng) == "icmp.pcapng"
    assert _out_name("many_interfaces.pcapng.1", pcapng) == "many_interfaces.pcapng.1.pcapng"
    assert _out_name("trace.dmp", pcap) == "trace.dmp.pcap"
    assert _out_name("http.cap", pcap) == "http.cap"


def test_captures_a_suite_names_as_attacks_are_left_out() -> None:
    assert any(fnmatch("resp_3_malicious.pcap", g) for g in EXCLUDE)
    assert not any(fnmatch("resp_1_benchmark.pcap", g) for g in EXCLUDE)
