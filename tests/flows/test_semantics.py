"""The ``corrected`` profile's rules for real traffic, on scenario captures checked by hand
(tests/data/README.md describes them packet by packet): remnants, originator, continuation,
context. ``cicids2017`` keeps the 2017 build's behaviour on the same packets."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from edge_nids.flows.context import CONTEXT_COLUMNS, CONTEXT_MAX_KEYS, ContextTracker
from edge_nids.flows.decode import Decoder
from edge_nids.flows.packet import ACK, FIN, RST, SYN
from edge_nids.flows.pcap import open_capture
from edge_nids.flows.schema import EDGE_FLOWS
from edge_nids.flows.table import REMNANT_US, Flow, FlowConfig, FlowTable, service_side

from .helpers import A, B, pkt

S = 1_000_000

DATA = Path(__file__).resolve().parents[1] / "data"
C4, S4 = "192.0.2.10", "198.51.100.20"


def flows_of(name: str, profile: str = "corrected") -> tuple[FlowTable, list[Flow]]:
    table = FlowTable(FlowConfig(profile=profile))
    dec = Decoder()
    out: list[Flow] = []
    with open_capture(DATA / name) as cap:
        for ts, lt, frame, wire in cap:
            p = dec.decode(lt, frame, ts, wire)
            if p is not None:
                out.extend(table.add(p))
    out.extend(table.flush())
    return table, out


def ctx(flow: Flow) -> dict[str, int]:
    return dict(zip((c[0] for c in CONTEXT_COLUMNS), flow.context, strict=True))


def test_packets_trailing_a_close_are_absorbed_for_one_second() -> None:
    table, flows = flows_of("tcp_remnants.pcap")
    # the connection (10 packets), the repeated FIN and duplicate ACK 0.3 s later absorbed,
    # the stray ACK 2.5 s after the close a flow of its own
    assert [(f.fwd_pkts, f.bwd_pkts, f.end_reason) for f in flows] == [(5, 5, "fin"), (1, 0, "end-of-input")]
    assert table.remnants == 2
    assert flows[0].handshake and not flows[1].handshake
    # the 2017 build makes flows of them: the trailing flows after the first FIN, then two more
    _, cic = flows_of("tcp_remnants.pcap", "cicids2017")
    assert len(cic) == 3


def test_a_syn_after_a_close_opens_a_new_connection() -> None:
    t = FlowTable(FlowConfig(profile="corrected"))
    out = []
    for p in (
        pkt(0, A, B, flags=SYN),
        pkt(10, B, A, 80, 40000, flags=SYN | ACK),
        pkt(20, A, B, flags=RST),
        pkt(30, A, B, flags=RST),  # repeated RST: a remnant
        pkt(100, A, B, flags=SYN),  # port reused at once: a new flow
    ):
        out.extend(t.add(p))
    out.extend(t.flush())
    assert [(f.fwd_pkts, f.bwd_pkts, f.end_reason) for f in out] == [(2, 1, "rst"), (1, 0, "end-of-input")]
    assert t.remnants == 1
    late = FlowTable(FlowConfig(profile="corrected"))
    for p in (pkt(0, A, B, flags=SYN), pkt(10, A, B, flags=RST), pkt(10 + REMNANT_US + 1, A, B, flags=ACK)):
        late.add(p)
    assert late.remnants == 0 and len(late) == 1  # more than 1 s after the close: a flow


def test_a_connection_seen_mid_stream_is_oriented_by_its_service_port() -> None:
    _, (flow,) = flows_of("tcp_midstream.pcap")
    assert (flow.src_ip, flow.sport, flow.dst_ip, flow.dport) == (C4, 51000, S4, 443)
    # forward payload: the 50-byte request and 6 padding bytes in each of the two bare ACKs
    assert (flow.fwd_pkts, flow.bwd_pkts, flow.fwd_bytes, flow.bwd_bytes) == (3, 2, 62, 500)
    assert not flow.handshake
    _, (cic,) = flows_of("tcp_midstream.pcap", "cicids2017")
    assert (cic.src_ip, cic.sport) == (S4, 443)  # the 2017 build: the first packet's sender


def test_a_flow_first_seen_at_its_syn_ack_is_turned_round() -> None:
    _, (flow,) = flows_of("tcp_synack_first.pcap")
    assert (flow.src_ip, flow.sport, flow.dport) == (C4, 40100, 80)
    assert (flow.fwd_pkts, flow.bwd_pkts, flow.end_reason) == (3, 2, "rst")
    assert flow.init_win_bwd == 65160  # the SYN-ACK is the first backward packet
    assert not flow.handshake


def test_a_connection_that_resumes_after_the_idle_timeout_is_a_continuation() -> None:
    table, flows = flows_of("tcp_resume.pcap")
    first, second = flows
    assert (first.end_reason, first.fwd_pkts, first.bwd_pkts, first.handshake) == ("idle", 3, 2, True)
    # resumed with a packet from the server (port 8883 < 32768 <= 40200), still client -> server
    assert (second.src_ip, second.sport, second.dport) == (C4, 40200, 8883)
    assert (second.fwd_pkts, second.bwd_pkts, second.continued, second.handshake) == (2, 2, True, False)
    assert table.continued == 1
    assert second.edge_features()[EDGE_FLOWS.index("Continued")] == 1


def test_port_scan_context_counts_the_probes_before_each_one() -> None:
    _, flows = flows_of("tcp_port_scan.pcap")
    assert len(flows) == 40
    for i, f in enumerate(flows):
        c = ctx(f)
        n = min(i, 32)
        assert c["Src Recent Flows"] == n
        assert c["Src Recent Dst Ports"] == n
        assert c["Src Recent Dst Hosts"] == min(i, 1)
        assert c["Src Recent Unanswered"] == n  # every earlier probe got an RST, no data
        assert c["Src Recent Span"] == 10 * n  # 10 ms between probes
        assert c["Src Same Service"] == c["Src Same Service Alike"] == c["Src Same Service Span"] == 0
        assert c["Svc Recent Flows"] == c["Svc Flow Rate"] == 0  # each probe is its own service
        # no cap: the earlier probes, each decayed by exp(-age / 10 s) (geometric series, 10 ms apart)
        q = math.exp(-0.01 / 10)
        assert c["Src Flow Rate"] == round(sum(q**k for k in range(1, i + 1)))
    # the 2017 profile has no context
    _, cic = flows_of("tcp_port_scan.pcap", "cicids2017")
    assert all(not any(f.context) for f in cic)


def test_context_window_drops_old_flows_and_counts_services() -> None:
    t = FlowTable(FlowConfig(profile="corrected"))
    # three clients of one service, one more 1 ms later, and one 10.0015 s after the first
    # (the window is 10 s: the flows at 2 ms and 3 ms are still in it)
    for i, ts in enumerate((0, 1000, 2000)):
        t.add(pkt(ts, f"10.0.1.{i}", B, 40000 + i, 22, flags=SYN))
        t.add(pkt(ts + 100, B, f"10.0.1.{i}", 22, 40000 + i, flags=SYN | ACK))
    t.add(pkt(3000, "10.0.1.9", B, 40009, 22, flags=SYN))
    t.add(pkt(10_001_500, "10.0.1.8", B, 40008, 22, flags=SYN))
    flows = sorted(t.flush(), key=lambda f: f.first_us)
    c = ctx(flows[3])
    assert (c["Svc Recent Flows"], c["Svc Recent Sources"], c["Svc Recent Unanswered"]) == (3, 3, 3)
    assert ctx(flows[4])["Svc Recent Flows"] == 2


def test_same_service_repeats_count_over_two_minutes_and_compare_sizes() -> None:
    t = FlowTable(FlowConfig(profile="corrected"))
    # one client, four connections to one service 30 s apart: 100, 105, 400 and 100 payload bytes
    out: list[Flow] = []
    for i, size in enumerate((100, 105, 400, 100)):
        ts = i * 30 * S
        out += t.add(pkt(ts, A, B, 40000 + i, 22, flags=SYN))
        out += t.add(pkt(ts + 10, B, A, 22, 40000 + i, flags=SYN | ACK))
        out += t.add(pkt(ts + 20, A, B, 40000 + i, 22, payload=size))
        out += t.add(pkt(ts + 30, A, B, 40000 + i, 22, flags=RST))
    out += t.add(pkt(4 * 30 * S, A, B, 40009, 22, flags=SYN))
    flows = sorted(out + t.flush(), key=lambda f: f.first_us)
    t2 = [ctx(f) for f in flows]
    assert [c["Src Recent Flows"] for c in t2] == [0, 0, 0, 0, 0]  # none within 10 s
    assert [c["Src Same Service"] for c in t2] == [0, 1, 2, 3, 4]  # 120 s back, inclusive
    # alike the latest one (within 10 % + 16 bytes): 105 ~ 100; 400 not; then 100 ~ 100 and 105
    assert [c["Src Same Service Alike"] for c in t2] == [0, 1, 2, 1, 3]
    assert t2[4]["Src Same Service Span"] == 120_000


def test_decayed_rate_survives_time_going_backwards() -> None:
    # merged captures: a flow whose first packet is older than the last one seen
    t = FlowTable(FlowConfig(profile="corrected"))
    t.add(pkt(10 * 86_400 * S, A, B, 40000, 80, flags=SYN))
    t.add(pkt(0, A, B, 40001, 80, flags=SYN))  # ten days earlier
    t.add(pkt(1000, A, B, 40002, 80, flags=SYN))
    rates = [ctx(f)["Src Flow Rate"] for f in sorted(t.flush(), key=lambda f: f.sport)]
    assert rates == [0, 1, 2]  # nothing decays backwards in time; no overflow


def test_context_memory_is_bounded_under_spoofed_sources() -> None:
    tracker = ContextTracker()
    for i in range(3 * CONTEXT_MAX_KEYS):
        f = Flow(False, i.to_bytes(4, "big"), b"\xc0\x00\x02\x01", 1024 + i % 60000, 80, 6)
        f.first_us = i
        tracker.observe(f)
    assert len(tracker) <= 2 * CONTEXT_MAX_KEYS


@pytest.mark.parametrize(
    ("sport", "dport", "server"),
    [(443, 51000, True), (51000, 443, False), (8883, 40200, True), (5353, 5353, False), (53001, 9, False)],
)
def test_service_side(sport: int, dport: int, server: bool) -> None:
    assert service_side(sport, dport) is server


def test_fin_remnant_after_close_in_both_directions_is_not_a_flow() -> None:
    t = FlowTable(FlowConfig(profile="corrected"))
    out = []
    for p in (
        pkt(0, A, B, flags=SYN),
        pkt(10, B, A, 80, 40000, flags=SYN | ACK),
        pkt(20, A, B, flags=ACK),
        pkt(30, A, B, flags=FIN | ACK),
        pkt(40, B, A, 80, 40000, flags=FIN | ACK),
        pkt(50, A, B, flags=ACK),  # the final ACK closes the flow
        pkt(60, A, B, flags=ACK),  # a duplicate: absorbed
    ):
        out.extend(t.add(p))
    assert len(out) == 1 and out[0].end_reason == "fin" and t.remnants == 1 and len(t) == 0


def test_sweep_counts_other_hosts_of_the_destination_subnet() -> None:
    """``flow.sweep``: other addresses of the destination's /24 the source started flows to in
    the 10 s before (multicast and other subnets apart), and how many of them went unanswered."""
    t = FlowTable(FlowConfig(profile="corrected"))
    out: list[Flow] = []
    src = "10.9.0.5"
    for i in range(1, 7):  # SYN probes to 10.0.1.1-6; .2 and .4 answer with data
        dst = f"10.0.1.{i}"
        out += t.add(pkt(i * 1000, src, dst, 40000 + i, 80, flags=SYN))
        if i in (2, 4):
            out += t.add(pkt(i * 1000 + 100, dst, src, 80, 40000 + i, flags=SYN | ACK))
            out += t.add(pkt(i * 1000 + 200, dst, src, 80, 40000 + i, flags=ACK | 0x08, payload=50))
    out += t.add(pkt(10_000, src, "10.0.2.1", 40100, 80, flags=SYN))  # another /24: nothing to count
    out += t.add(pkt(11_000, src, "224.0.0.251", 5353, 5353, proto=17, payload=40))  # multicast
    out += t.add(pkt(12_000, src, "10.0.1.2", 40101, 443, flags=SYN))  # .2 again: .1 and .3-.6 others
    out += t.add(pkt(12 * S, src, "10.0.1.7", 40102, 80, flags=SYN))  # the probes are > 10 s old
    flows = sorted(out + t.flush(), key=lambda f: f.first_us)
    got = [(f.dst_ip, f.sweep) for f in flows]
    assert got == [
        ("10.0.1.1", (0, 0)),
        ("10.0.1.2", (1, 1)),
        ("10.0.1.3", (2, 1)),  # .2 answered
        ("10.0.1.4", (3, 2)),
        ("10.0.1.5", (4, 2)),
        ("10.0.1.6", (5, 3)),
        ("10.0.2.1", (0, 0)),
        ("224.0.0.251", (0, 0)),
        ("10.0.1.2", (5, 4)),  # .1, .3, .4, .5, .6; of them .1, .3, .5, .6 unanswered
        ("10.0.1.7", (0, 0)),
    ]
    # IPv6: the /64, and solicited-node multicast groups are no sweep however many
    t = FlowTable(FlowConfig(profile="corrected"))
    out = []
    for i in range(1, 4):
        out += t.add(pkt(i * 1000, "2001:db8::5", f"2001:db8:0:1::{i}", 40000 + i, 22, flags=SYN))
        out += t.add(pkt(i * 1000 + 1, "2001:db8::5", f"ff02::1:ff00:{i}", 0, 0, proto=58, payload=24))
    out += t.add(pkt(9000, "2001:db8::5", "2001:db8:0:2::1", 40009, 22, flags=SYN))
    flows = sorted(out + t.flush(), key=lambda f: f.first_us)
    assert [f.sweep for f in flows] == [(0, 0), (0, 0), (1, 1), (0, 0), (2, 2), (0, 0), (0, 0)]
    # the 2017 profile keeps no context
    t = FlowTable(FlowConfig(profile="cicids2017"))
    out = []
    for i in range(1, 4):
        out += t.add(pkt(i * 1000, src, f"10.0.1.{i}", 40000 + i, 80, flags=SYN))
        out += t.add(pkt(i * 1000 + 100, f"10.0.1.{i}", src, 80, 40000 + i, flags=RST | ACK))
    flows = out + t.flush()
    assert len(flows) == 3 and {f.sweep for f in flows} == {(0, 0)}
