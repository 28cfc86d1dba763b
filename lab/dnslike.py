"""A small DNS-like UDP responder and client for the lab's benign traffic.

Speaks real DNS wire format (one question, A records) so the flows look like the
DNS traffic in public data sets: the server answers names under ``lab.test`` with
an A record from 192.0.2.0/24 and anything else with NXDOMAIN; malformed
datagrams (e.g. a UDP flood's zero payload) are counted and dropped.

Standalone script (standard library only), run inside a lab namespace::

    python3 dnslike.py serve --bind 192.0.2.10 --port 53 --max-seconds 900
    python3 dnslike.py query --server 192.0.2.10 --count 100 --seed 3 --max-seconds 60
"""

from __future__ import annotations

import argparse
import logging
import random
import socket
import struct
import sys
import time
from collections.abc import Sequence

__all__ = ["build_query", "build_response", "main", "parse_question"]

log = logging.getLogger("lab.dnslike")

_WORDS = ("www", "mail", "api", "cdn", "files", "git", "wiki", "vpn", "ntp", "db", "cam", "printer", "nas")


def build_query(qid: int, name: str, qtype: int = 1) -> bytes:
    """A standard recursive query for ``name`` (record type ``qtype``, class IN)."""
    labels = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.strip(".").split("."))
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def parse_question(msg: bytes) -> tuple[int, str, int, int] | None:
    """``(id, name, qtype, question_end_offset)`` of a query, or None when malformed."""
    if len(msg) < 17:
        return None
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    if flags & 0x8000 or qd != 1:
        return None
    off, parts = 12, []
    while off < len(msg):
        n = msg[off]
        off += 1
        if n == 0:
            break
        if n > 63 or off + n > len(msg):
            return None
        try:
            parts.append(msg[off : off + n].decode("ascii"))
        except UnicodeDecodeError:
            return None
        off += n
    else:
        return None
    if off + 4 > len(msg) or not parts:
        return None
    qtype = struct.unpack("!H", msg[off : off + 2])[0]
    return qid, ".".join(parts), qtype, off + 4


def build_response(msg: bytes) -> bytes | None:
    """The answer to query ``msg``, or None when it is not a well-formed query."""
    q = parse_question(msg)
    if q is None:
        return None
    qid, name, qtype, end = q
    question = msg[12:end]
    if not name.endswith("lab.test"):
        return struct.pack("!HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question
    if qtype != 1:
        return struct.pack("!HHHHHH", qid, 0x8180, 1, 0, 0, 0) + question
    host = 10 + sum(name.encode()) % 200
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, host])
    return struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + answer


def serve(bind: str, port: int, max_seconds: float) -> int:
    """Answer queries until ``max_seconds`` have passed; returns 0."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((bind, port))
    sock.settimeout(1.0)
    deadline = time.monotonic() + max_seconds
    answered = dropped = 0
    while time.monotonic() < deadline:
        try:
            msg, peer = sock.recvfrom(4096)
        except TimeoutError:
            continue
        reply = build_response(msg)
        if reply is None:
            dropped += 1
            continue
        sock.sendto(reply, peer)
        answered += 1
    log.info("answered %d queries, dropped %d malformed datagrams", answered, dropped)
    return 0


def query(
    server: str, port: int, count: int, seed: int, pause_max: float, max_seconds: float, bind: str
) -> int:
    """Send ``count`` queries with random pauses (≤ ``pause_max`` s); each waits ≤ 1 s for its answer."""
    rng = random.Random(seed)
    deadline = time.monotonic() + max_seconds
    answered = 0
    sock: socket.socket | None = None
    for i in range(count):
        if time.monotonic() >= deadline:
            break
        # Like a stub resolver: usually a fresh source port per query, sometimes reused.
        if sock is None or rng.random() < 0.7:
            if sock is not None:
                sock.close()
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((bind, 0))
            sock.settimeout(1.0)
        if rng.random() < 0.85:
            name = f"{rng.choice(_WORDS)}{rng.randint(1, 9) if rng.random() < 0.3 else ''}.lab.test"
        else:
            name = f"{rng.choice(_WORDS)}.example.org"
        qtype = 1 if rng.random() < 0.8 else 28
        sock.sendto(build_query(rng.randrange(65536), name, qtype), (server, port))
        try:
            sock.recvfrom(4096)
            answered += 1
        except TimeoutError:
            pass
        if i + 1 < count:
            time.sleep(rng.expovariate(1.0) * pause_max / 3 if pause_max > 0 else 0)
    if sock is not None:
        sock.close()
    print(f"dnslike: {answered} answers", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the responder and the client."""
    parser = argparse.ArgumentParser(description="DNS-like UDP responder/client for the edge-nids lab")
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, default=53)
    s.add_argument("--max-seconds", type=float, default=3600.0)
    q = sub.add_parser("query")
    q.add_argument("--server", required=True)
    q.add_argument("--port", type=int, default=53)
    q.add_argument("--bind", default="0.0.0.0")
    q.add_argument("--count", type=int, default=50)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument(
        "--pause-max", type=float, default=1.0, help="scale of the random pause between queries, s"
    )
    q.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.mode == "serve":
        return serve(args.bind, args.port, args.max_seconds)
    return query(args.server, args.port, args.count, args.seed, args.pause_max, args.max_seconds, args.bind)


if __name__ == "__main__":
    sys.exit(main())
