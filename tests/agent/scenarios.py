"""The agent's scenario captures, built deterministically by hand (written at test time).

Their golden outputs are regenerated with ``python -m tests.agent.make_golden``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .pcapgen import ACK, FIN, PSH, RST, SYN, ipv4_tcp, ipv4_udp, write_pcap

__all__ = ["SCENARIOS", "write_scenarios"]

T0 = 1_700_000_000_000_000
Frames = list[tuple[int, bytes]]


def _http_conn(t: int, client: str, server: str, cport: int, body: int = 600, gap_us: int = 400) -> Frames:
    req = b"GET /index.html HTTP/1.1\r\nHost: www\r\n\r\n"
    seq = [
        (client, server, cport, 80, SYN, b""),
        (server, client, 80, cport, SYN | ACK, b""),
        (client, server, cport, 80, ACK, b""),
        (client, server, cport, 80, PSH | ACK, req),
        (server, client, 80, cport, ACK, b""),
        (server, client, 80, cport, PSH | ACK, b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * body),
        (client, server, cport, 80, ACK, b""),
        (client, server, cport, 80, FIN | ACK, b""),
        (server, client, 80, cport, FIN | ACK, b""),
        (client, server, cport, 80, ACK, b""),
    ]
    return [(t + i * gap_us, ipv4_tcp(a, b, sp, dp, fl, pl)) for i, (a, b, sp, dp, fl, pl) in enumerate(seq)]


def benign_http() -> Frames:
    """Eight ordinary HTTP connections from two clients, a second apart."""
    out: Frames = []
    for i in range(8):
        out += _http_conn(T0 + i * 1_000_000, f"192.0.2.{10 + i % 2}", "198.51.100.80", 41000 + i)
    return out


def port_scan() -> Frames:
    """A SYN scan of 150 ports of one host; closed ports answer RST-ACK."""
    out: Frames = []
    for i in range(150):
        t = T0 + i * 2_000
        port = 1 + i
        # as nmap -sS sends them: window 1024; the closed port's RST-ACK has window 0
        out.append((t, ipv4_tcp("203.0.113.66", "198.51.100.80", 55555, port, SYN, seq=7, window=1024)))
        out.append(
            (t + 60, ipv4_tcp("198.51.100.80", "203.0.113.66", port, 55555, RST | ACK, ack=8, window=0))
        )
    return out


def udp_flood() -> Frames:
    """One UDP flow, 2,000 datagrams a second for 4 s (a flood inside a single long flow)."""
    return [
        (T0 + i * 500, ipv4_udp("203.0.113.9", "198.51.100.53", 40000, 53, b"q" * 48)) for i in range(8000)
    ]


def http_dos() -> Frames:
    """80 short HTTP connections from one client in 0.8 s, each opened and torn down fast."""
    out: Frames = []
    for i in range(80):
        out += _http_conn(T0 + i * 10_000, "203.0.113.77", "198.51.100.80", 20000 + i, body=20, gap_us=50)
    return out


def slow_scan() -> Frames:
    """A slow scan of one host, a probe every 15 s: SYNs to 21, 22, 23, 25, 53 and 80 (each
    refused with RST-ACK), then nmap's FIN (110), NULL (111) and Xmas (135) probes, also
    refused; meanwhile a client makes three HTTP connections to the same host."""
    out: Frames = []
    scanner, host = "203.0.113.70", "198.51.100.80"
    probes = [(21, SYN), (22, SYN), (23, SYN), (25, SYN), (53, SYN), (80, SYN), (110, FIN), (111, 0)]
    probes.append((135, FIN | PSH | 0x20))  # Xmas: FIN, PSH, URG
    for i, (port, flags) in enumerate(probes):
        t = T0 + i * 15_000_000
        out.append((t, ipv4_tcp(scanner, host, 40100 + i, port, flags, seq=5000 + i)))
        out.append((t + 300, ipv4_tcp(host, scanner, port, 40100 + i, RST | ACK, ack=5001 + i, window=0)))
    for i in range(3):
        out += _http_conn(T0 + 20_000_000 + i * 40_000_000, "192.0.2.10", host, 42000 + i)
    return out


SCENARIOS: dict[str, Callable[[], Frames]] = {
    "benign_http": benign_http,
    "port_scan": port_scan,
    "udp_flood": udp_flood,
    "http_dos": http_dos,
    "slow_scan": slow_scan,
}


def write_scenarios(out_dir: Path) -> list[Path]:
    """Write every scenario as ``<name>.pcap`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fn in SCENARIOS.items():
        path = out_dir / f"{name}.pcap"
        write_pcap(path, sorted(fn(), key=lambda f: f[0]))
        paths.append(path)
    return paths
