"""Refused logins read from servers' replies (``edge_nids.flows.logins``), on hand-built
segments with hand-worked counts and on real captures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edge_nids.flows.decode import Decoder
from edge_nids.flows.logins import (
    ACCEPTED,
    GREETING,
    HTTP,
    IMAP,
    LOGIN_SEGMENTS,
    MQTT,
    MYSQL,
    NONE,
    PGSQL,
    POP3,
    REDIS,
    REFUSED,
    SMB,
    SSH,
    TELNET,
    UNDECIDED,
    LoginTracker,
    client_app,
    http_credentials,
    login_reply,
    server_app,
)
from edge_nids.flows.packet import Packet
from edge_nids.flows.pcap import open_capture
from edge_nids.flows.table import FlowConfig, FlowTable

from .helpers import A, B, C, pkt

# The bytes of mqttset_bruteforce.pcapng's first connection (tcpdump -X): an MQTT 3.1.1
# CONNECT (clean session, keep-alive 60 s, empty client id) and the broker's CONNACK with
# return code 5, "not authorised".
CONNECT = bytes.fromhex("100c00044d5154540402003c0000")
CONNACK_REFUSED = bytes.fromhex("20020005")
CONNACK_OK = bytes.fromhex("20020000")
SYN, ACK, PSH = 0x02, 0x10, 0x08


def test_the_protocol_is_read_from_the_first_payload_not_the_port() -> None:
    assert client_app(CONNECT) == MQTT
    assert client_app(bytes.fromhex("10ff0100064d51497364700302")) == MQTT  # 3.1, 2-byte length
    assert client_app(b"GET /private/ HTTP/1.1\r\n") == HTTP
    assert client_app(b"\x16\x03\x01\x02\x00\x01") == NONE  # a TLS ClientHello
    assert client_app(b"SSH-2.0-OpenSSH_9.2") == SSH
    assert server_app(b"220 (vsFTPd 3.0.3)\r\n") == GREETING
    assert server_app(b"220-mail.example ESMTP") == GREETING
    assert server_app(b"HTTP/1.1 401 Unauthorized\r\n") == HTTP
    assert server_app(b"2200 bytes") == NONE
    assert server_app(b"SSH-2.0-OpenSSH_9.2") == SSH


@pytest.mark.parametrize(
    ("app", "head", "verdict"),
    [
        (MQTT, CONNACK_REFUSED, REFUSED),
        (MQTT, bytes.fromhex("20020004"), REFUSED),  # bad user name or password
        (MQTT, bytes.fromhex("2003008600"), REFUSED),  # MQTT 5: 0x86, properties length 0
        (MQTT, bytes.fromhex("20020003"), 0),  # server unavailable: no login verdict
        (MQTT, CONNACK_OK, ACCEPTED),
        (MQTT, bytes.fromhex("30100003"), 0),  # a PUBLISH
        (HTTP, b"HTTP/1.1 401 Unauthorized\r\n", REFUSED),
        (HTTP, b"HTTP/1.0 407 Proxy Auth", REFUSED),
        (HTTP, b"HTTP/1.1 200 OK\r\nServer", ACCEPTED),
        (HTTP, b"HTTP/1.1 404 Not Found\r\n", 0),
        (HTTP, b"<html><body>401</body>", 0),  # a body segment
        (GREETING, b"530 Login incorrect.\r\n", REFUSED),
        (GREETING, b"535 5.7.8 Error: auth", REFUSED),
        (GREETING, b"230 Login successful.", ACCEPTED),
        (GREETING, b"331 Please specify the", 0),
        (GREETING, b"5300 is not a reply", 0),
    ],
)
def test_each_login_reply(app: int, head: bytes, verdict: int) -> None:
    assert login_reply(app, head) == verdict


def _with(p: Packet, payload: bytes) -> Packet:
    """``p`` carrying ``payload`` (as the decoder gives it: its frame, where the payload is)."""
    return dataclasses.replace(p, frame=b"\0" * 54 + payload, data=54, data_end=54 + len(payload))


def _login(
    table: FlowTable, t_us: int, sport: int, reply: bytes, *, client: str = A, port: int = 1883
) -> object:
    """One short MQTT-style connection from ``client``: handshake, CONNECT, the server's
    ``reply``; returns its flow (still open in ``table``)."""
    for dt, src, dst, sp, dp, flags, head in [
        (0, client, B, sport, port, SYN, b""),
        (100, B, client, port, sport, SYN | ACK, b""),
        (200, client, B, sport, port, ACK, b""),
        (300, client, B, sport, port, PSH | ACK, CONNECT),
        (400, B, client, port, sport, PSH | ACK, reply),
    ]:
        p = _with(pkt(t_us + dt, src, dst, sp, dp, flags, payload=len(head)), head)
        table.add(p)
    return next(f for f in table.open_flows() if f.sport == sport and f.src_ip == client)


def test_a_guesser_climbs_by_one_per_refusal_and_its_success_carries_the_count() -> None:
    table = FlowTable(FlowConfig(profile="corrected"))
    s = 1_000_000
    flows = [_login(table, i * 1_500_000 + s, 40000 + i, CONNACK_REFUSED) for i in range(6)]
    # each connection after the first carries its client's count from its SYN on, then its reply's
    assert flows[0].logins == ((s + 400, 1, 0),)
    assert [f.logins for f in flows[1:]] == [
        ((i * 1_500_000 + s, i, 0), (i * 1_500_000 + s + 400, i + 1, 0)) for i in range(1, 6)
    ]
    assert all(f.app == -MQTT for f in flows)  # MQTT, its one login decided
    won = _login(table, 10 * 1_500_000, 40100, CONNACK_OK)
    assert won.logins[-1] == (10 * 1_500_000 + 400, 6, 0)  # the six refusals before it
    # after the acceptance the net count starts from 5: the next refusal makes it 6 again
    again = _login(table, 11 * 1_500_000, 40101, CONNACK_REFUSED)
    assert again.logins[-1][1] == 6
    # another client of the same broker has its own count; so does another service
    other = _login(table, 12 * 1_500_000, 40102, CONNACK_REFUSED, client=C)
    assert other.logins == ((12 * 1_500_000 + 400, 1, 0),)
    elsewhere = _login(table, 13 * 1_500_000, 40103, CONNACK_REFUSED, port=8883)
    assert elsewhere.logins == ((13 * 1_500_000 + 400, 1, 0),)
    assert (table.logins.refused, table.logins.accepted) == (9, 1)  # type: ignore[union-attr]


def test_a_challenge_answered_on_every_connection_never_counts_up() -> None:
    """HTTP digest or NTLM: each connection gets a 401, then a 200 once the client answers
    the challenge. A sensor polling so every 5 s for 10 minutes stays at one."""
    table = FlowTable(FlowConfig(profile="corrected"))
    counts = []
    for i in range(120):
        t = i * 5_000_000
        sport = 41000 + i
        for dt, src, dst, sp, dp, flags, head in [
            (0, A, B, sport, 80, SYN, b""),
            (100, B, A, 80, sport, SYN | ACK, b""),
            (200, A, B, sport, 80, PSH | ACK, b"GET /status HTTP/1.1"),
            (300, B, A, 80, sport, PSH | ACK, b"HTTP/1.1 401 Unauthorized"),
            (400, A, B, sport, 80, PSH | ACK, b"GET /status HTTP/1.1"),
            (500, B, A, 80, sport, PSH | ACK, b"HTTP/1.1 200 OK"),
        ]:
            table.add(_with(pkt(t + dt, src, dst, sp, dp, flags, len(head)), head))
        f = next(f for f in table.open_flows() if f.sport == sport)
        counts.append(max(n for _, n, _ in f.logins))
    assert set(counts) == {1}


def test_refusals_older_than_the_window_drop_out() -> None:
    table = FlowTable(FlowConfig(profile="corrected"))
    for i in range(4):
        _login(table, i * 1_000_000, 42000 + i, CONNACK_REFUSED)
    # refusals at 0, 1, 2 and 3 s; at 300.5 s the first is more than 300 s old
    late = _login(table, 300_500_000, 42010, CONNACK_REFUSED)
    assert late.logins == ((300_500_000, 3, 0), (300_500_400, 4, 0))
    later = _login(table, 400_000_000, 42011, CONNACK_REFUSED)
    assert later.logins == ((400_000_000, 1, 0), (400_000_400, 2, 0))


def _seg(payload: bytes, ts_us: int) -> Packet:
    """A segment carrying ``payload`` at ``ts_us``, as ``LoginTracker.segment`` reads it."""
    return _with(pkt(ts_us, payload=len(payload)), payload)


@dataclasses.dataclass
class _Conn:
    """What ``LoginTracker.segment`` reads and sets of a flow."""

    dport: int
    src: bytes = b"a"
    dst: bytes = b"b"
    app: int = 0
    replies: int = 0
    logins: tuple = ()


def test_a_connection_is_read_for_its_first_replies_only_and_tls_not_at_all() -> None:
    tracker = LoginTracker()
    flow = FlowTable(FlowConfig(profile="corrected"))
    f = _login(flow, 0, 43000, b"HTTP/1.1 200 OK")  # an MQTT client answered by no CONNACK
    assert f.app == MQTT and f.logins == ()
    http = _Conn(80)
    tracker.segment(http, _seg(b"GET / HTTP/1.1\r\n", 0), True)  # the first segment read
    for i in range(LOGIN_SEGMENTS + 5):
        tracker.segment(http, _seg(b"HTTP/1.1 401 Unauthorized", i), False)
    assert tracker.refused == LOGIN_SEGMENTS - 1 and http.app == -HTTP  # no longer read
    assert http.logins[-1][1] == LOGIN_SEGMENTS - 1
    tls = _Conn(443)
    tracker.segment(tls, _seg(b"\x16\x03\x01\x02\x00\x01\x00\x01", 0), True)
    tracker.segment(tls, _seg(b"HTTP/1.1 401 Unauthorized", 1), False)
    assert tls.app == NONE and tls.replies == 0 and tracker.refused == LOGIN_SEGMENTS - 1


def test_keys_are_bounded() -> None:
    tracker = LoginTracker(max_keys=8)
    for i in range(100):
        f = _Conn(1883, src=bytes([i]), app=MQTT)
        tracker.segment(f, _seg(CONNACK_REFUSED, i), False)
    assert len(tracker) == 8


def test_the_decoder_keeps_the_payload_head_without_ethernet_padding() -> None:
    """The broker's CONNACK of mqttset_bruteforce.pcapng, as captured: a 4-byte payload in a
    frame padded to 60 bytes (IP total length 44)."""
    frame = bytes.fromhex(
        "00000000000100000000000208004500002ccb454000800600"
        "00c0a8015bc0a8015a075bd8431ed3ac2feb88c4785018020100000000"
        "200200050000"
    )
    assert len(frame) == 60
    for padding in (True, False):
        p = Decoder(padding=padding).decode(1, frame, 0, 60)
        assert p is not None and p.head == CONNACK_REFUSED
        assert p.payload_len == (6 if padding else 4)
    bare = frame[:54] + b"\x00" * 6  # the same segment without payload: the padding is no head
    bare = bare[:16] + (40).to_bytes(2, "big") + bare[18:]
    p = Decoder().decode(1, bare, 0, 60)
    assert p is not None and p.head == b""


def _meter(pcap: Path) -> tuple[list, FlowTable]:
    table, dec, flows = FlowTable(FlowConfig(profile="corrected")), Decoder(), []
    with open_capture(pcap) as cap:
        for ts, linktype, frame, wire_len in cap:
            p = dec.decode(linktype, frame, ts, wire_len)
            if p is not None:
                flows += table.add(p)
    return flows + table.flush(), table


def test_a_real_mqtt_brute_force_is_all_refusals(shared_data: Path) -> None:
    """attacks_public/mqttset_bruteforce.pcapng (MANIFEST.tsv): 1,271 connections from
    192.168.1.90 to the broker 192.168.1.91:1883 over 32 minutes, each refused."""
    flows, table = _meter(shared_data / "pcaps" / "attacks_public" / "mqttset_bruteforce.pcapng")
    assert len(flows) == 1271 and {f.app for f in flows} == {-MQTT}
    assert (table.logins.refused, table.logins.accepted) == (1271, 0)  # type: ignore[union-attr]
    counts = sorted(max(n for _, n, _ in f.logins) for f in flows)
    assert counts[:5] == [1, 2, 3, 4, 5]  # the count saturates at LOGIN_DEPTH later
    assert counts[-1] == 64


def test_real_benign_captures_have_at_most_one_net_refusal(shared_data: Path) -> None:
    """benign_public (259 captures of the nDPI and nfstream suites): 329 connections of the
    protocols read; three refusals in all: a 401 (``ndpi_http_auth``), a POP3 "-ERR
    authentication failed" (``ndpi_pop3``), each answered by nothing after it, and an SSH
    user's second of two mistyped passwords (``ndpi_ssh``: 80-byte answers 1.9 and 2.4 s
    after the client's 144-byte tries, then the third try answered at once)."""
    refused = {}
    read = 0
    for pcap in sorted((shared_data / "pcaps" / "benign_public").glob("*.pcap*")):
        flows, table = _meter(pcap)
        read += sum(1 for f in flows if f.app not in (UNDECIDED, NONE))  # a protocol recognised
        if table.logins.refused:  # type: ignore[union-attr]
            refused[pcap.stem] = max(n for f in flows for _, n, _ in f.logins)
    assert refused == {"ndpi_http_auth": 1, "ndpi_pop3": 1, "ndpi_ssh": 1}
    assert read == 331


@pytest.mark.parametrize(
    ("payload", "cred"),
    [
        (
            b"GET /vulnerabilities/brute/?username=admin&password=letmein&Login=Login HTTP/1.1",
            (b"admin", b"letmein"),
        ),
        (b"POST /login HTTP/1.1\r\nHost: x\r\n\r\nuser=u&pass=p4ss", (b"u", b"p4ss")),
        (b"user=u&pass=p4ss", (b"u", b"p4ss")),  # a form body in a segment of its own
        (b"GET /snapshot.cgi?PWD=secret HTTP/1.1", (b"", b"secret")),
        (b"GET /search?q=password HTTP/1.1", None),  # a word, not a parameter
        (b"GET /reset?passport=1 HTTP/1.1", None),
        (b"GET /index.html HTTP/1.1", None),
    ],
)
def test_credentials_in_a_request(payload: bytes, cred: tuple[bytes, bytes] | None) -> None:
    assert http_credentials(payload) == cred


def test_a_login_form_guesser_is_counted_by_the_credentials_it_tries() -> None:
    """A form answers every try "200 OK" (an acceptance as far as the status goes): the
    guesser's distinct user/password pairs count up, a poller's fixed password stays at one."""
    table = FlowTable(FlowConfig(profile="corrected"))

    def submit(t: int, sport: int, query: bytes, client: str = A) -> object:
        for dt, src, dst, sp, dp, flags, head in [
            (0, client, B, sport, 80, SYN, b""),
            (100, B, client, 80, sport, SYN | ACK, b""),
            (200, client, B, sport, 80, PSH | ACK, b"GET /login?" + query + b" HTTP/1.1\r\n"),
            (300, B, client, 80, sport, PSH | ACK, b"HTTP/1.1 200 OK\r\n"),
        ]:
            table.add(_with(pkt(t + dt, src, dst, sp, dp, flags, len(head)), head))
        return next(f for f in table.open_flows() if f.sport == sport and f.src_ip == client)

    guesses = [submit(i * 1_000_000, 44000 + i, b"user=admin&password=pw%d" % i) for i in range(6)]
    assert [f.logins[-1][2] for f in guesses] == [1, 2, 3, 4, 5, 6]
    assert {n for f in guesses for _, n, _ in f.logins} == {0}  # the 200s refused nothing
    again = submit(7_000_000, 44010, b"user=admin&password=pw0")  # a pair tried before
    assert again.logins == ((7_000_000, 0, 6), (7_000_200, 0, 6), (7_000_300, 0, 6))
    polls = [submit(i * 1_000_000, 45000 + i, b"user=cam&pwd=fixed", client=C) for i in range(20)]
    assert {c for f in polls for _, _, c in f.logins} == {1}
    assert table.logins.submitted == 27  # type: ignore[union-attr]


def test_real_login_form_guessing_is_counted(shared_data: Path) -> None:
    """attacks_public: Hydra and Burp Intruder against DVWA's login form (GET parameters),
    Hydra against another site's; none of the 259 benign_public captures submits a password."""
    got = {}
    for name in (
        "lab2cripto_hydra.pcapng",
        "lab2cripto_burp.pcapng",
        "researchpcaps_hydra_http_get_bruteforce.pcap",
    ):
        flows, table = _meter(shared_data / "pcaps" / "attacks_public" / name)
        got[name] = max((c for f in flows for _, _, c in f.logins), default=0)
    assert got == {
        "lab2cripto_hydra.pcapng": 18,
        "lab2cripto_burp.pcapng": 64,
        "researchpcaps_hydra_http_get_bruteforce.pcap": 64,
    }
    for pcap in sorted((shared_data / "pcaps" / "benign_public").glob("*.pcap*")):
        _, table = _meter(pcap)
        assert table.logins.submitted == 0, pcap.name  # type: ignore[union-attr]


# SMB2 over NetBIOS session framing: length, "\xfeSMB", structure size 64, credit charge,
# NT status (little-endian), command (1: SESSION_SETUP)
def _smb2(status: int, command: int = 1) -> bytes:
    return (
        b"\x00\x00\x00\x48\xfeSMB\x40\x00\x01\x00"
        + status.to_bytes(4, "little")
        + command.to_bytes(2, "little")
    )


@pytest.mark.parametrize(
    ("head", "side", "app"),
    [  # first payloads, from benign_public's ndpi_pgsql, ndpi_mysql, ndpi_smb_deletefile,
        # ndpi_telnet, ndpi_pop3 and ndpi_imap
        (b"\x00\x00\x00&\x00\x03\x00\x00user\x00oryx\x00", "client", PGSQL),
        (b"\x00\x00\x00\x08\x04\xd2\x16/", "client", NONE),  # SSLRequest: TLS follows
        (b"\x00\x00\x01x\xfeSMB@\x00\x01\x00\x00\x00\x00\x00", "client", SMB),
        (b"\xff\xfd\x03\xff\xfb\x18\xff\xfb\x1f\xff\xfb", "client", TELNET),
        (b"*2\r\n$4\r\nAUTH\r\n$8\r\n", "client", REDIS),
        (b"*1\r\n$4\r\nPING\r\n", "client", NONE),
        (b"J\x00\x00\x00\n8.0.36\x00\x0c\x00\x00\x00", "server", MYSQL),
        (b"+OK POP server ready H migmxus005\r\n", "server", POP3),
        (b"* OK IMAP4Rev1 Server Version 4.9", "server", IMAP),
        (b"\xff\xfd%", "server", NONE),  # too short to tell
        (b"\xff\xfd\x18\xff\xfd \xff\xfd#\xff\xfd'", "server", TELNET),
    ],
)
def test_more_protocols_are_told_by_their_first_payload(head: bytes, side: str, app: int) -> None:
    assert (client_app if side == "client" else server_app)(head) == app


@pytest.mark.parametrize(
    ("app", "reply", "verdict"),
    [
        (POP3, b"-ERR authentication failed\r\n", REFUSED),  # ndpi_pop3, after AUTH PLAIN
        (POP3, b"-ERR [AUTH] Invalid login\r\n", REFUSED),
        (POP3, b"-ERR 1 argument required\r\n", 0),  # ndpi_pop3: a bad command
        (POP3, b"-ERR [IN-USE] login in use, maildrop locked\r\n", 0),  # RFC 3206 codes
        (POP3, b"-ERR [SYS/TEMP] authentication service unavailable\r\n", 0),
        (POP3, b"+OK mailbox has 2 messages\r\n", 0),
        (IMAP, b"a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", REFUSED),
        (IMAP, b"C00001 OK LOGIN completed\r\n", ACCEPTED),  # ndpi_imap
        (IMAP, b"C00000 OK CAPABILITY completed\r\n", 0),  # ndpi_imap
        (IMAP, b"a2 NO [TRYCREATE] Mailbox doesn't exist\r\n", 0),
        (IMAP, b"a3 NO [UNAVAILABLE] Login service unavailable\r\n", 0),  # RFC 5530 codes
        (IMAP, b"a4 NO Login failed.\r\n", REFUSED),
        (IMAP, b"* CAPABILITY IMAP4rev1 AUTH=LOGIN\r\n", 0),
        (TELNET, b"\r\nLogin incorrect\r\nlogin: ", REFUSED),
        (TELNET, b"\r\n% Authentication failed\r\n", REFUSED),
        (TELNET, b"Password: ", 0),
        (MYSQL, b"\x48\x00\x00\x02\xff\x15\x04#28000Access denied for user", REFUSED),
        (MYSQL, b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00", ACCEPTED),  # ndpi_mysql
        (MYSQL, b"\x17\x03\x03\x00\xfa/\x13\xb77\xf2\xc8", 0),  # TLS after an SSL request
        (PGSQL, b"R\x00\x00\x00\x08\x00\x00\x00\x00S\x00\x00\x00\x1c", ACCEPTED),  # ndpi_pgsql
        (PGSQL, b"R\x00\x00\x00\x0c\x00\x00\x00\x05\xadD\xffT", 0),  # the MD5 challenge
        (PGSQL, b"E\x00\x00\x00\x64SFATAL\x00VFATAL\x00C28P01\x00Mpassword authentication failed", REFUSED),
        (PGSQL, b"E\x00\x00\x00\x50SFATAL\x00C3D000\x00Mdatabase does not exist", 0),
        (SMB, _smb2(0xC000006D), REFUSED),  # STATUS_LOGON_FAILURE
        (SMB, _smb2(0), ACCEPTED),
        (SMB, _smb2(0xC0000016), 0),  # more processing required: the NTLM challenge
        (SMB, _smb2(0xC000006D, command=5), 0),  # not a session setup
        (SMB, b"\x00\x00\x00\x23\xffSMB\x73" + (0xC000006D).to_bytes(4, "little"), REFUSED),  # SMB1
        (REDIS, b"-WRONGPASS invalid username-password pair", REFUSED),
        (REDIS, b"-ERR invalid password\r\n", REFUSED),
        (REDIS, b"+OK\r\n", ACCEPTED),
    ],
)
def test_login_replies_of_more_protocols(app: int, reply: bytes, verdict: int) -> None:
    assert login_reply(app, reply) == verdict
    framed = b"\x00" * 54 + reply + b"\x00" * 6  # in place, in a frame, with padding after
    assert login_reply(app, framed, 54, 54 + len(reply)) == verdict


@pytest.mark.parametrize(
    ("name", "refused", "accepted"),
    [  # hand-checked in the captures (tcpdump -A): one AUTH PLAIN refused; "C00001 OK LOGIN
        # completed"; the first connection's OK (the second goes TLS); two AuthenticationOk
        ("ndpi_pop3.pcap", 1, 0),
        ("ndpi_imap.pcap", 0, 1),
        ("ndpi_mysql.pcapng", 0, 1),
        ("ndpi_pgsql.pcap", 0, 2),
    ],
)
def test_real_logins_of_more_protocols(shared_data: Path, name: str, refused: int, accepted: int) -> None:
    _, table = _meter(shared_data / "pcaps" / "benign_public" / name)
    assert (table.logins.refused, table.logins.accepted) == (refused, accepted)  # type: ignore[union-attr]


def _ssh_session(
    table: FlowTable, t_us: int, sport: int, tries: list[tuple[int, int]], client: bytes = A
) -> object:
    """An SSH connection from ``client`` to B:22 from its handshake: banners, key exchange,
    then per try (client segment time µs after the last, server answer delay µs) a 116-byte
    try and a 52-byte answer."""
    segs = [
        (0, client, B, sport, 22, SYN, b""),
        (100, B, client, 22, sport, SYN | ACK, b""),
        (200, client, B, sport, 22, ACK, b""),
        (300, client, B, sport, 22, PSH | ACK, b"SSH-2.0-OpenSSH_9.2\r\n"),
        (400, B, client, 22, sport, PSH | ACK, b"SSH-2.0-OpenSSH_9.2\r\n"),
        (500, client, B, sport, 22, PSH | ACK, b"k" * 944),
        (600, B, client, 22, sport, PSH | ACK, b"k" * 952),
        (700, B, client, 22, sport, PSH | ACK, b"k" * 460),
    ]
    t = 700
    for gap, delay in tries:
        t += gap
        segs.append((t, client, B, sport, 22, PSH | ACK, b"p" * 116))
        t += delay
        segs.append((t, B, client, 22, sport, PSH | ACK, b"f" * 52))
    for dt, src, dst, sp, dp, flags, payload in segs:
        table.add(_with(pkt(t_us + dt, src, dst, sp, dp, flags, payload=len(payload)), payload))
    return next(f for f in table.open_flows() if f.sport == sport and f.src_ip == client)


def test_an_ssh_password_guesser_is_told_by_its_servers_late_same_size_answers() -> None:
    """Encrypted, but shaped: each try answered about 2 s later with a segment of one size.
    The second and later such answers of a connection count; the first does not."""
    table = FlowTable(FlowConfig(profile="corrected"))
    guess = _ssh_session(table, 1_000_000, 40000, [(3_000, 2_000_000)] * 5)
    assert abs(guess.app) == SSH  # type: ignore[attr-defined]
    assert [n for _, n, _ in guess.logins] == [1, 2, 3, 4]  # type: ignore[attr-defined]
    # a second connection of the same client carries the count from its SYN, and adds to it
    more = _ssh_session(table, 20_000_000, 40001, [(3_000, 2_000_000)] * 3)
    assert [n for _, n, _ in more.logins] == [4, 5, 6]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("what", "tries"),
    [
        ("answered at once (public keys offered and declined, keystrokes)", [(3_000, 2_000)] * 6),
        ("answered later than 5 s", [(3_000, 6_000_000)] * 6),
        ("one late answer (a slow command, one mistyped password)", [(3_000, 2_000_000), (3_000, 1_000)]),
    ],
)
def test_ssh_answers_that_are_not_refusals(what: str, tries: list[tuple[int, int]]) -> None:
    table = FlowTable(FlowConfig(profile="corrected"))
    flow = _ssh_session(table, 1_000_000, 40000, tries)
    assert flow.logins == (), what  # type: ignore[attr-defined]
    assert table.logins.refused == 0  # type: ignore[union-attr]


def test_a_real_ssh_brute_force_is_read_through_its_encryption(shared_data: Path) -> None:
    """attacks_public/researchpcaps_ssh_brute_force.pcap (MANIFEST.tsv): 32 parallel SSH
    sessions from 192.168.203.193 to 192.168.100.123:22; the capture kept only segments with
    PSH (no handshake). 28 start with the banners and are read: their server answers each
    116-byte try about 2 s later with 52 bytes, five times, then disconnects. The first four
    start mid-session (no banner) and are not read."""
    flows, table = _meter(shared_data / "pcaps" / "attacks_public" / "researchpcaps_ssh_brute_force.pcap")
    assert len(flows) == 32
    read = [f for f in flows if abs(f.app) == SSH]
    assert len(read) == 28 and sum(1 for f in flows if f.app == NONE) == 4
    assert table.logins.refused == 28 * 4  # type: ignore[union-attr]
    assert max(n for f in read for _, n, _ in f.logins) == 64  # LOGIN_DEPTH: the count saturates
