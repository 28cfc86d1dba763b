"""Frame decoding: hand-checked fields per scenario, link-type variants, malformed frames.

Expected values come from tests/data/README.md (checked by hand against
``tcpdump -nn -e -v -r``): payload_len counts Ethernet padding (60-byte frame,
empty ACK -> 6 bytes; SYN with a 4-byte MSS option -> 2 bytes).
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from edge_nids.flows.decode import NOTES, REASONS, Decoder
from edge_nids.flows.packet import ACK, FIN, PSH, RST, SYN, Packet, format_ip
from edge_nids.flows.pcap import open_capture

DATA = Path(__file__).resolve().parent.parent / "data"
T0 = 1_700_000_000_000_000  # µs

C4, S4, DNS4 = "192.0.2.10", "198.51.100.20", "198.51.100.53"
C6, S6 = "2001:db8::10", "2001:db8:1::20"
SA = SYN | ACK
PA = PSH | ACK
FA = FIN | ACK


def decode_file(path: Path, decoder: Decoder | None = None) -> list[Packet | None]:
    decoder = decoder if decoder is not None else Decoder()
    with open_capture(path) as cap:
        return [decoder.decode(lt, frame, ts, wire) for ts, lt, frame, wire in cap]


def row(p: Packet) -> tuple[object, ...]:
    """(µs after T0, src, sport, dst, dport, proto, payload, header, flags, window, wire, version, ttl)"""
    return (
        p.ts_us - T0, format_ip(p.src), p.sport, format_ip(p.dst), p.dport, p.proto,
        p.payload_len, p.header_len, p.flags, p.window, p.wire_len, p.ip_version, p.ttl,
    )  # fmt: skip


def rows(name: str) -> list[tuple[object, ...]]:
    packets = decode_file(DATA / name)
    assert all(p is not None for p in packets), name
    return [row(p) for p in packets if p is not None]


# -- hand-checked scenarios ------------------------------------------------------------------


def test_tcp_fin_close() -> None:
    c, s = (C4, 40000, S4, 80, 6), (S4, 80, C4, 40000, 6)
    assert rows("tcp_fin_close.pcap") == [
        (0, *c, 2, 24, SYN, 64240, 60, 4, 64),  # 58-byte SYN padded to 60
        (500, *s, 0, 32, SA, 65160, 66, 4, 57),  # options mss,nop,wscale,sackOK,eol
        (1000, *c, 6, 20, ACK, 502, 60, 4, 64),
        (1200, *c, 18, 20, PA, 502, 72, 4, 64),
        (2000, *s, 6, 20, ACK, 509, 60, 4, 57),
        (3000, *s, 100, 20, PA, 509, 154, 4, 57),
        (3500, *c, 6, 20, ACK, 501, 60, 4, 64),
        (4000, *s, 6, 20, FA, 509, 60, 4, 57),
        (4500, *c, 6, 20, FA, 501, 60, 4, 64),
        (5000, *s, 6, 20, ACK, 509, 60, 4, 57),
    ]


def test_tcp_rst_close() -> None:
    c, s = (C4, 40001, S4, 80, 6), (S4, 80, C4, 40001, 6)
    assert rows("tcp_rst_close.pcap") == [
        (0, *c, 6, 20, SYN, 64240, 60, 4, 64),
        (300, *s, 6, 20, SA, 65160, 60, 4, 57),
        (600, *c, 6, 20, ACK, 502, 60, 4, 64),
        (900, *c, 10, 20, PA, 502, 64, 4, 64),
        (1500, *s, 6, 20, RST, 0, 60, 4, 57),
    ]


def test_tcp_half_open_syn() -> None:
    assert rows("tcp_half_open_syn.pcap") == [
        (t, C4, 40002, S4, 22, 6, 2, 24, SYN, 64240, 60, 4, 64) for t in (0, 1_000_000, 3_000_000)
    ]


def test_udp_dns() -> None:
    assert rows("udp_dns.pcap") == [
        (0, C4, 53000, DNS4, 53, 17, 29, 8, 0, -1, 71, 4, 64),
        (20_000, DNS4, 53, C4, 53000, 17, 56, 8, 0, -1, 98, 4, 58),
        (30_000, C4, 53001, S4, 9, 17, 18, 8, 0, -1, 60, 4, 64),  # 1 byte + 17 padding
    ]


def test_icmp_echo() -> None:
    assert rows("icmp_echo.pcap") == [
        (0, C4, 0, S4, 0, 1, 32, 8, 0, -1, 74, 4, 128),
        (800, S4, 0, C4, 0, 1, 32, 8, 0, -1, 74, 4, 57),
        (1_000_000, C4, 0, S4, 0, 1, 32, 8, 0, -1, 74, 4, 128),
        (1_000_800, S4, 0, C4, 0, 1, 32, 8, 0, -1, 74, 4, 57),
    ]


def test_ipv6_extension_headers_icmpv6_and_fragments() -> None:
    d = Decoder()
    packets = decode_file(DATA / "ipv6_tcp.pcap", d)
    c, s = (C6, 40010, S6, 443, 6), (S6, 443, C6, 40010, 6)
    assert [row(p) for p in packets if p] == [
        (0, *c, 0, 20, SYN, 64800, 82, 6, 64),  # behind hop-by-hop
        (400, *s, 0, 20, SA, 64260, 74, 6, 60),
        (800, *c, 0, 20, ACK, 507, 98, 6, 64),  # behind hop-by-hop, dest. options, routing
        (1000, *c, 10, 20, PA, 507, 92, 6, 64),  # behind an atomic fragment header
        (2000, C6, 0, S6, 0, 58, 9, 8, 0, -1, 71, 6, 64),
        (2300, S6, 0, C6, 0, 58, 9, 8, 0, -1, 71, 6, 60),
        (3000, C6, 40011, S6, 5001, 17, 992, 8, 0, -1, 1062, 6, 64),  # first fragment
        (3010, C6, 0, S6, 0, 17, 408, 0, 0, -1, 470, 6, 64),  # second: no ports
    ]
    assert d.counts == {} and d.notes == {"fragment_non_first": 1}


def test_vlan_qinq() -> None:
    assert rows("vlan_qinq.pcap") == [
        (0, C4, 40020, S4, 5353, 17, 30, 8, 0, -1, 76, 4, 64),  # 802.1Q
        (100, C4, 40021, S4, 80, 6, 0, 20, SYN, 64240, 62, 4, 64),  # 802.1ad + 802.1Q
        (200, S4, 80, C4, 40021, 6, 0, 20, SA, 65160, 62, 4, 57),
        (300, C4, 40020, S4, 5353, 17, 30, 8, 0, -1, 80, 4, 64),  # 0x9100 + 802.1Q
    ]


def test_ipv4_fragments() -> None:
    d = Decoder()
    packets = decode_file(DATA / "ipv4_fragments.pcap", d)
    assert [row(p) for p in packets if p] == [
        (0, C4, 5000, S4, 6000, 17, 1472, 8, 0, -1, 1514, 4, 64),
        (10, C4, 0, S4, 0, 17, 1480, 0, 0, -1, 1514, 4, 64),
        (20, C4, 0, S4, 0, 17, 48, 0, 0, -1, 82, 4, 64),
    ]
    assert d.notes == {"fragment_non_first": 2}
    # all 3000 datagram bytes plus the 8-byte UDP header are accounted for
    assert sum(p.payload_len + p.header_len for p in packets if p) == 3008


def test_ipv4_options() -> None:
    assert rows("ipv4_options.pcap") == [
        (0, C4, 40030, S4, 8080, 6, 2, 20, SYN, 1024, 60, 4, 64),  # IHL 6: 14 + 24 + 20 = 58 -> 60
        (100, S4, 8080, C4, 40030, 6, 6, 20, SA, 2048, 60, 4, 57),
    ]


def test_idle_gaps() -> None:
    fwd = (C4, 40100, S4, 9999, 17, 20, 8, 0, -1, 62, 4, 64)
    bwd = (S4, 9999, C4, 40100, 17, 30, 8, 0, -1, 72, 4, 57)
    assert rows("idle_gaps.pcap") == [
        (0, *fwd),
        (500_000, *bwd),
        (1_000_000, *fwd),
        (7_500_000, *fwd),
        (8_000_000, *bwd),
        (128_500_000, *fwd),
        (129_000_000, *bwd),
    ]


def test_bulk_transfer() -> None:
    r = rows("bulk_transfer.pcap")
    assert len(r) == 33
    data = [x for x in r if x[6] == 256]
    assert len(data) == 24
    assert all(x[1:6] == (S4, 8000, C4, 40200, 6) and x[8] == ACK and x[10] == 310 for x in data)
    assert [x[0] for x in data[:5]] == [1000, 1050, 1100, 1150, 1250]  # an ACK at 1200
    assert sum(x[6] for x in r if x[1] == S4) == 6 + 24 * 256  # SYN-ACK padding + data
    assert sum(x[6] for x in r if x[1] == C4) == 8 * 6  # SYN, ACK and 6 ACKs (one per 4 segments): padding


def test_truncated_and_corrupt_counted_by_reason() -> None:
    d = Decoder()
    packets = decode_file(DATA / "truncated_and_corrupt.pcap", d)
    assert d.counts == {
        "truncated_ethernet": 1,
        "non_ip": 2,  # ARP, LLDP
        "truncated_ip": 2,  # IPv4 and IPv6 headers cut
        "bad_ip_header_length": 1,
        "bad_ip_version": 1,
        "bad_tcp_offset": 2,  # offset 3, offset 15 past the packet
        "truncated_tcp": 1,
        "truncated_udp": 1,
        "truncated_icmp": 1,
        "truncated_ipv6_ext": 1,
        "truncated_vlan": 1,
    }
    assert set(d.counts) <= set(REASONS)
    assert packets[:14] == [None] * 14
    assert [row(p) for p in packets[14:] if p] == [
        (140, C4, 40040, S4, 80, 6, 1460, 20, PA, 100, 1514, 4, 64),  # 68 of 1514 bytes captured
        (150, C4, 40041, S4, 80, 6, 6, 20, ACK, 9, 60, 4, 64),
    ]
    assert d.decoded == 2 and d.skipped == 14
    assert d.notes == {"snaplen_truncated": 1} and set(d.notes) <= set(NOTES)


# -- every format and link-type variant decodes to the same packets --------------------------

VARIANTS = {
    "tcp_fin_close_ns.pcap": 0,
    "tcp_fin_close_be.pcap": 0,
    "tcp_fin_close_be_ns.pcap": 0,
    "tcp_fin_close.pcapng": 0,
    "tcp_fin_close_be_ns.pcapng": 0,
    "tcp_fin_close_sll.pcap": 16 - 14,
    "tcp_fin_close_sll2.pcap": 20 - 14,
    "tcp_fin_close_raw.pcap": -14,
    "tcp_fin_close_null.pcap": 4 - 14,
}


@pytest.mark.parametrize(("name", "wire_delta"), VARIANTS.items())
def test_variants_decode_identically(name: str, wire_delta: int) -> None:
    base = rows("tcp_fin_close.pcap")
    got = rows(name)
    assert [r[:10] + r[11:] for r in got] == [r[:10] + r[11:] for r in base]
    assert [r[10] for r in got] == [r[10] + wire_delta for r in base]


def test_multi_interface_pcapng_decodes_identically() -> None:
    base = rows("tcp_fin_close.pcap")
    got = rows("tcp_fin_close_multi.pcapng")
    assert [r[:10] + r[11:] for r in got] == [r[:10] + r[11:] for r in base]


def test_snaplen_cut_frames_use_wire_length() -> None:
    d = Decoder()
    packets = decode_file(DATA / "tcp_fin_close_spb.pcapng", d)
    # 64-byte snap length: the SYN-ACK loses TCP options, the two data frames lose payload
    assert packets[1] is None and d.counts == {"truncated_tcp": 1}
    assert [p.payload_len for p in packets if p] == [2, 6, 18, 6, 100, 6, 6, 6, 6]
    assert d.notes == {"snaplen_truncated": 2}


# -- the real capture ------------------------------------------------------------------------


@pytest.mark.shared_data
def test_gold_capture_decodes_every_packet(gold_sqlinj_pcap: Path) -> None:
    d = Decoder()
    packets = decode_file(gold_sqlinj_pcap, d)
    assert len(packets) == 94 and d.decoded == 94 and d.counts == {} and d.notes == {}
    assert all(p is not None for p in packets)
    ok = [p for p in packets if p is not None]
    clients = sorted({p.sport for p in ok if format_ip(p.src) == "172.16.0.1"})
    assert clients == list(range(36196, 36213, 2))
    assert {(format_ip(p.dst), p.dport) for p in ok if format_ip(p.src) == "172.16.0.1"} == {
        ("192.168.10.50", 80)
    }
    # the first connection, checked against tcpdump -nn -v
    first = [p for p in ok if 36196 in (p.sport, p.dport)]
    assert [p.payload_len for p in first] == [0, 0, 0, 447, 0, 530, 0, 0, 0, 0, 0]
    assert [p.header_len for p in first] == [40, 40] + [32] * 9
    assert [p.flags for p in first] == [SYN, SA, ACK, PA, ACK, PA, ACK, FA, FA, ACK, ACK]
    assert [p.window for p in first[:4]] == [29200, 28960, 229, 229]
    assert [p.ttl for p in first[:2]] == [62, 64]


@pytest.mark.shared_data
def test_padding_convention_on_a_real_capture(gold_slowloris_pcap: Path) -> None:
    """Real 60-byte frames carry padding: an empty server ACK gives 6, its SYN-ACK (MSS) 2."""
    d = Decoder()
    packets = decode_file(gold_slowloris_pcap, d)
    assert len(packets) == 3754 and d.decoded == 3752 and d.counts == {"non_ip": 2}
    conn = [p for p in packets if p is not None and 47602 in (p.sport, p.dport)]
    # tcpdump: S (74), S. mss (60), . (54), P. 21 (75), . (60), P. 168 (222), . (60)
    assert [p.wire_len for p in conn[:7]] == [74, 60, 54, 75, 60, 222, 60]
    assert [p.payload_len for p in conn[:7]] == [0, 2, 0, 21, 6, 168, 6]


# -- link types and corner cases built from real frames --------------------------------------


def _frames(name: str) -> list[bytes]:
    with open_capture(DATA / name) as cap:
        return [frame for _, _, frame, _ in cap]


def test_loopback_link_types_and_byte_orders() -> None:
    ip4 = _frames("tcp_fin_close.pcap")[3][14:]
    ip6 = _frames("ipv6_tcp.pcap")[1][14:]
    d = Decoder()
    a = d.decode(0, struct.pack("<I", 2) + ip4, 1, 0)
    b = d.decode(0, struct.pack(">I", 2) + ip4, 1, 0)  # captured on a big-endian host
    c = d.decode(108, struct.pack(">I", 2) + ip4, 1, 0)
    assert a is not None and a == b == c and a.payload_len == 18 and a.dport == 80
    for family in (24, 28, 30):  # AF_INET6 on NetBSD/OpenBSD, FreeBSD, macOS
        p = d.decode(0, struct.pack("<I", family) + ip6, 1, 0)
        assert p is not None and p.ip_version == 6 and p.sport == 443
    assert d.decode(0, struct.pack("<I", 7) + ip4, 1, 0) is None
    assert d.counts == {"non_ip": 1}


def test_raw_ip_link_types() -> None:
    ip4 = _frames("tcp_fin_close.pcap")[3][14:]
    ip6 = _frames("ipv6_tcp.pcap")[1][14:]
    d = Decoder()
    for lt in (101, 12, 14, 228):
        p = d.decode(lt, ip4, 5, len(ip4))
        assert p is not None and p.payload_len == 18 and p.ts_us == 5
    for lt in (101, 12, 14, 229):
        p = d.decode(lt, ip6, 5, len(ip6))
        assert p is not None and p.ip_version == 6
    assert d.decode(228, ip6, 5, len(ip6)) is None  # IPv4-only link type
    assert d.decode(229, ip4, 5, len(ip4)) is None
    assert d.decode(101, b"", 5, 0) is None
    assert d.decode(147, ip4, 5, len(ip4)) is None  # a user link type
    assert d.counts == {"bad_ip_version": 2, "truncated_ip": 1, "unsupported_linktype": 1}


def test_bytes_like_frames() -> None:
    frame = _frames("tcp_fin_close.pcap")[5]
    d = Decoder()
    expected = d.decode(1, frame, 9, len(frame))
    for other in (bytearray(frame), memoryview(frame)):
        p = d.decode(1, other, 9, len(frame))
        assert p == expected
        assert p is not None and type(p.src) is bytes and type(p.dst) is bytes


def test_ipv6_authentication_header_and_esp() -> None:
    synack = _frames("ipv6_tcp.pcap")[1]  # Ethernet + IPv6 (next header TCP) + 20-byte TCP
    eth, ip6, tcp = synack[:14], synack[14:54], synack[54:]
    ah = bytes([6, 4]) + bytes(22)  # next header TCP, length (4 + 2) * 4 = 24 bytes
    hdr = ip6[:4] + struct.pack("!HBB", len(ah) + len(tcp), 51, ip6[7]) + ip6[8:]
    d = Decoder()
    p = d.decode(1, eth + hdr + ah + tcp, 1, 14 + 40 + 24 + 20)
    assert p is not None and (p.proto, p.sport, p.dport, p.header_len, p.payload_len) == (
        6,
        443,
        40010,
        20,
        0,
    )
    esp = struct.pack("!II", 0x1000, 1) + bytes(40)
    hdr = ip6[:4] + struct.pack("!HBB", len(esp), 50, ip6[7]) + ip6[8:]
    p = d.decode(1, eth + hdr + esp, 1, 14 + 40 + 48)
    assert p is not None and (p.proto, p.sport, p.dport, p.header_len, p.payload_len) == (50, 0, 0, 0, 48)


def test_decoding_never_raises_on_cut_or_mangled_frames() -> None:
    """Every prefix of every scenario frame, and seeded random byte flips, decode or count."""
    rng = random.Random(20231114)
    frames = [
        (lt, frame)
        for path in sorted(DATA.glob("*.pcap*"))
        if not path.name.startswith("truncated_file")
        for _, lt, frame, _ in open_capture(path)
    ]
    d = Decoder()
    calls = 0
    for lt, frame in frames:
        for cut in range(len(frame) + 1):
            d.decode(lt, frame[:cut], 0, len(frame))
            calls += 1
        for _ in range(20):
            mangled = bytearray(frame)
            for _ in range(rng.randint(1, 4)):
                mangled[rng.randrange(len(mangled))] = rng.randrange(256)
            p = d.decode(lt, bytes(mangled), 0, len(frame))
            calls += 1
            assert p is None or (p.payload_len >= 0 and p.header_len >= 0)
    assert d.decoded + d.skipped == calls
    assert set(d.counts) <= set(REASONS)


def test_fast_path_agrees_with_general_path() -> None:
    """The fast path (plain Ethernet/IPv4/IPv6 TCP/UDP) must give what the general path gives."""
    frames = [
        (lt, frame, wire)
        for path in sorted(DATA.glob("*.pcap*"))
        if not path.name.startswith("truncated_file")
        for _, lt, frame, wire in open_capture(path)
    ]
    # an IPv6 UDP datagram without extension headers: the first fragment's 1000 bytes, unfragmented
    frag1 = _frames("ipv6_tcp.pcap")[6]
    udp = frag1[62:]
    ip6 = frag1[14:18] + struct.pack("!HBB", len(udp), 17, frag1[21]) + frag1[22:54]
    frames.append((1, frag1[:14] + ip6 + udp, 14 + 40 + len(udp)))
    fast, general = Decoder(), Decoder()
    results = []
    for lt, frame, wire in frames:
        a = fast.decode(lt, frame, 7, wire)
        assert a == general._decode(lt, frame, 7, wire)
        results.append(a)
    assert fast.counts == general.counts
    last = results[-1]
    assert last is not None
    assert (last.proto, last.ip_version, last.sport, last.dport, last.header_len, last.payload_len) == (
        17, 6, 40011, 5001, 8, 992,
    )  # fmt: skip


def test_without_padding_payload_follows_ip_lengths() -> None:
    d = Decoder(padding=False)
    got = [p.payload_len for p in decode_file(DATA / "tcp_fin_close.pcap", d) if p]
    assert got == [0, 0, 0, 18, 0, 100, 0, 0, 0, 0]
    assert [p.payload_len for p in decode_file(DATA / "udp_dns.pcap", d) if p] == [29, 56, 1]
    # a frame cut by the snap length still gets its size from the IP total length (1500)
    cut = decode_file(DATA / "truncated_and_corrupt.pcap", Decoder(padding=False))[14]
    assert cut is not None and cut.payload_len == 1460
    # padding-free frames are unchanged
    for name in ("ipv6_tcp.pcap", "ipv4_fragments.pcap", "bulk_transfer.pcap"):
        with_pad = decode_file(DATA / name)
        without = decode_file(DATA / name, Decoder(padding=False))
        assert [p.payload_len for p in without if p] == [
            p.payload_len if p.wire_len > 60 else 0 for p in with_pad if p
        ], name


@pytest.mark.shared_data
def test_padding_choice_against_cicflowmeter4(gold_slowloris_pcap: Path) -> None:
    """CICFlowMeter-4.0's first row for 10.0.2.15:47602 -> :80: 12 fwd / 11 bwd packets, 275 / 0 bytes."""
    for padding, bwd_bytes in ((False, 0), (True, 62)):
        packets = decode_file(gold_slowloris_pcap, Decoder(padding=padding))
        conn = [p for p in packets if p is not None and 47602 in (p.sport, p.dport)][:23]
        assert sum(p.sport == 47602 for p in conn) == 12
        assert sum(p.payload_len for p in conn if p.sport == 47602) == 275
        assert sum(p.payload_len for p in conn if p.sport == 80) == bwd_bytes
