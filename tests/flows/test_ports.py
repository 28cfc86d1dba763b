"""``flow.ports`` and ``flow.stealth`` (``edge_nids.flows.context.PortTracker``): the port-scan
rule's values, on hand-built probes with hand-worked counts and on a real nmap capture."""

from __future__ import annotations

from pathlib import Path

from edge_nids.flows.context import PORTS_DEPTH, PORTS_MAX_KEYS, PortTracker
from edge_nids.flows.decode import Decoder
from edge_nids.flows.packet import ACK, FIN, RST, SYN
from edge_nids.flows.pcap import open_capture
from edge_nids.flows.table import Flow, FlowConfig, FlowTable

from .helpers import A, B, C, pkt

S = 1_000_000
PSH, URG = 0x08, 0x20


def _flows(packets, profile: str = "corrected") -> list[Flow]:
    t = FlowTable(FlowConfig(profile=profile))
    out: list[Flow] = []
    for p in packets:
        out += t.add(p)
    return sorted(out + t.flush(), key=lambda f: f.first_us)


def test_ports_counts_other_unanswered_ports_of_one_host_in_300_s() -> None:
    """A slow SYN scan of B from A, one probe every 20 s (refused; open: a handshake, then RST,
    no data; or answered with data), a client C on the side, a connection first seen
    mid-stream, and probes after the oldest ones left the 300 s window."""
    packets = []
    for i, (port, answer) in enumerate([(21, "rst"), (22, "open"), (23, "rst"), (80, "data"), (25, "rst")]):
        t = i * 20 * S
        packets.append(pkt(t, A, B, 40000 + i, port, flags=SYN))
        if answer == "rst":
            packets.append(pkt(t + 100, B, A, port, 40000 + i, flags=RST | ACK))
            continue
        packets.append(pkt(t + 100, B, A, port, 40000 + i, flags=SYN | ACK))
        packets.append(pkt(t + 200, A, B, 40000 + i, port, flags=ACK))
        if answer == "data":
            packets.append(pkt(t + 300, B, A, port, 40000 + i, flags=PSH | ACK, payload=200))
        packets.append(pkt(t + 400, A, B, 40000 + i, port, flags=RST | ACK))
    packets += [
        pkt(81 * S, C, B, 50000, 110, flags=SYN),  # another source: a count of its own
        pkt(82 * S, A, B, 40009, 21, flags=SYN),  # 21 again: its latest flow replaces the old one
        pkt(83 * S, A, B, 40010, 8080, flags=PSH | ACK, payload=100),  # mid-stream: not counted
        pkt(84 * S, A, B, 40011, 443, flags=SYN),
        pkt(345 * S, A, B, 40012, 995, flags=SYN),  # 22 (20 s) and 23 (40 s) are > 300 s old
    ]
    got = [(f.dport, f.ports) for f in _flows(packets)]
    assert got == [
        (21, 0),
        (22, 1),  # 21 refused
        (23, 2),  # 21, and 22: a handshake that carried no data is unanswered too
        (80, 3),  # 21, 22, 23
        (25, 3),  # 80 answered with data
        (110, 0),
        (21, 3),  # 22, 23, 25: its own port is not another
        (8080, 0),  # first seen mid-stream: no count, and not remembered
        (443, 4),  # 22, 23, 25, and 21's latest flow (a SYN with no reply yet)
        (995, 3),  # 25, 21, 443
    ]
    # the 2017 profile keeps none of it
    assert {f.ports for f in _flows(packets, "cicids2017")} == {0}


def test_stealth_is_an_empty_first_segment_without_syn_ack_or_rst() -> None:
    """nmap's FIN (-sF), NULL (-sN) and Xmas (-sX) probes are stealth; a FIN+ACK (Maimon,
    or any close seen mid-stream), a SYN, a bare RST and a flagless segment with a payload
    (tcpdump's fuzzed ``*-oobr.pcap`` test captures) are not."""
    firsts = [FIN, 0, FIN | PSH | URG, FIN | ACK, SYN, RST, 0]
    packets = [
        pkt(i * S, A, B, 40000 + i, 1000 + i, flags=f, payload=60 if i == 6 else 0)
        for i, f in enumerate(firsts)
    ]
    flows = _flows(packets)
    assert [f.stealth for f in flows] == [True, True, True, False, False, False, False]
    # the probes count as the pair's ports (no reply: unanswered): FIN, NULL, Xmas, the SYN
    assert [f.ports for f in flows] == [0, 1, 2, 0, 3, 0, 0]


def test_a_scan_of_many_ports_saturates_and_spoofed_sources_stay_bounded() -> None:
    flows = _flows([pkt(i * 1000, A, B, 40000 + i, 1 + i, flags=SYN) for i in range(3 * PORTS_DEPTH)])
    assert [f.ports for f in flows] == [*range(PORTS_DEPTH), *[PORTS_DEPTH] * (2 * PORTS_DEPTH)]
    tracker = PortTracker()
    for f in _flows(
        [pkt(i, f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", B, 1024, 80, flags=SYN) for i in range(3000)]
    ):
        tracker.observe(f)
    assert len(tracker) == PORTS_MAX_KEYS


def test_the_ndpi_tcp_scan_capture(shared_data: Path) -> None:
    """attacks_public/ndpi_tcp_scan.pcapng (tcpdump -nn): 192.168.1.178 probes 192.168.1.2 on
    80 and 443 (connect, then RST), 445 (SYN, refused), 3389 (SYN, win 1024), then a FIN probe
    to 3390, a NULL probe to 3391 and an Xmas probe to 3392, each refused, over 40 s."""
    t = FlowTable(FlowConfig(profile="corrected"))
    dec = Decoder()
    flows: list[Flow] = []
    with open_capture(shared_data / "pcaps" / "attacks_public" / "ndpi_tcp_scan.pcapng") as cap:
        for ts, lt, frame, wire in cap:
            p = dec.decode(lt, frame, ts, wire)
            if p is not None:
                flows += t.add(p)
    flows = sorted(flows + t.flush(), key=lambda f: f.first_us)
    assert {(f.src_ip, f.dst_ip) for f in flows} == {("192.168.1.178", "192.168.1.2")}
    assert [(f.dport, f.ports, f.stealth) for f in flows] == [
        (80, 0, False),
        (443, 1, False),  # 80 has no reply yet
        (445, 2, False),
        (3389, 3, False),
        (3390, 4, True),
        (3391, 5, True),
        (3392, 6, True),
    ]
