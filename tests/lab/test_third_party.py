"""lab/third_party.py: what it keeps of a package's files (no download here)."""

from __future__ import annotations

import gzip
from pathlib import Path

from lab.third_party import _capture_bytes

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
