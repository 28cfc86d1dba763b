"""The shipped demo capture: small, and its labels agree with its packets."""

from __future__ import annotations

import ipaddress
import itertools
import struct
from pathlib import Path

import pytest

from lab.labels import read_labels
from lab.pcapcheck import capture_stats, check_labels, iter_ipv4
from lab.scenarios import LAB_NETS

CAPTURES = Path(__file__).resolve().parents[2] / "lab" / "captures"
PCAP = CAPTURES / "demo.pcap"
LABELS = CAPTURES / "demo.labels.csv"


def test_demo_capture_is_small() -> None:
    assert 0 < PCAP.stat().st_size <= 2_000_000
    assert PCAP.read_bytes()[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")  # little-endian classic pcap


def test_demo_has_several_attacks_inside_benign_traffic() -> None:
    rows = read_labels(LABELS)
    assert {r.label for r in rows} >= {"PortScan", "DoS SYN Flood", "DoS slowloris"}
    stats = capture_stats(PCAP)
    assert 20 <= stats.duration <= 60
    # Attacks lie inside the capture, one after another, with benign-only time before and after.
    assert stats.first + 2 < rows[0].start
    assert all(a.end <= b.start for a, b in itertools.pairwise(rows))
    assert rows[-1].end + 1 < stats.last


def test_every_label_window_holds_attack_packets_and_no_attacker_packet_is_unlabelled() -> None:
    rows = read_labels(LABELS)
    check = check_labels(PCAP, rows)
    for row, n in check.per_row:
        assert n >= 50, f"{row.scenario}: only {n} packets between {row.attacker} and {row.victim}"
    assert check.outside == 0
    assert check.other >= 500  # benign web/ssh/dns packets


def test_benign_traffic_runs_during_the_attacks() -> None:
    rows = read_labels(LABELS)
    attackers = {r.attacker for r in rows}
    benign_times = [t for t, s, d, _ in iter_ipv4(PCAP) if s not in attackers and d not in attackers]
    for row in rows:
        assert any(row.start <= t <= row.end for t in benign_times), row.scenario


def test_demo_uses_documentation_addresses_only() -> None:
    addrs = {a for _, s, d, _ in iter_ipv4(PCAP) for a in (s, d)}
    assert len(addrs) >= 3
    for a in addrs:
        assert any(ipaddress.ip_address(a) in net for net in LAB_NETS), a


@pytest.mark.parametrize("row_index", [0, 1, 2])
def test_attack_windows_match_the_tools_traffic_shape(row_index: int) -> None:
    """The scan probes many ports; the flood hits one port from many source ports; slowloris holds port 80."""
    rows = read_labels(LABELS)
    row = rows[row_index]
    ports: set[int] = set()
    sports: set[int] = set()
    data = PCAP.read_bytes()
    off = 24
    while off < len(data):
        sec, usec, incl, _ = struct.unpack_from("<IIII", data, off)
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        ts = sec + usec / 1e6
        if not (row.start <= ts <= row.end) or frame[12:14] != b"\x08\x00" or frame[23] != 6:
            continue
        src = ".".join(str(b) for b in frame[26:30])
        if src != row.attacker:
            continue
        ihl = (frame[14] & 0x0F) * 4
        sport, dport = struct.unpack_from("!HH", frame, 14 + ihl)
        ports.add(dport)
        sports.add(sport)
    if row.scenario == "nmap_syn":
        assert len(ports) >= 100
    elif row.scenario == "syn_flood":
        assert len(ports) == 1 and len(sports) >= 500
    else:
        assert ports == {80} and len(sports) >= 50


def test_extract_labels_every_attacker_flow_and_keeps_benign_flows(tmp_path: Path) -> None:
    """The shared labels contract end to end: ``edge-nids extract --labels`` on the demo capture."""
    import collections
    import csv

    from edge_nids.cli import main as cli_main

    out = tmp_path / "demo.csv"
    assert cli_main(["extract", str(PCAP), "-o", str(out), "--labels", str(LABELS), "-q"]) == 0
    with open(out, newline="") as fh:
        rows = [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(fh)]
    attackers = {r.attacker for r in read_labels(LABELS)}
    by_label = collections.Counter(r["Label"] for r in rows)
    for r in rows:
        touches_attacker = r["Source IP"] in attackers or r["Destination IP"] in attackers
        assert touches_attacker == (r["Label"] != "BENIGN"), r["Flow ID"]
    assert (
        by_label["PortScan"] >= 100 and by_label["DoS SYN Flood"] >= 500 and by_label["DoS slowloris"] >= 50
    )
    assert by_label["BENIGN"] >= 100
