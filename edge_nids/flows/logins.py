"""Refused logins: the replies a server gives a failed password guess, counted per client and service.

A password guesser against an MQTT broker, an FTP server or HTTP basic auth is a run of
short connections that each look like an ordinary login, and a slow one (``mqttset_bruteforce``:
one try every 1.5 s over 32 minutes) has the same flow shape and context as a sensor that
reconnects for every reading: the model flagged none of its 1,271 flows, nor did the random
forest (docs/detection.md). What tells them apart is in the server's answer, which these
protocols give in clear at a fixed place:

=========  ============================================  ===============================
protocol   refused                                       accepted
=========  ============================================  ===============================
MQTT       CONNACK return code 4, 5 (3.1.1) or reason    CONNACK 0
           0x86, 0x87, 0x8C (5.0)
HTTP/1.x   status 401, 407                               status 2xx
FTP, SMTP  reply 530, 535 (after a ``220`` greeting)     reply 230, 235
=========  ============================================  ===============================

The protocol is taken from the connection's first payload (an MQTT CONNECT or an HTTP
request from the client, an HTTP status line or a ``220`` greeting from the server), not from
the port; anything else (TLS included) is not looked at again. Only the first
``LOGIN_REPLIES`` (8) server segments of a connection with payload are looked at, and only
their first bytes (``Packet.head``), so a bulk transfer costs one test per segment.

``LoginTracker`` keeps, per (client, server, server port), the refusals and acceptances of
the last ``LOGIN_WINDOW_US`` (at most ``LOGIN_DEPTH``), and gives the flow whose reply it
is the client's net count of refused logins there: its refusals less its acceptances in the
window (none when that is 0 or less). So a client that is asked for credentials and then
gives the right ones (HTTP digest or NTLM: a 401 then a 200 on every connection; a browser's
basic-auth prompt) stays at zero or one, a guesser climbs by one per wrong password, and
its successful guess carries the count of the refusals before it. ``flow.logins`` holds, per
such reply of the flow, ``(capture time µs, net count)`` where the count is above zero; the
agent's login rule (``edge_nids.agent.escalate.LoginRule``) reads it. It is not a model input.

Memory is bounded: at most ``max_keys`` (client, service) keys, least recently refused or
accepted dropped first, each with at most ``LOGIN_DEPTH`` events. Keys are made only on a
server's reply inside a connection, so spoofed sources cannot fill the table.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

__all__ = [
    "APP_NAMES",
    "LOGIN_DEPTH",
    "LOGIN_REPLIES",
    "LOGIN_WINDOW_US",
    "LoginTracker",
    "client_app",
    "login_reply",
    "server_app",
]

#: How far back refused logins are counted, µs.
LOGIN_WINDOW_US = 300_000_000
#: Refusals and acceptances kept per (client, service) key.
LOGIN_DEPTH = 64
#: Server segments with payload looked at per connection.
LOGIN_REPLIES = 8
#: (client, service) keys tracked at once.
LOGIN_MAX_KEYS = 1024

#: ``flow.app`` codes: not decided yet, nothing this module reads, or the protocol.
UNDECIDED, NONE, MQTT, HTTP, GREETING = 0, -1, 1, 2, 3
#: The protocol names of ``flow.app`` codes, as alerts give them.
APP_NAMES = {MQTT: "mqtt", HTTP: "http", GREETING: "ftp/smtp"}

REFUSED, ACCEPTED = 1, -1

_MQTT_REFUSED = frozenset((4, 5, 0x86, 0x87, 0x8C))
_HTTP_METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ")
_REPLY = {b"530": REFUSED, b"535": REFUSED, b"230": ACCEPTED, b"235": ACCEPTED}


def client_app(head: bytes) -> int:
    """The protocol of a connection from its client's first payload: an MQTT CONNECT (protocol
    name ``MQTT`` or ``MQIsdp`` after a 1-4 byte remaining length), an HTTP/1 request, or NONE."""
    if head[:1] == b"\x10" and (b"\x00\x04MQTT" in head[2:10] or b"\x00\x06MQIsdp" in head[2:12]):
        return MQTT
    if head.startswith(_HTTP_METHODS):
        return HTTP
    return NONE


def server_app(head: bytes) -> int:
    """The protocol of a connection from its server's first payload when the client sent none
    first: an HTTP status line, a ``220`` greeting (FTP, SMTP), or NONE."""
    if head.startswith(b"HTTP/1."):
        return HTTP
    if head[:3] == b"220" and head[3:4] in (b" ", b"-"):
        return GREETING
    return NONE


def login_reply(app: int, head: bytes) -> int:
    """REFUSED, ACCEPTED or 0: what one server segment of protocol ``app`` says of a login."""
    if app == MQTT:
        # CONNACK: type 2, remaining length (< 128 here), acknowledge flags, return/reason code
        if len(head) >= 4 and head[0] == 0x20 and 2 <= head[1] < 128 and head[2] <= 1:
            rc = head[3]
            if rc == 0:
                return ACCEPTED
            if rc in _MQTT_REFUSED:
                return REFUSED
        return 0
    if app == HTTP:
        if head.startswith(b"HTTP/1.") and len(head) >= 12:
            code = head[9:12]
            if code == b"401" or code == b"407":
                return REFUSED
            if head[9:10] == b"2":
                return ACCEPTED
        return 0
    if head[3:4] in (b" ", b"-"):
        return _REPLY.get(head[:3], 0)
    return 0


class LoginTracker:
    """Refused and accepted logins per (client, server, server port); ``segment`` reads one
    TCP segment of a flow and records what its server said."""

    def __init__(self, window_us: int = LOGIN_WINDOW_US, max_keys: int = LOGIN_MAX_KEYS) -> None:
        self.window_us = window_us
        self.max_keys = max_keys
        # (client, server, port) -> [its (time µs, +1 refused / -1 accepted) events in the window,
        # oldest first; their sum]
        self._keys: OrderedDict[tuple[bytes, bytes, int], list[Any]] = OrderedDict()
        #: refusals and acceptances recorded
        self.refused = 0
        self.accepted = 0

    def __len__(self) -> int:
        return len(self._keys)

    def segment(self, flow: Any, head: bytes, fwd: bool, ts_us: int) -> None:
        """One TCP segment with payload of ``flow`` (``head``: its first bytes; ``fwd``: from the
        client). Decides the flow's protocol at its first payload, then records its server's
        login replies (the first ``LOGIN_REPLIES`` segments)."""
        app = flow.app
        if app < 0:
            return
        if fwd:
            if app == UNDECIDED:
                flow.app = client_app(head)
            return
        if app == UNDECIDED:
            app = flow.app = server_app(head)
            if app != HTTP:  # a greeting is no verdict; NONE: nothing more to read
                return
        flow.replies += 1
        if flow.replies >= LOGIN_REPLIES:
            flow.app = NONE  # this segment is the last one looked at
        verdict = login_reply(app, head)
        if verdict:
            self._record(flow, verdict, ts_us)

    def _record(self, flow: Any, verdict: int, ts_us: int) -> None:
        # a running sum per key, not a recount of its events: recounting (up to 64 events per
        # reply) made the flow table 32 % slower on mqttset_bruteforce (a refusal per
        # connection), the running sum 20 %
        key = (flow.src, flow.dst, flow.dport)
        keys = self._keys
        entry = keys.get(key)
        if entry is None:
            if len(keys) >= self.max_keys:
                keys.popitem(last=False)
            entry = keys[key] = [deque(), 0]
        else:
            keys.move_to_end(key)
        q, net = entry
        oldest = ts_us - self.window_us
        while q and (q[0][0] < oldest or len(q) >= LOGIN_DEPTH):
            net -= q.popleft()[1]
        q.append((ts_us, verdict))
        if verdict == REFUSED:
            self.refused += 1
            net += 1
            count = net
        else:
            self.accepted += 1
            count = net  # the count before it: a successful guess carries the refusals
            net -= 1
        entry[1] = net
        if count > 0:
            flow.logins = (*flow.logins, (ts_us, count))
