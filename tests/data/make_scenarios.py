"""Regenerate the tiny scenario captures in tests/data (deterministic, byte-identical).

Run from the repository root:  .venv/bin/python tests/data/make_scenarios.py

Packets are built with scapy (fixed addresses in the documentation ranges
192.0.2.0/24, 198.51.100.0/24 and 2001:db8::/32, fixed ports, sequence numbers,
IP ids and timestamps) and written with scapy's pcap writer; pcapng files are
written by the small block writer below, since they exercise options scapy does
not write (if_tsresol, if_tsoffset, several interfaces and sections, simple
packet blocks, blocks a reader must skip). tests/data/README.md describes every
file packet by packet.

Ethernet frames shorter than 60 bytes are padded with zeros to 60, as a tap or a
mirror port sees them; those padding bytes count as payload (CICFlowMeter's
convention). The link-type variants of tcp_fin_close keep the same IP bytes,
padding included, so every variant decodes to the same packets (only wire_len
differs, by the link header size).
"""

from __future__ import annotations

import argparse
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import (
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw
from scapy.utils import RawPcapWriter

__all__ = ["SCENARIOS", "main", "write_big"]

HERE = Path(__file__).resolve().parent

#: Scenario start: 2023-11-14 22:13:20 UTC, in ns.
T0_NS = 1_700_000_000 * 1_000_000_000

C_MAC = "02:00:00:00:00:0a"
S_MAC = "02:00:00:00:00:14"
C4 = "192.0.2.10"
S4 = "198.51.100.20"
DNS4 = "198.51.100.53"
C6 = "2001:db8::10"
S6 = "2001:db8:1::20"

#: (timestamp ns since the epoch, captured frame bytes, wire length in bytes)
Rec = tuple[int, bytes, int]

LINKTYPE_ETHERNET = 1
LINKTYPE_NULL = 0
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276


def _eth(l3: ScapyPacket, from_client: bool, ethertype: int | None = None) -> bytes:
    """An Ethernet frame around ``l3``, zero-padded to the 60-byte minimum."""
    src, dst = (C_MAC, S_MAC) if from_client else (S_MAC, C_MAC)
    eth = Ether(src=src, dst=dst) if ethertype is None else Ether(src=src, dst=dst, type=ethertype)
    frame = bytes(eth / l3)
    return frame + bytes(max(0, 60 - len(frame)))


def _rec(t_us: int, frame: bytes, wire_len: int | None = None) -> Rec:
    return (T0_NS + t_us * 1000, frame, len(frame) if wire_len is None else wire_len)


def _tcp4(
    c2s: bool, sport: int, dport: int, flags: str, seq: int, ack: int, win: int, **kw: object
) -> ScapyPacket:
    """IPv4/TCP between client C4:sport and server S4:dport in the given direction."""
    ip = IP(src=C4, dst=S4, ttl=64, id=100) if c2s else IP(src=S4, dst=C4, ttl=57, id=200)
    if c2s:
        tcp = TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=win, **kw)
    else:
        tcp = TCP(sport=dport, dport=sport, flags=flags, seq=seq, ack=ack, window=win, **kw)
    return ip / tcp


# -- scenarios -------------------------------------------------------------------------------


def tcp_fin_close() -> list[Rec]:
    """Handshake, one request and one response, FIN from the server, FIN from the client."""
    p, s = 40000, 80
    req = b"GET / HTTP/1.0\r\n\r\n"  # 18 bytes
    resp = b"HTTP/1.0 200 OK\r\n\r\n" + b"a" * 81  # 100 bytes
    syn_opts = [("MSS", 1460)]  # TCP header 24 bytes
    synack_opts = [("MSS", 1460), ("NOP", None), ("WScale", 7), ("SAckOK", b"")]  # 10 -> 12: header 32
    return [
        _rec(0, _eth(_tcp4(True, p, s, "S", 1000, 0, 64240, options=syn_opts), True)),
        _rec(500, _eth(_tcp4(False, p, s, "SA", 5000, 1001, 65160, options=synack_opts), False)),
        _rec(1000, _eth(_tcp4(True, p, s, "A", 1001, 5001, 502), True)),
        _rec(1200, _eth(_tcp4(True, p, s, "PA", 1001, 5001, 502) / Raw(req), True)),
        _rec(2000, _eth(_tcp4(False, p, s, "A", 5001, 1019, 509), False)),
        _rec(3000, _eth(_tcp4(False, p, s, "PA", 5001, 1019, 509) / Raw(resp), False)),
        _rec(3500, _eth(_tcp4(True, p, s, "A", 1019, 5101, 501), True)),
        _rec(4000, _eth(_tcp4(False, p, s, "FA", 5101, 1019, 509), False)),
        _rec(4500, _eth(_tcp4(True, p, s, "FA", 1019, 5102, 501), True)),
        _rec(5000, _eth(_tcp4(False, p, s, "A", 5102, 1020, 509), False)),
    ]


def tcp_rst_close() -> list[Rec]:
    """Handshake, one request, the server resets the connection."""
    p, s = 40001, 80
    return [
        _rec(0, _eth(_tcp4(True, p, s, "S", 2000, 0, 64240), True)),
        _rec(300, _eth(_tcp4(False, p, s, "SA", 7000, 2001, 65160), False)),
        _rec(600, _eth(_tcp4(True, p, s, "A", 2001, 7001, 502), True)),
        _rec(900, _eth(_tcp4(True, p, s, "PA", 2001, 7001, 502) / Raw(b"x" * 10), True)),
        _rec(1500, _eth(_tcp4(False, p, s, "R", 7001, 0, 0), False)),
    ]


def tcp_half_open_syn() -> list[Rec]:
    """A SYN to port 22 retransmitted after 1 s and 3 s; no answer."""
    opts = [("MSS", 1460)]
    return [
        _rec(t, _eth(_tcp4(True, 40002, 22, "S", 3000, 0, 64240, options=opts), True))
        for t in (0, 1_000_000, 3_000_000)
    ]


def udp_dns() -> list[Rec]:
    """A DNS query for example.com (A) and its answer; then a 1-byte datagram padded to 60."""
    q = DNS(id=0x1234, rd=1, qd=DNSQR(qname="example.com", qtype="A"))
    r = DNS(
        id=0x1234,
        qr=1,
        rd=1,
        ra=1,
        qd=DNSQR(qname="example.com", qtype="A"),
        an=DNSRR(rrname="example.com", type="A", ttl=300, rdata="192.0.2.80"),
    )
    return [
        _rec(0, _eth(IP(src=C4, dst=DNS4, ttl=64, id=300) / UDP(sport=53000, dport=53) / q, True)),
        _rec(20_000, _eth(IP(src=DNS4, dst=C4, ttl=58, id=400) / UDP(sport=53, dport=53000) / r, False)),
        _rec(30_000, _eth(IP(src=C4, dst=S4, ttl=64, id=301) / UDP(sport=53001, dport=9) / Raw(b"z"), True)),
    ]


def icmp_echo() -> list[Rec]:
    """Two ICMP echo request/reply pairs with 32 payload bytes each."""
    data = b"abcdefghijklmnopqrstuvwabcdefghi"
    out = []
    for i, t in enumerate((0, 1_000_000)):
        out.append(
            _rec(
                t, _eth(IP(src=C4, dst=S4, ttl=128, id=500 + i) / ICMP(type=8, id=1, seq=i + 1) / data, True)
            )
        )
        out.append(
            _rec(
                t + 800,
                _eth(IP(src=S4, dst=C4, ttl=57, id=600 + i) / ICMP(type=0, id=1, seq=i + 1) / data, False),
            )
        )
    return out


def ipv6_tcp() -> list[Rec]:
    """IPv6 TCP with extension headers, an ICMPv6 echo pair, a UDP datagram in two fragments."""
    p, s = 40010, 443
    c2s = IPv6(src=C6, dst=S6, hlim=64)
    s2c = IPv6(src=S6, dst=C6, hlim=60)
    payload = bytes(range(256)) * 5 + bytes(range(120))  # 1400 bytes
    udp = bytes(UDP(sport=40011, dport=5001) / Raw(payload))  # 1408 bytes, checksum over the whole datagram
    frag1 = IPv6ExtHdrFragment(nh=17, offset=0, m=1, id=0xABCD) / Raw(udp[:1000])
    frag2 = IPv6ExtHdrFragment(nh=17, offset=125, m=0, id=0xABCD) / Raw(udp[1000:])
    return [
        # SYN with a hop-by-hop options header (8 bytes)
        _rec(
            0, _eth(c2s / IPv6ExtHdrHopByHop() / TCP(sport=p, dport=s, flags="S", seq=10, window=64800), True)
        ),
        _rec(400, _eth(s2c / TCP(sport=s, dport=p, flags="SA", seq=20, ack=11, window=64260), False)),
        # ACK behind hop-by-hop + destination options + routing (type 0, no addresses) headers
        _rec(
            800,
            _eth(
                c2s
                / IPv6ExtHdrHopByHop()
                / IPv6ExtHdrDestOpt()
                / IPv6ExtHdrRouting(addresses=[])
                / TCP(sport=p, dport=s, flags="A", seq=11, ack=21, window=507),
                True,
            ),
        ),
        # data in an atomic fragment (fragment header, offset 0, no more fragments)
        _rec(
            1000,
            _eth(
                c2s
                / IPv6ExtHdrFragment(offset=0, m=0, id=7)
                / TCP(sport=p, dport=s, flags="PA", seq=11, ack=21, window=507)
                / Raw(b"hello ipv6"),
                True,
            ),
        ),
        _rec(2000, _eth(c2s / ICMPv6EchoRequest(id=7, seq=1, data=b"ping6data"), True)),
        _rec(2300, _eth(s2c / ICMPv6EchoReply(id=7, seq=1, data=b"ping6data"), False)),
        _rec(3000, _eth(IPv6(src=C6, dst=S6, hlim=64, nh=44) / frag1, True)),
        _rec(3010, _eth(IPv6(src=C6, dst=S6, hlim=64, nh=44) / frag2, True)),
    ]


def vlan_qinq() -> list[Rec]:
    """802.1Q, 802.1ad QinQ and legacy 0x9100 double tags around UDP and TCP."""
    udp = IP(src=C4, dst=S4, ttl=64, id=700) / UDP(sport=40020, dport=5353) / Raw(b"0123456789" * 3)
    syn = _tcp4(True, 40021, 80, "S", 100, 0, 64240)
    ack = _tcp4(False, 40021, 80, "SA", 900, 101, 65160)
    return [
        _rec(0, _eth(Dot1Q(vlan=100) / udp, True)),
        _rec(100, _eth(Dot1AD(vlan=200) / Dot1Q(vlan=100) / syn, True)),
        _rec(200, _eth(Dot1AD(vlan=200) / Dot1Q(vlan=100) / ack, False)),
        _rec(300, _eth(Dot1Q(vlan=300, type=0x8100) / Dot1Q(vlan=100) / udp, True, ethertype=0x9100)),
    ]


def ipv4_fragments() -> list[Rec]:
    """A 3000-byte UDP datagram in three IPv4 fragments (1480 + 1480 + 48 IP payload bytes)."""
    dgram = IP(src=C4, dst=S4, ttl=64, id=0x4242) / UDP(sport=5000, dport=6000) / Raw(b"F" * 3000)
    frags = fragment(dgram, fragsize=1480)
    return [_rec(10 * i, _eth(f, True)) for i, f in enumerate(frags)]


def ipv4_options() -> list[Rec]:
    """A TCP SYN whose IPv4 header carries a 4-byte router-alert option (IHL 6), and its answer."""
    syn = IP(src=C4, dst=S4, ttl=64, id=800, options=b"\x94\x04\x00\x00") / TCP(
        sport=40030, dport=8080, flags="S", seq=1, window=1024
    )
    return [
        _rec(0, _eth(syn, True)),
        _rec(100, _eth(_tcp4(False, 40030, 8080, "SA", 50, 2, 2048), False)),
    ]


def truncated_and_corrupt() -> list[Rec]:
    """One frame per decoder complaint, then two good ones (see README for each reason)."""
    good = bytes(Ether(src=C_MAC, dst=S_MAC) / _tcp4(True, 40040, 80, "PA", 1, 1, 100) / Raw(b"p" * 1460))
    ip_ok = bytes(
        IP(src=C4, dst=S4, ttl=64, id=900) / TCP(sport=40041, dport=80, flags="A", seq=1, ack=1, window=9)
    )
    eth_hdr = bytes(Ether(src=C_MAC, dst=S_MAC, type=0x0800))[:14]

    def ipv4(raw: bytes) -> bytes:
        frame = eth_hdr + raw
        return frame + bytes(max(0, 60 - len(frame)))

    bad_ihl = bytearray(ip_ok)
    bad_ihl[0] = 0x44
    bad_version = bytearray(ip_ok)
    bad_version[0] = 0x55
    tcp_off_small = bytearray(ip_ok)
    tcp_off_small[20 + 12] = 0x30  # data offset 3 -> 12 bytes
    tcp_off_big = bytearray(ip_ok)
    tcp_off_big[20 + 12] = 0xF0  # data offset 15 -> 60 bytes, the frame has 20 + 6 padding
    udp_short = bytes(IP(src=C4, dst=S4, ttl=64, id=901, proto=17, len=24)) + b"\x9c\x41\x00\x35"
    icmp_short = bytes(IP(src=C4, dst=S4, ttl=64, id=902, proto=1, len=24)) + b"\x08\x00\xf7\xff"
    ipv6_ext_cut = bytes(Ether(src=C_MAC, dst=S_MAC) / IPv6(src=C6, dst=S6, nh=0, plen=16))[:54] + b"\x06\x05"
    return [
        _rec(0, bytes(Ether(src=C_MAC, dst=S_MAC))[:10]),  # 1 truncated_ethernet
        _rec(10, _eth(ARP(op=1, hwsrc=C_MAC, psrc=C4, pdst=S4), True)),  # 2 non_ip (ARP)
        _rec(20, eth_hdr + ip_ok[:16], 74),  # 3 truncated_ip (snap length 30)
        _rec(30, ipv4(bytes(bad_ihl))),  # 4 bad_ip_header_length
        _rec(40, ipv4(bytes(bad_version))),  # 5 bad_ip_version
        _rec(50, ipv4(bytes(tcp_off_small))),  # 6 bad_tcp_offset (below 5)
        _rec(60, ipv4(bytes(tcp_off_big))),  # 7 bad_tcp_offset (past the packet)
        _rec(70, good[:44], len(good)),  # 8 truncated_tcp (snap length 44)
        _rec(80, ipv4(udp_short)[:38], 60),  # 9 truncated_udp
        _rec(90, ipv4(icmp_short)[:38], 60),  # 10 truncated_icmp
        _rec(
            100, bytes(Ether(src=C_MAC, dst=S_MAC) / IPv6(src=C6, dst=S6))[:44], 74
        ),  # 11 truncated_ip (IPv6)
        _rec(110, ipv6_ext_cut, 86),  # 12 truncated_ipv6_ext
        _rec(120, bytes(Ether(src=C_MAC, dst=S_MAC, type=0x8100))[:14] + b"\x00\x64"),  # 13 truncated_vlan
        _rec(130, _eth(Raw(b"\x02\x07\x04" + bytes(40)), True, ethertype=0x88CC)),  # 14 non_ip (LLDP)
        _rec(140, good[:68], len(good)),  # 15 decoded: snap length 68 cuts the payload
        _rec(150, _eth(IP(bytes(ip_ok)), True)),  # 16 decoded: a whole empty ACK, padded
    ]


def idle_gaps() -> list[Rec]:
    """A UDP conversation with a 6.5 s gap (> 5 s activity timeout) and a 120.5 s gap (> 120 s)."""

    def udp(t_us: int, fwd: bool, size: int) -> Rec:
        if fwd:
            pkt = IP(src=C4, dst=S4, ttl=64, id=1000) / UDP(sport=40100, dport=9999) / Raw(b"f" * size)
        else:
            pkt = IP(src=S4, dst=C4, ttl=57, id=2000) / UDP(sport=9999, dport=40100) / Raw(b"b" * size)
        return _rec(t_us, _eth(pkt, fwd))

    return [
        udp(0, True, 20),
        udp(500_000, False, 30),
        udp(1_000_000, True, 20),
        udp(7_500_000, True, 20),
        udp(8_000_000, False, 30),
        udp(128_500_000, True, 20),
        udp(129_000_000, False, 30),
    ]


def bulk_transfer() -> list[Rec]:
    """Handshake, then 24 back-to-back 256-byte segments server -> client, an ACK every 4."""
    p, s = 40200, 8000
    out = [
        _rec(0, _eth(_tcp4(True, p, s, "S", 0, 0, 64240), True)),
        _rec(100, _eth(_tcp4(False, p, s, "SA", 0, 1, 65160), False)),
        _rec(200, _eth(_tcp4(True, p, s, "A", 1, 1, 502), True)),
    ]
    t = 1000
    for i in range(24):
        out.append(
            _rec(
                t, _eth(_tcp4(False, p, s, "A", 1 + 256 * i, 1, 509) / Raw(bytes([65 + i % 26]) * 256), False)
            )
        )
        t += 50
        if i % 4 == 3:
            out.append(_rec(t, _eth(_tcp4(True, p, s, "A", 1, 1 + 256 * (i + 1), 502), True)))
            t += 50
    return out


def tcp_remnants() -> list[Rec]:
    """A closed connection's trailing packets: the ``tcp_fin_close`` exchange, then 0.3 s later a
    repeated FIN from the server and a duplicate last ACK from the client (both < 1 s after the
    close: absorbed by ``corrected``), then 2.5 s after the close one more stray ACK (a flow)."""
    p, s = 40000, 80
    recs = tcp_fin_close()
    return [
        *recs,
        _rec(305_000, _eth(_tcp4(False, p, s, "FA", 5101, 1020, 509), False)),
        _rec(305_400, _eth(_tcp4(True, p, s, "A", 1020, 5102, 501), True)),
        _rec(2_505_000, _eth(_tcp4(True, p, s, "A", 1020, 5102, 501), True)),
    ]


def tcp_midstream() -> list[Rec]:
    """Capture started mid-connection: the first packet is data from the server (port 443) to the
    client (port 51000), then the client's ACK and request, the server's answer, the client's ACK."""
    p, s = 51000, 443
    return [
        _rec(0, _eth(_tcp4(False, p, s, "PA", 9000, 3000, 509) / Raw(b"s" * 200), False)),
        _rec(400, _eth(_tcp4(True, p, s, "A", 3000, 9200, 501), True)),
        _rec(900, _eth(_tcp4(True, p, s, "PA", 3000, 9200, 501) / Raw(b"c" * 50), True)),
        _rec(1500, _eth(_tcp4(False, p, s, "PA", 9200, 3050, 509) / Raw(b"s" * 300), False)),
        _rec(2000, _eth(_tcp4(True, p, s, "A", 3050, 9500, 501), True)),
    ]


def tcp_synack_first() -> list[Rec]:
    """The client's SYN was not captured: the first packet is the server's SYN-ACK (port 80 to
    the client's 40100), then the client's ACK and request, the server's answer and an RST."""
    p, s = 40100, 80
    return [
        _rec(0, _eth(_tcp4(False, p, s, "SA", 7000, 1001, 65160), False)),
        _rec(300, _eth(_tcp4(True, p, s, "A", 1001, 7001, 502), True)),
        _rec(600, _eth(_tcp4(True, p, s, "PA", 1001, 7001, 502) / Raw(b"q" * 20), True)),
        _rec(1200, _eth(_tcp4(False, p, s, "PA", 7001, 1021, 509) / Raw(b"r" * 80), False)),
        _rec(1800, _eth(_tcp4(True, p, s, "R", 1021, 0, 0), True)),
    ]


def tcp_resume() -> list[Rec]:
    """A long-lived connection that goes quiet for 75 s (> the 60 s idle timeout) and resumes
    with data from the server first: two flows in ``corrected``, the second a continuation
    oriented like the first (client 40200 -> server 8883)."""
    p, s = 40200, 8883
    return [
        _rec(0, _eth(_tcp4(True, p, s, "S", 100, 0, 64240), True)),
        _rec(400, _eth(_tcp4(False, p, s, "SA", 900, 101, 65160), False)),
        _rec(800, _eth(_tcp4(True, p, s, "A", 101, 901, 502), True)),
        _rec(1000, _eth(_tcp4(True, p, s, "PA", 101, 901, 502) / Raw(b"k" * 30), True)),
        _rec(1500, _eth(_tcp4(False, p, s, "A", 901, 131, 509), False)),
        _rec(75_001_500, _eth(_tcp4(False, p, s, "PA", 901, 131, 509) / Raw(b"m" * 40), False)),
        _rec(75_002_000, _eth(_tcp4(True, p, s, "A", 131, 941, 502), True)),
        _rec(75_002_500, _eth(_tcp4(True, p, s, "PA", 131, 941, 502) / Raw(b"k" * 30), True)),
        _rec(75_003_000, _eth(_tcp4(False, p, s, "A", 941, 161, 509), False)),
    ]


def tcp_port_scan() -> list[Rec]:
    """One source probes 40 closed ports (20-59) of one host with SYNs 10 ms apart; each gets an
    RST-ACK 200 µs later. The context of probe i (0-based): min(i, 32) recent flows, as many
    distinct ports, one host, all unanswered (no data either way); the span grows by 10 ms."""
    recs = []
    for i in range(40):
        port = 20 + i
        t = i * 10_000
        recs.append(_rec(t, _eth(_tcp4(True, 45000, port, "S", 500 + i, 0, 1024), True)))
        recs.append(_rec(t + 200, _eth(_tcp4(False, 45000, port, "RA", 0, 501 + i, 0), False)))
    return recs


#: name -> (builder, description) for the Ethernet µs pcap scenarios
SCENARIOS: dict[str, Callable[[], list[Rec]]] = {
    "tcp_fin_close": tcp_fin_close,
    "tcp_rst_close": tcp_rst_close,
    "tcp_half_open_syn": tcp_half_open_syn,
    "udp_dns": udp_dns,
    "icmp_echo": icmp_echo,
    "ipv6_tcp": ipv6_tcp,
    "vlan_qinq": vlan_qinq,
    "ipv4_fragments": ipv4_fragments,
    "ipv4_options": ipv4_options,
    "truncated_and_corrupt": truncated_and_corrupt,
    "idle_gaps": idle_gaps,
    "bulk_transfer": bulk_transfer,
    "tcp_remnants": tcp_remnants,
    "tcp_midstream": tcp_midstream,
    "tcp_synack_first": tcp_synack_first,
    "tcp_resume": tcp_resume,
    "tcp_port_scan": tcp_port_scan,
}


# -- writers -----------------------------------------------------------------------------------


def write_pcap(
    path: Path,
    recs: Sequence[Rec],
    linktype: int = LINKTYPE_ETHERNET,
    *,
    nano: bool = False,
    endian: str = "<",
    extra_ns: int = 0,
) -> None:
    """A classic pcap file written by scapy (µs or ns), timestamps shifted by ``extra_ns``."""
    w = RawPcapWriter(str(path), linktype=linktype, nano=nano, endianness=endian, snaplen=65535, sync=False)
    w.linktype = linktype  # scapy ignores a linktype of 0 (falsy)
    w.write_header(None)
    try:
        for ts_ns, frame, wire_len in recs:
            ts_ns += extra_ns
            sec, frac = divmod(ts_ns, 1_000_000_000)
            w.write_packet(
                frame, sec=sec, usec=frac if nano else frac // 1000, caplen=len(frame), wirelen=wire_len
            )
    finally:
        w.close()


def _pad4(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


def _block(o: str, btype: int, body: bytes) -> bytes:
    body = _pad4(body)
    total = len(body) + 12
    return struct.pack(o + "II", btype, total) + body + struct.pack(o + "I", total)


def _opt(o: str, code: int, value: bytes) -> bytes:
    return struct.pack(o + "HH", code, len(value)) + _pad4(value)


def _shb(o: str) -> bytes:
    opts = _opt(o, 4, b"edge-nids tests/data/make_scenarios.py") + _opt(o, 0, b"")  # shb_userappl
    return _block(o, 0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, 1, 0, -1) + opts)


def _idb(
    o: str, linktype: int, snaplen: int = 65535, tsresol: int | None = None, tsoffset_s: int = 0
) -> bytes:
    opts = _opt(o, 2, b"eth0")  # if_name
    if tsresol is not None:
        opts += _opt(o, 9, bytes([tsresol]))
    if tsoffset_s:
        opts += _opt(o, 14, struct.pack(o + "q", tsoffset_s))
    return _block(o, 1, struct.pack(o + "HHI", linktype, 0, snaplen) + opts + _opt(o, 0, b""))


def _epb(o: str, ifid: int, ts: int, frame: bytes, wire_len: int, comment: bytes = b"") -> bytes:
    body = struct.pack(o + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(frame), wire_len) + _pad4(frame)
    if comment:
        body += _opt(o, 1, comment) + _opt(o, 0, b"")
    return _block(o, 6, body)


def _units(ts_ns: int, tsresol: int | None) -> int:
    """ns -> interface units, rounded up so that flooring back to µs gives the same µs."""
    if tsresol is None:
        return ts_ns // 1000
    if tsresol & 0x80:
        per_s = 2 ** (tsresol & 0x7F)
    else:
        per_s = 10**tsresol
    us = ts_ns // 1000
    return -(-us * per_s // 1_000_000)


def _skip_blocks(o: str) -> bytes:
    """Blocks without packets: name resolution, interface statistics, a custom block."""
    nrb = _block(
        o,
        4,
        struct.pack(o + "HH", 1, 16)
        + bytes([198, 51, 100, 20])
        + b"server\x00\x00\x00\x00\x00\x00"
        + struct.pack(o + "HH", 0, 0),
    )
    isb = _block(o, 5, struct.pack(o + "III", 0, 0, 0))
    custom = _block(o, 0x40000BAD, struct.pack(o + "I", 32473) + b"edge-nids test")
    return nrb + isb + custom


def write_pcapng_simple(path: Path, recs: Sequence[Rec], o: str = "<", tsresol: int | None = None) -> None:
    """One section, one Ethernet interface, enhanced packet blocks, some blocks to skip."""
    out = [_shb(o), _idb(o, LINKTYPE_ETHERNET, tsresol=tsresol), _skip_blocks(o)]
    for i, (ts_ns, frame, wire_len) in enumerate(recs):
        ts = ts_ns if tsresol == 9 else _units(ts_ns, tsresol)
        out.append(_epb(o, 0, ts, frame, wire_len, comment=b"first packet" if i == 0 else b""))
    path.write_bytes(b"".join(out))


def write_pcapng_multi(path: Path, recs: Sequence[Rec]) -> None:
    """Two sections: LE with an Ethernet (2^-20 s) and an SLL2 (10^-7 s) interface, then BE raw IP.

    Client packets of the first section go through interface 0, server packets
    through interface 1; the last three packets are in a big-endian section whose
    raw-IP interface has if_tsoffset = 1,700,000,000 s.
    """
    le, be = "<", ">"
    out = [_shb(le), _idb(le, LINKTYPE_ETHERNET, tsresol=0x94), _idb(le, LINKTYPE_LINUX_SLL2, tsresol=7)]
    for ts_ns, frame, wire_len in recs[:-3]:
        if frame[6:12] == bytes.fromhex("02000000000a"):  # from the client
            out.append(_epb(le, 0, _units(ts_ns, 0x94), frame, wire_len))
        else:
            sll2 = _sll2(frame)
            out.append(_epb(le, 1, _units(ts_ns, 7), sll2, wire_len - 14 + 20))
    offset_s = T0_NS // 1_000_000_000
    out += [_shb(be), _idb(be, LINKTYPE_RAW, tsoffset_s=offset_s)]
    for ts_ns, frame, wire_len in recs[-3:]:
        out.append(_epb(be, 0, ts_ns // 1000 - offset_s * 1_000_000, frame[14:], wire_len - 14))
    path.write_bytes(b"".join(out))


def write_pcapng_spb(path: Path, recs: Sequence[Rec], snaplen: int) -> None:
    """Simple packet blocks (no timestamps) on an interface with a snap length."""
    o = "<"
    out = [_shb(o), _idb(o, LINKTYPE_ETHERNET, snaplen=snaplen)]
    for _ts, frame, wire_len in recs:
        out.append(_block(o, 3, struct.pack(o + "I", wire_len) + frame[:snaplen]))
    path.write_bytes(b"".join(out))


# -- link-layer variants (the IP bytes, Ethernet padding included, stay the same) ---------------


def _from_client(frame: bytes) -> bool:
    return frame[6:12] == bytes.fromhex("02000000000a")


def _sll(frame: bytes) -> bytes:
    pkttype = 4 if _from_client(frame) else 0  # outgoing / to us
    return (
        struct.pack("!HHH8sH", pkttype, 1, 6, frame[6:12] + b"\0\0", struct.unpack("!H", frame[12:14])[0])
        + frame[14:]
    )


def _sll2(frame: bytes) -> bytes:
    pkttype = 4 if _from_client(frame) else 0
    proto = struct.unpack("!H", frame[12:14])[0]
    return struct.pack("!HHIHBB8s", proto, 0, 2, 1, pkttype, 6, frame[6:12] + b"\0\0") + frame[14:]


def _relink(recs: Sequence[Rec], convert: Callable[[bytes], bytes]) -> list[Rec]:
    out = []
    for ts, frame, wire_len in recs:
        new = convert(frame)
        out.append((ts, new, wire_len - len(frame) + len(new)))
    return out


def write_big(path: Path, packets: int) -> int:
    """A long Ethernet pcap for benchmarks: the scenarios (less the corrupt one) replayed.

    Each replay is shifted by 130 s; returns the number of packets written.
    """
    one = [r for name, build in SCENARIOS.items() if name != "truncated_and_corrupt" for r in build()]
    one.sort(key=lambda r: r[0])
    recs: list[Rec] = []
    shift = 0
    while len(recs) < packets:
        recs.extend((ts + shift, frame, wire) for ts, frame, wire in one[: packets - len(recs)])
        shift += 130 * 1_000_000_000
    write_pcap(path, recs)
    return len(recs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: tests/data)")
    parser.add_argument(
        "--big", type=Path, metavar="PCAP", help="instead, write one long benchmark capture to PCAP"
    )
    parser.add_argument("--packets", type=int, default=200_000, help="packets in the --big capture")
    args = parser.parse_args(argv)
    if args.big is not None:
        write_big(args.big, args.packets)
        return 0
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name, build in SCENARIOS.items():
        write_pcap(out / f"{name}.pcap", build())

    fin = tcp_fin_close()
    # Format variants: ns timestamps carry 123 extra ns (floored away when read as µs).
    write_pcap(out / "tcp_fin_close_ns.pcap", fin, nano=True, extra_ns=123)
    write_pcap(out / "tcp_fin_close_be.pcap", fin, endian=">")
    write_pcap(out / "tcp_fin_close_be_ns.pcap", fin, nano=True, endian=">", extra_ns=999)
    write_pcapng_simple(out / "tcp_fin_close.pcapng", fin)
    write_pcapng_simple(
        out / "tcp_fin_close_be_ns.pcapng", [(t + 456, f, w) for t, f, w in fin], o=">", tsresol=9
    )
    write_pcapng_multi(out / "tcp_fin_close_multi.pcapng", fin)
    # Link-type variants.
    write_pcap(out / "tcp_fin_close_sll.pcap", _relink(fin, _sll), LINKTYPE_LINUX_SLL)
    write_pcap(out / "tcp_fin_close_sll2.pcap", _relink(fin, _sll2), LINKTYPE_LINUX_SLL2)
    write_pcap(out / "tcp_fin_close_raw.pcap", _relink(fin, lambda f: f[14:]), LINKTYPE_RAW)
    write_pcap(
        out / "tcp_fin_close_null.pcap", _relink(fin, lambda f: struct.pack("<I", 2) + f[14:]), LINKTYPE_NULL
    )
    # Simple packet blocks with a 64-byte snap length (the 72- and 154-byte data frames are cut).
    write_pcapng_spb(out / "tcp_fin_close_spb.pcapng", fin, snaplen=64)
    # A file cut inside its last record (a capture still being written).
    whole = (out / "tcp_fin_close.pcap").read_bytes()
    (out / "truncated_file.pcap").write_bytes(whole[:-20])
    whole_ng = (out / "tcp_fin_close.pcapng").read_bytes()
    (out / "truncated_file.pcapng").write_bytes(whole_ng[:-30])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
