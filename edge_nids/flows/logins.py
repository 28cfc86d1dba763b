"""Logins: the replies a server gives a failed password guess, and the credentials an HTTP
client submits, counted per client and service.

A password guesser against an MQTT broker, an FTP server or HTTP basic auth is a run of
short connections that each look like an ordinary login, and a slow one (``mqttset_bruteforce``:
one try every 1.5 s over 32 minutes) has the same flow shape and context as a sensor that
reconnects for every reading: the model flagged none of its 1,271 flows, nor did the random
forest (docs/detection.md). What tells them apart is in the server's answer, which these
protocols give in clear at a fixed place:

==========  ============================================  ===============================
protocol    refused                                       accepted
==========  ============================================  ===============================
MQTT        CONNACK return code 4, 5 (3.1.1) or reason    CONNACK 0
            0x86, 0x87, 0x8C (5.0)
HTTP/1.x    status 401, 407                               status 2xx
FTP, SMTP   reply 530, 535 (after a ``220`` greeting)     reply 230, 235
POP3        ``-ERR [AUTH]``, or a ``-ERR`` without a      (none: ``+OK`` answers any
            response code naming auth, password, login    command)
            or credentials
IMAP        tagged ``NO [AUTHENTICATIONFAILED]`` (or      tagged ``OK`` naming LOGIN,
            ``[AUTHORIZATIONFAILED]``), or one without    AUTHENTICATE or "logged in"
            a response code naming the same
Telnet      "Login incorrect", "Login failed",            (none: a shell prompt is any
            "Authentication failed", "Login invalid"      text)
MySQL       ERR 1045 (access denied), sequence 2 or 4     OK, sequence 2 or 4
PostgreSQL  ErrorResponse with SQLSTATE 28P01 or 28000    AuthenticationOk
SMB 1, 2    session setup: STATUS_LOGON_FAILURE,          session setup: STATUS_SUCCESS
            STATUS_WRONG_PASSWORD
Redis       ``-WRONGPASS``, ``-ERR invalid password``     ``+OK`` (to its AUTH)
SSH         (encrypted) the second and later answers of   (none)
            a connection that come 1-5 s after the
            client's try, small, of one size
==========  ============================================  ===============================

MQTT, MySQL, PostgreSQL and Redis have one login per connection: after its verdict
nothing more of the connection is read.

A login form answers a wrong password with an ordinary page (DVWA: "200 OK", "Username
and/or password incorrect"), so for HTTP the client's side is read too: a request whose
query or form body (in its first ``HTTP_READ`` bytes) has a password parameter (``password``,
``passwd``, ``pass``, ``pwd``) submits the credentials (that value with the user-name
parameter's, ``user``, ``username``, ``login``, ``email``, ``uname``, ``usr``). A guesser
submits a new pair each time (Hydra and Burp Intruder against DVWA, held out: 18 and 64
distinct pairs within 300 s); a poller that puts a fixed password in its URL submits one.

The protocol is taken from the connection's first payload (an MQTT CONNECT, an HTTP
request, a PostgreSQL startup message, an SMB request, a Redis AUTH or Telnet option
negotiation from the client; an SSH banner from either side; an HTTP status line, a
``220``, POP3 or IMAP greeting, a MySQL handshake or Telnet negotiation from the server),
not from the port; anything else (TLS included, and a PostgreSQL or MySQL connection once
it turns to TLS) is not read. Only the first ``LOGIN_SEGMENTS`` (16) segments with payload
of a connection are read (the server's, and an HTTP client's; an SSH client's segments
only give the time of its tries), and of a reply only its first bytes (``Packet.head``).

``LoginTracker`` keeps, per (client, server, server port), the refusals and acceptances of
the last ``LOGIN_WINDOW_US`` (at most ``LOGIN_DEPTH``) and the credentials submitted in it
(as many), and gives the flow whose reply or request it is two counts: the client's net
refused logins there (its refusals less its acceptances in the window, counted from its first
refusal or try; none below 1) and the distinct credentials it submitted there. So a client
that is asked for credentials and then gives the right ones (HTTP digest or NTLM: a 401
then a 200 on every connection; a browser's basic-auth prompt) stays at zero or one, a
guesser climbs by one per wrong password, and its successful guess carries the count of
the refusals before it.
``flow.logins`` holds, per such reply or request of the flow, and at its first packet for a
TCP connection, ``(capture time µs, net refused, credentials tried)`` where either count is
above zero, so a guesser's next connection carries the count before its server answers it
(and a form guesser's page fetches between its tries carry it too); the agent's login rule
(``edge_nids.agent.escalate.LoginRule``) reads it. It is not a model input.

Memory is bounded: at most ``max_keys`` (client, service) keys, least recently used dropped
first, each with at most ``LOGIN_DEPTH`` events of each kind (distinct credentials, kept as
hashes: the count saturates there),
so a flood of spoofed sources costs at most ``max_keys`` keys.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from typing import Any

__all__ = [
    "APP_NAMES",
    "HTTP_READ",
    "LOGIN_DEPTH",
    "LOGIN_SEGMENTS",
    "LOGIN_WINDOW_US",
    "LoginTracker",
    "client_app",
    "http_credentials",
    "login_reply",
    "server_app",
]

#: How far back refused logins are counted, µs.
LOGIN_WINDOW_US = 300_000_000
#: Refusals and acceptances kept per (client, service) key.
LOGIN_DEPTH = 64
#: Segments with payload read per connection (the server's, and an HTTP client's).
LOGIN_SEGMENTS = 16
#: Bytes of an HTTP client's segment searched for credentials.
HTTP_READ = 1024
#: (client, service) keys tracked at once.
LOGIN_MAX_KEYS = 1024
#: An SSH server's answer that came this long after its client's last segment, µs, is a
#: delayed one (a refused password: OpenSSH with PAM waits about 2 s before saying so).
SSH_DELAY_US = (1_000_000, 5_000_000)
#: The largest SSH server segment (payload bytes) read as a refusal (USERAUTH_FAILURE, encrypted).
SSH_FAILURE_BYTES = 128

#: ``flow.app`` codes: not decided yet, nothing this module reads, or the protocol (its
#: negative once the connection's ``LOGIN_SEGMENTS`` were read).
UNDECIDED, NONE, MQTT, HTTP, GREETING, POP3, IMAP, TELNET, MYSQL, PGSQL, SMB, REDIS, SSH = (
    0, -1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
)  # fmt: skip
#: The protocol names of ``flow.app`` codes, as alerts give them.
APP_NAMES = {
    MQTT: "mqtt",
    HTTP: "http",
    GREETING: "ftp/smtp",
    POP3: "pop3",
    IMAP: "imap",
    TELNET: "telnet",
    MYSQL: "mysql",
    PGSQL: "postgresql",
    SMB: "smb",
    REDIS: "redis",
    SSH: "ssh",
}
#: Protocols with one login per connection: nothing more is read after its verdict.
_ONE_LOGIN = frozenset((MQTT, MYSQL, PGSQL, REDIS))

REFUSED, ACCEPTED = 1, -1

_MQTT_REFUSED = frozenset((4, 5, 0x86, 0x87, 0x8C))
_HTTP_METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ")
_REPLY = {b"530": REFUSED, b"535": REFUSED, b"230": ACCEPTED, b"235": ACCEPTED}
# a parameter of a query string or form body, with the byte before it ("?", "&", or the
# newline that ends the headers or starts the body)
_PASSWORD = re.compile(rb"[?&\n](?:password|passwd|pass|pwd)=([^&\s]*)", re.IGNORECASE)
_USER = re.compile(rb"[?&\n](?:username|user|login|email|uname|usr)=([^&\s]*)", re.IGNORECASE)


def http_credentials(buf: bytes, start: int = 0, end: int | None = None) -> tuple[bytes, bytes] | None:
    """The (user name, password) that an HTTP client segment ``buf[start:end]`` submits in its
    request line's query or its form body (user name b"" when it has none), or None. Headers
    are not read (a cookie is no submission); a segment that is no request is read as a body.

    Searched in place, not copied: slicing and searching the first kilobyte of every request
    made the flow meter 28-32 % slower on the lab's busy and HTTP-flood captures."""
    if end is None:
        end = len(buf)
    if buf.startswith(_HTTP_METHODS, start):
        eol = buf.find(b"\r\n", start, end)
        line_end = eol if eol >= 0 else end
        q = buf.find(b"?", start, line_end)
        if q >= 0:
            got = _pair(buf, q, line_end)
            if got is not None:
                return got
        body = buf.find(b"\r\n\r\n", line_end, end) if eol >= 0 else -1
        if body < 0 or body + 4 >= end:
            return None
        return _pair(buf, body + 3, end)
    if buf.find(b"=", start, end) < 0:
        return None
    return _pair(b"\n" + buf[start:end], 0, end - start + 1)  # a body of its own (rare)


def _pair(buf: bytes, pos: int, end: int) -> tuple[bytes, bytes] | None:
    pw = _PASSWORD.search(buf, pos, end)
    if pw is None:
        return None
    user = _USER.search(buf, pos, end)
    return (user.group(1) if user else b"", pw.group(1))


def client_app(head: bytes) -> int:
    """The protocol of a connection from its client's first payload: an MQTT CONNECT (protocol
    name ``MQTT`` or ``MQIsdp`` after a 1-4 byte remaining length), an HTTP/1 request, Telnet
    option negotiation, a PostgreSQL startup message (protocol 3.0), an SMB request over
    NetBIOS session framing, a Redis AUTH command, or NONE."""
    if head[:1] == b"\x10" and (b"\x00\x04MQTT" in head[2:10] or b"\x00\x06MQIsdp" in head[2:12]):
        return MQTT
    if head.startswith(_HTTP_METHODS):
        return HTTP
    if head.startswith(b"SSH-"):
        return SSH
    if len(head) >= 8:
        if head[0] == 0xFF and 0xFB <= head[1] <= 0xFE:
            return TELNET
        if head[4:8] == b"\x00\x03\x00\x00" and head[:2] == b"\x00\x00":
            return PGSQL
        if head[0] == 0 and head[4:8] in (b"\xfeSMB", b"\xffSMB"):
            return SMB
        if head[:1] == b"*" and b"AUTH" in head.upper():
            return REDIS
    return NONE


def server_app(head: bytes) -> int:
    """The protocol of a connection from its server's first payload when the client sent none
    first: an HTTP status line, a ``220`` greeting (FTP, SMTP), a POP3 or IMAP greeting, Telnet
    option negotiation, a MySQL handshake (protocol 10), or NONE."""
    if head.startswith(b"HTTP/1."):
        return HTTP
    if head.startswith(b"SSH-"):
        return SSH
    if head[:3] == b"220" and head[3:4] in (b" ", b"-"):
        return GREETING
    if head.startswith(b"+OK"):
        return POP3
    if head.startswith((b"* OK", b"* PREAUTH")):
        return IMAP
    if len(head) >= 5:
        if head[0] == 0xFF and 0xFB <= head[1] <= 0xFE:
            return TELNET
        if head[3] == 0 and head[4] == 0x0A and head[2] == 0 and head[1] < 4:  # length < 1 KiB
            return MYSQL
    return NONE


# words of a refusal in a POP3 "-ERR", an IMAP tagged "NO" or a Telnet server's text
_REFUSAL_WORDS = (b"auth", b"password", b"login", b"credential")
_TELNET_REFUSALS = (b"login incorrect", b"login failed", b"authentication failed", b"login invalid")
_IMAP_ACCEPTED = (b"login", b"authenticate", b"logged in")
_IMAP_REFUSED = (b"[authenticationfailed]", b"[authorizationfailed]")
_SMB_REFUSED = (b"\x6d\x00\x00\xc0", b"\x6a\x00\x00\xc0")  # STATUS_LOGON_FAILURE, _WRONG_PASSWORD
_REDIS_REFUSED = (b"-WRONGPASS", b"-ERR invalid password", b"-ERR invalid username-password")


def login_reply(app: int, buf: bytes, d: int = 0, e: int | None = None) -> int:
    """REFUSED, ACCEPTED or 0: what one server segment ``buf[d:e]`` of protocol ``app`` says
    of a login (read in place; at most its first 256 bytes for text)."""
    if e is None:
        e = len(buf)
    n = e - d
    if app == MQTT:
        # CONNACK: type 2, remaining length (< 128 here), acknowledge flags, return/reason code
        if n >= 4 and buf[d] == 0x20 and 2 <= buf[d + 1] < 128 and buf[d + 2] <= 1:
            rc = buf[d + 3]
            if rc == 0:
                return ACCEPTED
            if rc in _MQTT_REFUSED:
                return REFUSED
        return 0
    if app == HTTP:
        if n >= 12 and buf.startswith(b"HTTP/1.", d):
            code = buf[d + 9 : d + 12]
            if code == b"401" or code == b"407":
                return REFUSED
            if code[:1] == b"2":
                return ACCEPTED
        return 0
    if app == GREETING:
        if n >= 4 and buf[d + 3] in b" -":
            return _REPLY.get(buf[d : d + 3], 0)
        return 0
    if app == POP3:
        if buf.startswith(b"-ERR", d):
            # an RFC 3206 response code decides: [AUTH] is a refusal, [IN-USE], [SYS/TEMP] or
            # [LOGIN-DELAY] are not; without one, the words of the text
            text = buf[d + 4 : min(e, d + 256)].lstrip().lower()
            if text.startswith(b"["):
                return REFUSED if text.startswith(b"[auth]") else 0
            return REFUSED if _has(text, _REFUSAL_WORDS) else 0
        return 0
    if app == IMAP:
        if buf.startswith(b"* ", d):  # untagged
            return 0
        line = buf[d : min(e, d + 256)]
        word = line.find(b" ", 0, 24)  # after the tag
        if word < 0:
            return 0
        if line.startswith(b" NO ", word):
            # an RFC 5530 response code decides ([AUTHENTICATIONFAILED], [AUTHORIZATIONFAILED]
            # are refusals; [INUSE], [UNAVAILABLE], [TRYCREATE]... not); without one, the words
            text = line[word + 4 :].lstrip().lower()
            if text.startswith(b"["):
                return REFUSED if text.startswith(_IMAP_REFUSED) else 0
            return REFUSED if _has(text, _REFUSAL_WORDS) else 0
        if line.startswith(b" OK ", word):
            return ACCEPTED if _has(line.lower(), _IMAP_ACCEPTED) else 0
        return 0
    if app == TELNET:
        return REFUSED if _has(buf[d : min(e, d + 256)].lower(), _TELNET_REFUSALS) else 0
    if app == MYSQL:
        # a packet: 3-byte length, sequence number 2 (or 4 after an auth switch), then OK
        # (0x00) or ERR (0xFF) with error 1045, "access denied"
        if n >= 7 and buf[d + 2] == 0 and buf[d + 1] < 4 and buf[d + 3] in (2, 4):
            kind = buf[d + 4]
            if kind == 0x00:
                return ACCEPTED
            if kind == 0xFF and buf[d + 5 : d + 7] == b"\x15\x04":
                return REFUSED
        return 0
    if app == PGSQL:
        # AuthenticationOk, or an ErrorResponse with SQLSTATE 28P01 or 28000
        if buf.startswith(b"R\x00\x00\x00\x08\x00\x00\x00\x00", d):
            return ACCEPTED
        if n > 0 and buf[d] == 0x45:  # "E"
            end = min(e, d + 256)
            if buf.find(b"C28P01\x00", d, end) >= 0 or buf.find(b"C28000\x00", d, end) >= 0:
                return REFUSED
        return 0
    if app == SMB:
        # the session setup response's NT status (SMB2: command 1; SMB1: 0x73)
        if n >= 18 and buf.startswith(b"\xfeSMB", d + 4):
            if buf[d + 16 : d + 18] != b"\x01\x00":
                return 0
            status = buf[d + 12 : d + 16]
        elif n >= 13 and buf.startswith(b"\xffSMB", d + 4):
            if buf[d + 8] != 0x73:
                return 0
            status = buf[d + 9 : d + 13]
        else:
            return 0
        if status == b"\x00\x00\x00\x00":
            return ACCEPTED
        return REFUSED if status in _SMB_REFUSED else 0
    if app == REDIS:
        if buf.startswith(_REDIS_REFUSED, d):
            return REFUSED
        return ACCEPTED if buf.startswith(b"+OK", d) else 0
    return 0


def _has(text: bytes, words: tuple[bytes, ...]) -> bool:
    return any(w in text for w in words)


class LoginTracker:
    """Refused and accepted logins per (client, server, server port); ``segment`` reads one
    TCP segment of a flow and records what its server said."""

    def __init__(self, window_us: int = LOGIN_WINDOW_US, max_keys: int = LOGIN_MAX_KEYS) -> None:
        self.window_us = window_us
        self.max_keys = max_keys
        #: (client, server, port) -> [its (time µs, +1 refused / -1 accepted) events in the
        #: window, oldest first; their sum; its (time µs, hash of the credentials) submissions]
        #: (read-only outside: the flow table asks whether it is empty)
        self.keys: OrderedDict[tuple[bytes, bytes, int], list[Any]] = OrderedDict()
        #: refusals, acceptances and credential submissions recorded
        self.refused = 0
        self.accepted = 0
        self.submitted = 0

    def __len__(self) -> int:
        return len(self.keys)

    def segment(self, flow: Any, pkt: Any, fwd: bool) -> None:
        """One TCP segment with payload (``pkt``: its ``head``, frame and bounds; ``fwd``: from
        the client) of ``flow``. Decides the flow's protocol at its first payload, then reads
        its server's login replies and an HTTP client's credentials (``LOGIN_SEGMENTS``)."""
        app = flow.app
        if app < 0:
            return
        if app == UNDECIDED:
            app = flow.app = client_app(pkt.head) if fwd else server_app(pkt.head)
            if app == SSH:
                flow.ssh = [pkt.ts_us if fwd else 0, 0]
            if app != HTTP:  # a greeting or a request is no verdict; NONE: nothing to read
                return
        elif app == SSH:
            self._ssh(flow, pkt, fwd)
            return
        elif fwd and app != HTTP:
            return
        n = flow.replies = flow.replies + 1
        if n >= LOGIN_SEGMENTS:
            flow.app = -app  # this segment is the last one read
        frame, d = pkt.frame, pkt.data
        if fwd:
            cred = http_credentials(frame, d, min(pkt.data_end, d + HTTP_READ))
            if cred is not None:
                self._submitted(flow, cred, pkt.ts_us)
            return
        if app == HTTP and not frame.startswith(b"HTTP/1.", d):
            return  # a body segment: tested in place, most of an HTTP server's segments
        verdict = login_reply(app, frame, d, pkt.data_end)
        if verdict:
            self._record(flow, verdict, pkt.ts_us)
            if app in _ONE_LOGIN:
                flow.app = -app  # its one login is decided

    def _ssh(self, flow: Any, pkt: Any, fwd: bool) -> None:
        """One segment of an SSH connection. Encrypted, but a refused password has a shape: the
        server answers the client's try (its first segment after the client's) late
        (``SSH_DELAY_US``) with a small segment, the same size each time (USERAUTH_FAILURE),
        and the client tries again. From the second such answer of a connection on, each
        counts as a refusal; a first one does not (a slow key exchange, one mistyped
        password, a command that took a second), nor does an answer of another size, an
        immediate one (a public key offered and declined, an echoed keystroke) or a server
        segment that follows another (a command's exit status, end of data and close)."""
        st = flow.ssh
        if fwd:
            st[0] = pkt.ts_us
            return
        n = flow.replies = flow.replies + 1
        if n >= LOGIN_SEGMENTS:
            flow.app = -SSH  # this segment is the last one read
        size = pkt.data_end - pkt.data
        last = st[0]
        st[0] = 0  # only the first server segment after a client's is its answer
        if last and SSH_DELAY_US[0] <= pkt.ts_us - last <= SSH_DELAY_US[1] and size <= SSH_FAILURE_BYTES:
            if size == st[1]:
                self._record(flow, REFUSED, pkt.ts_us)
            st[1] = size

    def opened(self, flow: Any) -> None:
        """A new TCP connection: it carries its client's counts at that server port as they
        stand at its first packet (a guesser's next connection is one of the run before its
        server says anything, and a form guesser's page fetches in between are too)."""
        key = (flow.src, flow.dst, flow.dport)
        if key not in self.keys:
            return
        entry = self._entry(key, flow.first_us)
        net, tried = max(0, entry[1]), len(entry[2])
        if net or tried:
            flow.logins = ((flow.first_us, net, tried),)

    def _entry(self, key: tuple[bytes, bytes, int], ts_us: int) -> list[Any]:
        """The (client, server, port) entry of ``key``, its events older than the window dropped."""
        keys = self.keys
        entry = keys.get(key)
        if entry is None:
            if len(keys) >= self.max_keys:
                keys.popitem(last=False)
            entry = keys[key] = [deque(), 0, deque()]
            return entry
        keys.move_to_end(key)
        oldest = ts_us - self.window_us
        q, net, creds = entry
        while q and (q[0][0] < oldest or len(q) >= LOGIN_DEPTH):
            net -= q.popleft()[1]
        entry[1] = net
        while creds and (creds[0][0] < oldest or len(creds) >= LOGIN_DEPTH):
            creds.popleft()
        return entry

    def _submitted(self, flow: Any, cred: tuple[bytes, bytes], ts_us: int) -> None:
        entry = self._entry((flow.src, flow.dst, flow.dport), ts_us)
        creds = entry[2]
        h = hash(cred)
        for i, (_, old) in enumerate(creds):
            if old == h:  # tried before: it moves to now, and the ring holds distinct pairs
                del creds[i]
                break
        creds.append((ts_us, h))
        self.submitted += 1
        tried = len(creds)
        flow.logins = (*flow.logins, (ts_us, max(0, entry[1]), tried))

    def _record(self, flow: Any, verdict: int, ts_us: int) -> None:
        # a running sum per key, not a recount of its events: recounting (up to 64 events per
        # reply) made the flow table 32 % slower on mqttset_bruteforce (a refusal per
        # connection), the running sum 20 %
        key = (flow.src, flow.dst, flow.dport)
        if verdict == ACCEPTED and key not in self.keys:
            # nothing to offset (no refusal or try in the window): every HTTP 200 would
            # otherwise make a key, and the flow table 10-20 % slower on the lab's web traffic
            self.accepted += 1
            return
        entry = self._entry(key, ts_us)
        net = entry[1]
        entry[0].append((ts_us, verdict))
        if verdict == REFUSED:
            self.refused += 1
            net += 1
            count = net
        else:
            self.accepted += 1
            count = net  # the count before it: a successful guess carries the refusals
            net -= 1
        entry[1] = net
        tried = len(entry[2])
        if count > 0 or tried:
            flow.logins = (*flow.logins, (ts_us, max(0, count), tried))
