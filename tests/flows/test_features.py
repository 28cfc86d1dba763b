"""The 78 features: an independent numpy oracle (corrected) and the 2017 build's quirks (cicids2017)."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from edge_nids.flows.packet import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG
from edge_nids.flows.schema import CIC_IDS2017
from edge_nids.flows.table import Flow, FlowConfig, FlowTable

from .helpers import A, B, pkt

S = 1_000_000
COL = {name: i for i, name in enumerate(CIC_IDS2017.names)}


def one_flow(packets: list, profile: str) -> Flow:
    t = FlowTable(FlowConfig(profile=profile, active_timeout_s=1e6, idle_timeout_s=0))
    for p in packets:
        assert t.add(p) == []
    (flow,) = t.flush()
    return flow


def _st(values: list[float]) -> tuple[float, float, float, float]:
    """(mean, sample std, max, min), zeros when empty."""
    if not values:
        return 0.0, 0.0, 0.0, 0.0
    a = np.asarray(values, dtype=np.float64)
    return a.mean(), a.std(ddof=1) if len(a) > 1 else 0.0, a.max(), a.min()


def oracle(packets: list) -> dict[str, float]:
    """Intended meaning of each column, recomputed from the whole packet list."""
    first = packets[0]
    fwd = [p for p in packets if p.src == first.src and p.sport == first.sport]
    bwd = [p for p in packets if not (p.src == first.src and p.sport == first.sport)]
    ts = [p.ts_us for p in packets]
    dur = ts[-1] - ts[0]
    e: dict[str, float] = {"Destination Port": first.dport, "Flow Duration": dur}
    e["Total Fwd Packets"], e["Total Backward Packets"] = len(fwd), len(bwd)
    e["Total Length of Fwd Packets"] = sum(p.payload_len for p in fwd)
    e["Total Length of Bwd Packets"] = sum(p.payload_len for p in bwd)
    for name, grp in (("Fwd", fwd), ("Bwd", bwd)):
        m, s, mx, mn = _st([p.payload_len for p in grp])
        e[f"{name} Packet Length Max"], e[f"{name} Packet Length Min"] = mx, mn
        e[f"{name} Packet Length Mean"], e[f"{name} Packet Length Std"] = m, s
        e[f"Avg {name} Segment Size"] = m
        gaps = list(np.diff([p.ts_us for p in grp]))
        e[f"{name} IAT Total"] = sum(gaps)
        e[f"{name} IAT Mean"], e[f"{name} IAT Std"], e[f"{name} IAT Max"], e[f"{name} IAT Min"] = _st(gaps)
        e[f"{name} PSH Flags"] = sum(1 for p in grp if p.flags & PSH)
        e[f"{name} URG Flags"] = sum(1 for p in grp if p.flags & URG)
        e[f"{name} Header Length"] = sum(p.header_len for p in grp)
        e[f"{name} Packets/s"] = len(grp) / (dur / 1e6) if dur else 0.0
    e["Fwd Header Length.1"] = e["Fwd Header Length"]
    total_bytes = e["Total Length of Fwd Packets"] + e["Total Length of Bwd Packets"]
    e["Flow Bytes/s"] = total_bytes / (dur / 1e6) if dur else 0.0
    e["Flow Packets/s"] = len(packets) / (dur / 1e6) if dur else 0.0
    gaps = list(np.diff(ts))
    e["Flow IAT Mean"], e["Flow IAT Std"], e["Flow IAT Max"], e["Flow IAT Min"] = _st(gaps)
    lens = [p.payload_len for p in packets]
    m, s, mx, mn = _st(lens)
    e["Min Packet Length"], e["Max Packet Length"], e["Packet Length Mean"] = mn, mx, m
    e["Packet Length Std"], e["Packet Length Variance"] = s, s * s
    for name, bit in (("FIN", FIN), ("SYN", SYN), ("RST", RST), ("PSH", PSH), ("ACK", ACK), ("URG", URG)):
        e[f"{name} Flag Count"] = sum(1 for p in packets if p.flags & bit)
    e["CWE Flag Count"] = sum(1 for p in packets if p.flags & CWR)
    e["ECE Flag Count"] = sum(1 for p in packets if p.flags & ECE)
    e["Down/Up Ratio"] = len(bwd) / len(fwd)
    e["Average Packet Size"] = total_bytes / len(packets)
    subflows = 1 + sum(1 for g in gaps if g > S)
    e["Subflow Fwd Packets"] = len(fwd) / subflows
    e["Subflow Fwd Bytes"] = e["Total Length of Fwd Packets"] / subflows
    e["Subflow Bwd Packets"] = len(bwd) / subflows
    e["Subflow Bwd Bytes"] = e["Total Length of Bwd Packets"] / subflows
    e["Init_Win_bytes_forward"] = fwd[0].window
    e["Init_Win_bytes_backward"] = bwd[0].window if bwd else -1
    e["act_data_pkt_fwd"] = sum(1 for p in fwd if p.payload_len > 0)
    e["min_seg_size_forward"] = min(p.header_len for p in fwd)
    # active periods: runs of packets separated by gaps > 5 s; idle periods: those gaps
    active, idle, start = [], [], ts[0]
    for prev, cur in itertools.pairwise(ts):
        if cur - prev > 5 * S:
            active.append(prev - start)
            idle.append(cur - prev)
            start = cur
    active.append(ts[-1] - start)
    e["Active Mean"], e["Active Std"], e["Active Max"], e["Active Min"] = _st(active)
    e["Idle Mean"], e["Idle Std"], e["Idle Max"], e["Idle Min"] = _st(idle)
    return e


def random_tcp_flow(rng: random.Random, n: int) -> list:
    packets = []
    t = 1_000_000_000
    for i in range(n):
        fwd = i == 0 or rng.random() < 0.5
        t += rng.choice([rng.randrange(1, 2000), rng.randrange(S, 3 * S), rng.randrange(5 * S, 8 * S)])
        flags = rng.getrandbits(8) & ~(FIN | RST) if i else SYN
        src, dst, sp, dp = (A, B, 40000, 80) if fwd else (B, A, 80, 40000)
        packets.append(
            pkt(
                t,
                src,
                dst,
                sp,
                dp,
                flags=flags,
                payload=rng.choice([0, 0, rng.randrange(1, 1461)]),
                header=rng.choice([20, 32, 40]),
                window=rng.randrange(0, 65536),
            )
        )
    return packets


@pytest.mark.parametrize("seed", range(8))
def test_corrected_matches_oracle_on_random_flows(seed: int) -> None:
    rng = random.Random(seed)
    packets = random_tcp_flow(rng, rng.randrange(2, 60))
    got = one_flow(packets, "corrected").features()
    assert len(got) == 78
    want = oracle(packets)
    bulk = {n for n in CIC_IDS2017.names if "Bulk" in n}
    for name, i in COL.items():
        if name in bulk:
            continue
        assert got[i] == pytest.approx(want[name], rel=1e-9, abs=1e-6), name


def test_udp_flow_windows_and_headers() -> None:
    packets = [
        pkt(0, A, B, 5353, 53, proto=17, header=8, payload=40),
        pkt(500, B, A, 53, 5353, proto=17, header=8, payload=120),
    ]
    for profile in ("cicids2017", "corrected"):
        v = one_flow(packets, profile).features()
        assert v[COL["Init_Win_bytes_forward"]] == -1 and v[COL["Init_Win_bytes_backward"]] == -1
        assert v[COL["Fwd Header Length"]] == 8 and v[COL["min_seg_size_forward"]] == 8
        assert v[COL["Total Length of Bwd Packets"]] == 120


def test_cicids2017_quirks_on_a_hand_checked_flow() -> None:
    packets = [
        pkt(0, flags=SYN, payload=6, window=29200, header=40),
        pkt(100, B, A, 80, 40000, flags=SYN | ACK, window=28960, header=40),
        pkt(200, flags=ACK | PSH, payload=6, window=229, header=32),
        pkt(300, B, A, 80, 40000, flags=ACK, payload=0, window=235, header=32),
        pkt(400, flags=ACK | URG, payload=0, window=237, header=32),
    ]
    v = one_flow(packets, "cicids2017").features()
    # payloads 6, 0, 6, 0, 0 with the first counted twice: 6+6+0+6+0+0 over 6 values
    assert v[COL["Packet Length Mean"]] == pytest.approx(18 / 6)
    assert v[COL["Packet Length Std"]] == pytest.approx(np.std([6, 6, 0, 6, 0, 0], ddof=1))
    assert v[COL["Average Packet Size"]] == pytest.approx(18 / 5)
    # flags: first packet only, in Java HashMap order: the SYN lands in the "PSH" column
    flags = [v[COL[f"{n} Flag Count"]] for n in ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "CWE", "ECE")]
    assert flags == [0, 0, 0, 1, 0, 0, 0, 0]
    assert [v[COL[f"{d} {k} Flags"]] for d in ("Fwd", "Bwd") for k in ("PSH", "URG")] == [0, 0, 0, 0]
    assert v[COL["Down/Up Ratio"]] == 0  # 2 // 3
    assert v[COL["Init_Win_bytes_forward"]] == 29200
    assert v[COL["Init_Win_bytes_backward"]] == 235  # the last backward window
    assert v[COL["act_data_pkt_fwd"]] == 1  # the first packet is not counted
    assert [v[COL[n]] for n in ("Subflow Fwd Packets", "Subflow Fwd Bytes")] == [3, 12]
    c = one_flow(packets, "corrected").features()
    assert [c[COL[f"{n} Flag Count"]] for n in ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "CWE", "ECE")] == [
        0, 2, 0, 1, 4, 1, 0, 0,
    ]  # fmt: skip
    assert c[COL["Init_Win_bytes_backward"]] == 28960 and c[COL["act_data_pkt_fwd"]] == 2
    assert c[COL["Down/Up Ratio"]] == pytest.approx(2 / 3)
    assert c[COL["Fwd URG Flags"]] == 1 and c[COL["Fwd PSH Flags"]] == 1


@pytest.mark.parametrize(
    ("first_flags", "column"),
    [
        (SYN, "PSH"),
        (FIN, "URG"),
        (RST, "FIN"),
        (PSH, "SYN"),
        (ACK, "ACK"),
        (URG, "CWE"),
        (CWR, "ECE"),
        (ECE, "RST"),
    ],
)
def test_cicids2017_flag_columns_are_in_hashmap_order(first_flags: int, column: str) -> None:
    v = one_flow(
        [pkt(0, flags=first_flags), pkt(5, B, A, 80, 40000, flags=SYN | ACK)], "cicids2017"
    ).features()
    got = {n: v[COL[f"{n} Flag Count"]] for n in ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "CWE", "ECE")}
    assert got == {n: int(n == column) for n in got}


def test_zero_duration_rates() -> None:
    packets = [pkt(7, payload=10), pkt(7, B, A, 80, 40000)]
    cic = one_flow(packets, "cicids2017").features()
    assert math.isinf(cic[COL["Flow Bytes/s"]]) and math.isinf(cic[COL["Flow Packets/s"]])
    assert cic[COL["Fwd Packets/s"]] == 0 and cic[COL["Bwd Packets/s"]] == 0
    empty = one_flow([pkt(7), pkt(7, B, A, 80, 40000)], "cicids2017").features()
    assert math.isnan(empty[COL["Flow Bytes/s"]])
    cor = one_flow(packets, "corrected").features()
    assert cor[COL["Flow Bytes/s"]] == 0.0 and cor[COL["Flow Packets/s"]] == 0.0


def test_corrected_bulk_columns() -> None:
    # forward: 5 payload packets 100 ms apart (one bulk of 5), then a backward payload
    # packet, then 3 more forward ones (not a bulk: fewer than 4)
    t = 0
    packets = []
    for _ in range(5):
        packets.append(pkt(t, payload=100))
        t += 100_000
    packets.append(pkt(t, B, A, 80, 40000, payload=50))
    for _ in range(3):
        t += 100_000
        packets.append(pkt(t, payload=10))
    v = one_flow(packets, "corrected").features()
    assert v[COL["Fwd Avg Bytes/Bulk"]] == 500
    assert v[COL["Fwd Avg Packets/Bulk"]] == 5
    assert v[COL["Fwd Avg Bulk Rate"]] == pytest.approx(500 / 0.4)
    assert [v[COL[n]] for n in ("Bwd Avg Bytes/Bulk", "Bwd Avg Packets/Bulk", "Bwd Avg Bulk Rate")] == [
        0,
        0,
        0,
    ]
    cic = one_flow(packets, "cicids2017").features()
    assert all(cic[COL[n]] == 0 for n in CIC_IDS2017.names if "Bulk" in n)


def test_cicids2017_idle_bookkeeping_leaks_a_timestamp() -> None:
    # a 6 s gap inside a flow (no FIN): the 2017 build's subflow check passes the gap
    # as a time, so the next activity update records "now - gap" as an idle period
    t0 = 1_499_348_407_000_000
    packets = [pkt(t0), pkt(t0 + 1000, B, A, 80, 40000), pkt(t0 + 6 * S), pkt(t0 + 6 * S + 10)]
    v = one_flow(packets, "cicids2017").features()
    assert v[COL["Idle Max"]] > 1e15  # an absolute timestamp, as in the CIC files
    c = one_flow(packets, "corrected").features()
    assert c[COL["Idle Max"]] == 6 * S - 1000 and c[COL["Active Max"]] == 1000
