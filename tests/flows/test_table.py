"""Flow table: canonical keys, LRU eviction, timeouts, FIN/RST per profile, live flows."""

from __future__ import annotations

import pytest

from edge_nids.flows.packet import ACK, FIN, PSH, RST, SYN
from edge_nids.flows.table import Flow, FlowConfig, FlowTable

from .helpers import A, B, C, pkt

S = 1_000_000  # µs per second


def feed(table: FlowTable, packets: list) -> list[Flow]:
    out: list[Flow] = []
    for p in packets:
        out.extend(table.add(p))
    return out


def test_both_directions_share_one_flow_first_packet_is_forward_in_cicids2017() -> None:
    t = FlowTable(FlowConfig(profile="cicids2017"))
    feed(t, [pkt(0, B, A, 80, 40000), pkt(10, A, B, 40000, 80), pkt(20, B, A, 80, 40000, payload=5)])
    assert len(t) == 1
    (flow,) = t.flush()
    assert (flow.src_ip, flow.dst_ip, flow.sport, flow.dport) == (B, A, 80, 40000)
    assert (flow.fwd_pkts, flow.bwd_pkts, flow.fwd_bytes) == (2, 1, 5)
    assert flow.flow_id == f"{B}-{A}-80-40000-6"
    assert flow.end_reason == "end-of-input"


def test_corrected_orients_a_mid_stream_flow_by_its_service_port() -> None:
    # the same packets: the first comes from port 80, so the client (40000) is the originator
    t = FlowTable(FlowConfig(profile="corrected"))
    feed(t, [pkt(0, B, A, 80, 40000), pkt(10, A, B, 40000, 80), pkt(20, B, A, 80, 40000, payload=5)])
    (flow,) = t.flush()
    assert (flow.src_ip, flow.dst_ip, flow.sport, flow.dport) == (A, B, 40000, 80)
    assert (flow.fwd_pkts, flow.bwd_pkts, flow.bwd_bytes) == (1, 2, 5)
    assert not flow.handshake and not flow.continued


def test_protocol_and_ports_are_part_of_the_key() -> None:
    t = FlowTable(FlowConfig(profile="corrected"))
    feed(t, [pkt(0), pkt(1, proto=17, header=8), pkt(2, sport=40001), pkt(3, dport=81)])
    assert len(t) == 4


def test_ipv6_flow_text() -> None:
    t = FlowTable(FlowConfig(profile="corrected"))
    feed(t, [pkt(0, "2001:db8::1", "2001:db8::2", 5353, 53, proto=17, header=8)])
    (flow,) = t.flush()
    assert flow.flow_id == "2001:db8::1-2001:db8::2-5353-53-17"


def test_lru_eviction_emits_least_recently_seen_and_counts() -> None:
    t = FlowTable(FlowConfig(profile="corrected", max_flows=2))
    out = feed(t, [pkt(0, A, B), pkt(1, A, C), pkt(2, B, A, 80, 40000)])  # A-B touched again
    assert out == []
    out = feed(t, [pkt(3, C, B, 1, 2)])  # table full: A-C is the least recently seen
    assert len(out) == 1 and out[0].end_reason == "evicted"
    assert out[0].dst_ip == C and t.evicted == 1 and len(t) == 2


def test_eviction_in_cic_profile_drops_one_packet_flows_but_counts_them() -> None:
    t = FlowTable(FlowConfig(profile="cicids2017", max_flows=1))
    out = feed(t, [pkt(0, A, B), pkt(1, A, C), pkt(2, A, C), pkt(3, B, C)])
    assert out and out[0].end_reason == "evicted" and out[0].packets == 2
    assert t.evicted == 2 and t.dropped_single == 1


def test_cic_active_timeout_new_flow_keeps_orientation() -> None:
    t = FlowTable(FlowConfig(profile="cicids2017"))
    out = feed(t, [pkt(0, A, B), pkt(60 * S, B, A, 80, 40000), pkt(121 * S, B, A, 80, 40000)])
    assert len(out) == 1
    assert out[0].end_reason == "active" and out[0].packets == 2
    (live,) = t.open_flows()
    # the continuation starts with a backward packet: orientation carried over
    assert (live.src_ip, live.fwd_pkts, live.bwd_pkts, live.first_us) == (A, 0, 1, 121 * S)


def test_exactly_at_active_timeout_is_not_expired() -> None:
    t = FlowTable(FlowConfig(profile="cicids2017", active_timeout_s=10))
    assert feed(t, [pkt(0), pkt(10 * S)]) == []
    assert len(feed(t, [pkt(10 * S + 1)])) == 1


def test_cic_has_no_idle_timeout_corrected_does() -> None:
    cic = FlowTable(FlowConfig(profile="cicids2017"))
    assert feed(cic, [pkt(0), pkt(1), pkt(100 * S)]) == []
    cor = FlowTable(FlowConfig(profile="corrected", idle_timeout_s=30))
    out = feed(cor, [pkt(0), pkt(1), pkt(31 * S + 2)])
    assert [f.end_reason for f in out] == ["idle"] and out[0].packets == 2
    assert cor.config.idle_us == 30 * S and FlowConfig(profile="corrected").idle_us == 60 * S


def test_expire_uses_packet_time_only() -> None:
    t = FlowTable(FlowConfig(profile="corrected", idle_timeout_s=5))
    feed(t, [pkt(0, A, B), pkt(1, A, B), pkt(3 * S, A, C)])
    assert t.expire(4 * S) == []
    out = t.expire(5 * S + 2)
    assert [f.dst_ip for f in out] == [B] and len(t) == 1
    assert [f.dst_ip for f in t.expire(9 * S)] == [C]


def test_cic_first_fin_ends_flow_later_packets_start_new_one_rst_ignored() -> None:
    t = FlowTable(FlowConfig(profile="cicids2017"))
    out = feed(
        t,
        [
            pkt(0, flags=SYN),
            pkt(10, B, A, 80, 40000, flags=SYN | ACK),
            pkt(20, flags=RST | ACK),  # ignored
            pkt(30, B, A, 80, 40000, flags=FIN | ACK),
        ],
    )
    assert len(out) == 1 and out[0].end_reason == "fin" and out[0].packets == 4
    out = feed(t, [pkt(40, flags=FIN | ACK), pkt(50, B, A, 80, 40000, flags=ACK)])
    assert out == []  # a FIN that opens a flow does not end it
    (trail,) = t.flush()
    assert (trail.src_ip, trail.packets, trail.end_reason) == (A, 2, "end-of-input")


def test_cic_drops_one_packet_flows_at_end_and_timeout() -> None:
    t = FlowTable(FlowConfig(profile="cicids2017", active_timeout_s=1))
    out = feed(t, [pkt(0, A, B), pkt(2 * S, A, B), pkt(2 * S + 1, A, C, flags=SYN)])
    assert out == [] and t.dropped_single == 1
    assert t.flush() == [] and t.dropped_single == 3


def test_corrected_keeps_one_packet_flows() -> None:
    t = FlowTable(FlowConfig(profile="corrected"))
    feed(t, [pkt(0, A, B, flags=SYN)])
    (f,) = t.flush()
    assert f.packets == 1 and t.dropped_single == 0


def test_corrected_fin_both_sides_then_final_ack() -> None:
    t = FlowTable(FlowConfig(profile="corrected"))
    out = feed(
        t,
        [
            pkt(0, flags=SYN),
            pkt(1, B, A, 80, 40000, flags=SYN | ACK),
            pkt(2, flags=ACK | PSH, payload=10),
            pkt(3, B, A, 80, 40000, flags=FIN | ACK),
            pkt(4, flags=FIN | ACK),
        ],
    )
    assert out == []  # waiting for the last ACK
    out = feed(t, [pkt(5, B, A, 80, 40000, flags=ACK)])
    assert len(out) == 1 and out[0].end_reason == "fin" and out[0].packets == 6
    assert len(t) == 0


def test_corrected_close_without_final_ack_ends_at_next_connection() -> None:
    t = FlowTable(FlowConfig(profile="corrected"))
    feed(t, [pkt(0, flags=SYN), pkt(1, B, A, 80, 40000, flags=FIN | ACK), pkt(2, flags=FIN | ACK)])
    out = feed(t, [pkt(3, flags=SYN)])  # port reuse: new connection
    assert [(f.end_reason, f.packets) for f in out] == [("fin", 3)]
    (new,) = t.open_flows()
    assert new.packets == 1 and new.flag_counts[1] == 1


def test_corrected_rst_ends_flow() -> None:
    t = FlowTable(FlowConfig(profile="corrected"))
    out = feed(t, [pkt(0, flags=SYN), pkt(1, B, A, 80, 40000, flags=RST | ACK)])
    assert [(f.end_reason, f.packets) for f in out] == [("rst", 2)]
    out = feed(t, [pkt(2, A, C, flags=RST)])  # a lone RST is a flow of its own, ended at once
    assert [(f.end_reason, f.packets) for f in out] == [("rst", 1)]


def test_live_features_do_not_end_or_change_the_flow() -> None:
    t = FlowTable(FlowConfig(profile="corrected"))
    feed(t, [pkt(0, payload=100), pkt(10 * S, B, A, 80, 40000, payload=50)])
    (live,) = t.open_flows()
    v1 = live.features()
    assert live.features() == v1 and len(t) == 1 and live.end_reason == ""
    assert v1[1] == 10 * S and v1[2:4] == [1, 1]
    feed(t, [pkt(12 * S, payload=10)])
    v2 = live.features()
    assert v2[1] == 12 * S and v2[2] == 2 and v2[4] == 110
    (ended,) = t.flush()
    assert ended is live and ended.features() == v2


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="profile"):
        FlowConfig(profile="nope")
    with pytest.raises(ValueError, match="max_flows"):
        FlowConfig(max_flows=0)
