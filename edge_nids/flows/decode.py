"""Raw frames to :class:`~edge_nids.flows.packet.Packet` header records.

Link layers: Ethernet (with 802.1Q, 802.1ad and QinQ tags), Linux cooked
capture v1 and v2, raw IP (LINKTYPE 101, 12, 14, 228, 229) and BSD/OpenBSD
loopback. Network: IPv4 (options, fragments) and IPv6 (hop-by-hop, routing,
fragment, destination-options, mobility, HIP, shim6 and AH extension headers).
Transport: TCP (options), UDP, ICMP, ICMPv6; other IP protocols are kept with
ports 0.

Conventions (CICFlowMeter's, see FEATURES.md):

* ``payload_len`` is every byte of the frame after the transport header,
  Ethernet padding included: a 60-byte Ethernet frame carrying an empty ACK
  has 6 payload bytes. That is what the 2017 CICFlowMeter build did: the
  published CIC-IDS2017 CSVs are full of 6- and 2-byte minimum packet lengths
  (an empty ACK; a SYN with only an MSS option). When a capture cut the frame
  short (``wire_len`` > captured bytes, e.g. a header-only snap length) the
  wire length is used, so sizes stay right. ``Decoder(padding=False)`` counts
  only the bytes the IPv4 total length / IPv6 payload length declare, as
  CICFlowMeter-4.0 does (its slowloris flows report 0 bytes for padded ACKs)
  and as the ``corrected`` meaning wants.
* ``header_len`` is the transport header: TCP data offset × 4, UDP 8, ICMP and
  ICMPv6 8, 0 for other protocols (whose payload is all bytes after the IP
  headers).
* Non-first fragments (IPv4 fragment offset > 0, IPv6 fragment header with
  offset > 0) carry no transport header: they are decoded with the IP
  protocol, ports 0, ``header_len`` 0 and the fragment's bytes as payload (the
  flow table attributes them to a 3-tuple flow, like CICFlowMeter does with
  packets it finds no ports in), and counted in ``Decoder.notes``. First
  fragments carry the ports and are decoded normally.

Nothing here raises on frame content. Frames that give no packet are counted by
reason in ``Decoder.counts``; ``Decoder.decoded`` counts the packets returned,
so ``decoded + sum(counts.values())`` is the number of frames seen.
"""

from __future__ import annotations

import struct

from edge_nids.flows.packet import ICMP, ICMPV6, TCP, UDP, Packet

__all__ = ["NOTES", "REASONS", "Decoder"]

#: Reasons a frame gives no packet (keys of ``Decoder.counts``).
REASONS: dict[str, str] = {
    "unsupported_linktype": "link type the decoder does not know",
    "truncated_link": "frame shorter than its link-layer header (SLL, SLL2, loopback)",
    "truncated_ethernet": "frame shorter than an Ethernet header",
    "truncated_vlan": "frame ends inside an 802.1Q/802.1ad tag",
    "non_ip": "not IPv4 or IPv6 (ARP, LLDP, 802.3/LLC, ...)",
    "truncated_ip": "frame ends inside the IPv4/IPv6 header",
    "bad_ip_version": "IP version field is neither 4 nor 6 (or disagrees with the link type)",
    "bad_ip_header_length": "IPv4 IHL below 5 (20 bytes)",
    "truncated_ipv6_ext": "frame ends inside an IPv6 extension header",
    "truncated_tcp": "frame ends inside the TCP header",
    "bad_tcp_offset": "TCP data offset below 5 or beyond the packet",
    "truncated_udp": "frame ends inside the UDP header",
    "truncated_icmp": "frame ends inside the ICMP/ICMPv6 header",
}

#: Decoded packets worth knowing about (keys of ``Decoder.notes``).
NOTES: dict[str, str] = {
    "fragment_non_first": "non-first IP fragment: decoded with ports 0 (no transport header)",
    "snaplen_truncated": "frame cut by the capture's snap length: sizes taken from the wire length",
}

_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_VLAN_TAGS = frozenset((0x8100, 0x88A8, 0x9100, 0x9200))
# IPv6 extension headers with the generic (next header, length in 8-octet units) layout.
_IPV6_EXT_GENERIC = frozenset((0, 43, 60, 135, 139, 140))
_IPV6_FRAGMENT = 44
_IPV6_AH = 51
# BSD loopback address families meaning IPv6 (NetBSD/OpenBSD, FreeBSD, macOS).
_AF_INET6 = frozenset((24, 28, 30))

_u16 = struct.Struct("!H").unpack_from
_tcp = struct.Struct("!HH8xBBH").unpack_from  # sport, dport, data offset byte, flags, window
_udp = struct.Struct("!HH").unpack_from
_ipv4 = struct.Struct("!BxH2xHBB").unpack_from  # version/IHL, total length, flags/frag, TTL, proto
# Ethernet type, then IPv4 version/IHL, flags/fragment offset, TTL, protocol.
_eth_ipv4 = struct.Struct("!12xHB5xHBB").unpack_from


class Decoder:
    """Decodes frames into packets and counts what it could not decode.

    ``counts``: frames that gave no packet, by reason (see :data:`REASONS`).
    ``notes``: decoded packets with a caveat, by kind (see :data:`NOTES`).
    ``decoded``: packets returned.
    """

    __slots__ = ("counts", "decoded", "notes", "padding")

    def __init__(self, *, padding: bool = True) -> None:
        #: True: payload_len counts every frame byte after the transport header, Ethernet
        #: padding included (CICFlowMeter 2017, the published CIC-IDS2017 CSVs). False:
        #: only the bytes the IP length fields declare (CICFlowMeter-4.0, the true payload).
        self.padding = padding
        self.counts: dict[str, int] = {}
        self.notes: dict[str, int] = {}
        self.decoded = 0

    @property
    def skipped(self) -> int:
        """Frames that gave no packet."""
        return sum(self.counts.values())

    def _skip(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1

    def _note(self, kind: str) -> None:
        self.notes[kind] = self.notes.get(kind, 0) + 1

    def decode(self, linktype: int, frame: bytes, ts_us: int, wire_len: int) -> Packet | None:
        """One captured frame -> a Packet, or None (counted in ``counts``) if it has none.

        ``frame`` is the captured bytes (bytes-like), ``ts_us`` the capture time in
        µs, ``wire_len`` the frame's length on the wire in bytes.
        """
        # Fast path: a whole untagged Ethernet frame carrying TCP or UDP in IPv4
        # without options or fragmentation, or in IPv6 without extension headers.
        # Everything else (and every error) takes the general path.
        if linktype == 1 and self.padding and type(frame) is bytes:
            n = len(frame)
            if n >= 42 and wire_len <= n:
                etype, vihl, frag, ttl, proto = _eth_ipv4(frame)
                if etype == 0x0800 and vihl == 0x45 and not frag & 0x1FFF:
                    if proto == 6:
                        if n >= 54:
                            sport, dport, doff, flags, window = _tcp(frame, 34)
                            thl = (doff >> 4) << 2
                            if 20 <= thl <= n - 34:
                                self.decoded += 1
                                o = 34 + thl
                                end = n
                                if n <= 60:  # Ethernet pads a frame to 60 bytes: not payload
                                    end = 14 + ((frame[16] << 8) | frame[17])  # + IP length
                                    if end > n or end < o:
                                        end = n
                                return Packet(
                                    ts_us, frame[26:30], frame[30:34], 6, sport, dport,
                                    n - o, thl, flags, window, wire_len, 4, ttl, frame, o, end,
                                )  # fmt: skip
                    elif proto == 17:
                        sport, dport = _udp(frame, 34)
                        self.decoded += 1
                        return Packet(
                            ts_us, frame[26:30], frame[30:34], 17, sport, dport,
                            n - 42, 8, 0, -1, wire_len, 4, ttl,
                        )  # fmt: skip
                elif etype == 0x86DD and vihl >> 4 == 6:
                    # IPv6 without extension headers: ``frag`` holds next header, hop limit.
                    nh = frag >> 8
                    if nh == 6:
                        if n >= 74:
                            sport, dport, doff, flags, window = _tcp(frame, 54)
                            thl = (doff >> 4) << 2
                            if 20 <= thl <= n - 54:
                                self.decoded += 1
                                o = 54 + thl  # a frame of 74 bytes or more has no padding
                                return Packet(
                                    ts_us, frame[22:38], frame[38:54], 6, sport, dport,
                                    n - o, thl, flags, window, wire_len, 6, frag & 0xFF, frame, o, n,
                                )  # fmt: skip
                    elif nh == 17 and n >= 62:
                        sport, dport = _udp(frame, 54)
                        self.decoded += 1
                        return Packet(
                            ts_us, frame[22:38], frame[38:54], 17, sport, dport,
                            n - 62, 8, 0, -1, wire_len, 6, frag & 0xFF,
                        )  # fmt: skip
        pkt = self._decode(linktype, frame, ts_us, wire_len)
        if pkt is not None and wire_len > len(frame):
            self._note("snaplen_truncated")
        return pkt

    def _decode(self, linktype: int, frame: bytes, ts_us: int, wire_len: int) -> Packet | None:
        """The general path: every link type, tags, options, IPv6, fragments, errors."""
        if type(frame) is not bytes:
            frame = bytes(frame)
        n = len(frame)
        # -- link layer: find the ethertype and where the network header starts ----------
        if linktype == 1:
            if n < 14:
                self._skip("truncated_ethernet")
                return None
            etype = (frame[12] << 8) | frame[13]
            off = 14
        elif linktype == 101 or linktype == 12 or linktype == 14 or linktype == 228 or linktype == 229:
            if n < 1:
                self._skip("truncated_ip")
                return None
            version = frame[0] >> 4
            if (version == 4 and linktype != 229) or (version == 6 and linktype != 228):
                etype = _ETH_IPV4 if version == 4 else _ETH_IPV6
            else:
                self._skip("bad_ip_version")
                return None
            off = 0
        elif linktype == 113:
            if n < 16:
                self._skip("truncated_link")
                return None
            etype = (frame[14] << 8) | frame[15]
            off = 16
        elif linktype == 276:
            if n < 20:
                self._skip("truncated_link")
                return None
            etype = (frame[0] << 8) | frame[1]
            off = 20
        elif linktype == 0 or linktype == 108:
            if n < 4:
                self._skip("truncated_link")
                return None
            family = int.from_bytes(frame[:4], "big" if linktype == 108 else "little")
            if family > 0xFFFF:  # written in the other byte order
                family = int.from_bytes(frame[:4], "little" if linktype == 108 else "big")
            if family == 2:
                etype = _ETH_IPV4
            elif family in _AF_INET6:
                etype = _ETH_IPV6
            else:
                self._skip("non_ip")
                return None
            off = 4
        else:
            self._skip("unsupported_linktype")
            return None

        while etype in _VLAN_TAGS:
            if n < off + 4:
                self._skip("truncated_vlan")
                return None
            etype = (frame[off + 2] << 8) | frame[off + 3]
            off += 4

        # Bytes of the frame on the wire: padding included; the wire length when cut short.
        size = wire_len if wire_len > n else n

        # -- network layer ------------------------------------------------------------------
        first_fragment = True
        if etype == _ETH_IPV4:
            if n - off < 20:
                self._skip("truncated_ip")
                return None
            vihl, ip_len, frag, ttl, proto = _ipv4(frame, off)
            if vihl >> 4 != 4:
                self._skip("bad_ip_version")
                return None
            ihl = (vihl & 0x0F) << 2
            if ihl < 20:
                self._skip("bad_ip_header_length")
                return None
            if n - off < ihl:
                self._skip("truncated_ip")
                return None
            src = frame[off + 12 : off + 16]
            dst = frame[off + 16 : off + 20]
            ip_version = 4
            l4 = off + ihl
            if frag & 0x1FFF:
                first_fragment = False
            # where the IP packet ends in the frame (its padding after), for ``Packet.head``
            ip_end = off + ip_len if ihl <= ip_len and off + ip_len < n else n
            if not self.padding and ip_len >= ihl and off + ip_len < size:
                size = off + ip_len  # drop the bytes after the IP packet
        elif etype == _ETH_IPV6:
            if n - off < 40:
                self._skip("truncated_ip")
                return None
            if frame[off] >> 4 != 6:
                self._skip("bad_ip_version")
                return None
            proto = frame[off + 6]
            ttl = frame[off + 7]
            src = frame[off + 8 : off + 24]
            dst = frame[off + 24 : off + 40]
            ip_version = 6
            l4 = off + 40
            plen = _u16(frame, off + 4)[0]
            ip_end = off + 40 + plen if plen and off + 40 + plen < n else n
            if not self.padding and plen and off + 40 + plen < size:
                # 0: a jumbogram, or TSO on the capturing host
                size = off + 40 + plen
            while True:
                if proto in _IPV6_EXT_GENERIC:
                    if n - l4 < 8:
                        self._skip("truncated_ipv6_ext")
                        return None
                    proto = frame[l4]
                    l4 += (frame[l4 + 1] + 1) << 3
                elif proto == _IPV6_FRAGMENT:
                    if n - l4 < 8:
                        self._skip("truncated_ipv6_ext")
                        return None
                    proto = frame[l4]
                    if _u16(frame, l4 + 2)[0] & 0xFFF8:
                        first_fragment = False
                    l4 += 8
                    if not first_fragment:
                        break
                elif proto == _IPV6_AH:
                    if n - l4 < 8:
                        self._skip("truncated_ipv6_ext")
                        return None
                    proto = frame[l4]
                    l4 += (frame[l4 + 1] + 2) << 2
                else:
                    break
            if l4 > n:
                self._skip("truncated_ipv6_ext")
                return None
        else:
            self._skip("non_ip")
            return None

        # -- transport layer ----------------------------------------------------------------
        if not first_fragment:
            self._note("fragment_non_first")
            self.decoded += 1
            return Packet(
                ts_us, src, dst, proto, 0, 0, max(0, size - l4), 0, 0, -1, wire_len, ip_version, ttl
            )
        if proto == TCP:
            if n - l4 < 20:
                self._skip("truncated_tcp")
                return None
            sport, dport, doff, flags, window = _tcp(frame, l4)
            thl = (doff >> 4) << 2
            if thl < 20:
                self._skip("bad_tcp_offset")
                return None
            if n - l4 < thl:
                # Options cut by the snap length, or an offset pointing past the packet.
                self._skip("truncated_tcp" if wire_len > n else "bad_tcp_offset")
                return None
            self.decoded += 1
            o = l4 + thl
            return Packet(
                ts_us,
                src,
                dst,
                TCP,
                sport,
                dport,
                max(0, size - o),
                thl,
                flags,
                window,
                wire_len,
                ip_version,
                ttl,
                frame,
                o,
                max(o, ip_end),
            )
        if proto == UDP:
            if n - l4 < 8:
                self._skip("truncated_udp")
                return None
            sport, dport = _udp(frame, l4)
            self.decoded += 1
            return Packet(
                ts_us, src, dst, UDP, sport, dport, max(0, size - l4 - 8), 8, 0, -1, wire_len, ip_version, ttl
            )
        if proto == ICMP or proto == ICMPV6:
            if n - l4 < 8:
                self._skip("truncated_icmp")
                return None
            self.decoded += 1
            return Packet(
                ts_us, src, dst, proto, 0, 0, max(0, size - l4 - 8), 8, 0, -1, wire_len, ip_version, ttl
            )
        self.decoded += 1
        return Packet(ts_us, src, dst, proto, 0, 0, max(0, size - l4), 0, 0, -1, wire_len, ip_version, ttl)
