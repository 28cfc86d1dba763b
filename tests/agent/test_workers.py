"""``run --iface --workers N``: PACKET_FANOUT workers behave as one service.

Live on a veth pair (root; skips otherwise, removes what it creates): both directions
of every flow reach one worker, every flow is written once, alerts are aggregated once
for all workers, the final stats are the workers' sums, SIGHUP reaches the workers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_nids.agent.records import alert_count, flow_verdict, stats_counters
from edge_nids.agent.workers import default_workers, worker_count

from .helpers import NotifySocket, agent_cmd
from .pcapgen import ACK, RST, SYN, ipv4_tcp, ipv4_udp

SCANNER, TARGET = "203.0.113.66", "198.51.100.80"
CLIENT, RESOLVER = "192.0.2.10", "198.51.100.53"


def test_default_worker_count_leaves_a_cpu() -> None:
    assert [default_workers(n) for n in (1, 2, 3, 4, 8, 64)] == [1, 1, 2, 3, 4, 4]
    assert worker_count(3) == (3, "configured")
    n, how = worker_count(None)
    assert n == default_workers() and how.startswith("auto for ")


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a veth pair and open raw sockets")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2 (`ip`)")
    tag = os.getpid() % 100000
    tx_if, cap_if = f"ewt{tag}", f"ewc{tag}"
    try:
        cmd = ["ip", "link", "add", tx_if, "type", "veth", "peer", "name", cap_if]
        subprocess.run(cmd, check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a veth pair here: {exc.stderr.decode().strip()}")
    try:
        for i in (tx_if, cap_if):
            v6 = Path(f"/proc/sys/net/ipv6/conf/{i}/disable_ipv6")
            if v6.exists():
                v6.write_text("1")  # no neighbour discovery besides the traffic under test
            subprocess.run(["ip", "link", "set", i, "up"], check=True)
        yield tx_if, cap_if
    finally:
        subprocess.run(["ip", "link", "del", tx_if], capture_output=True)


def _scan(tx: socket.socket, ports: range) -> int:
    for port in ports:
        tx.send(ipv4_tcp(SCANNER, TARGET, 55555, port, SYN))
        tx.send(ipv4_tcp(TARGET, SCANNER, port, 55555, RST | ACK))
    return 2 * len(ports)


def _udp(tx: socket.socket, n: int) -> int:
    for i in range(n):
        tx.send(ipv4_udp(CLIENT, RESOLVER, 20000 + i, 53, b"q" * 40))
        tx.send(ipv4_udp(RESOLVER, CLIENT, 53, 20000 + i, b"r" * 80))
    return 2 * n


@pytest.mark.root
@pytest.mark.slow
def test_two_workers_are_one_service(veth: tuple[str, str], tmp_path: Path, agent_bundle: Path) -> None:
    tx_if, cap_if = veth
    alerts, flows, cfg = tmp_path / "alerts.json", tmp_path / "flows.json", tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"alerts": {"aggregate_window_s": 600}}))
    notify = NotifySocket(tmp_path / "notify.sock")
    agent = subprocess.Popen(
        agent_cmd(
            "run",
            "--iface",
            cap_if,
            "--workers",
            "2",
            "--config",
            str(cfg),
            "--model",
            str(agent_bundle),
            "--alerts",
            str(alerts),
            "--flows",
            str(flows),
            "--stats-eve",
            "--stats-interval",
            "0",
        ),
        env=dict(os.environ, NOTIFY_SOCKET=notify.path),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "READY=1" in notify.wait_for("READY=1", timeout=60, proc=agent)
        notify.wait_for(f"STATUS=capturing on {cap_if} with 2 workers", timeout=30, proc=agent)
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        tx.bind((tx_if, 0))
        sent = _scan(tx, range(1, 151)) + _udp(tx, 500)
        time.sleep(2.0)  # ended flows are classified within a tick or two (wall clock)
        # SIGHUP with the scanner suppressed: the service reloads, then the workers do
        cfg.write_text(json.dumps({"alerts": {"aggregate_window_s": 600, "suppress": [{"src": SCANNER}]}}))
        agent.send_signal(signal.SIGHUP)
        time.sleep(4.0)  # each worker loads the model again
        sent += _scan(tx, range(151, 301))
        tx.close()
        time.sleep(1.0)
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=120)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode == 0, err
    assert "capture workers: 2 (configured)" in err and err.count("final stats") == 1
    events = [json.loads(x) for x in flows.read_text().splitlines()]
    lines = [json.loads(x) for x in alerts.read_text().splitlines()]
    stats = stats_counters([x for x in lines if x["event_type"] == "stats"][-1])
    alert_lines = [x for x in lines if x["event_type"] == "alert"]
    # every flow once, with both directions: the kernel's hash sent both to one worker
    keys = [(e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"]) for e in events]
    assert len(keys) == len(set(keys)) == 300 + 500
    assert all(e["flow"]["pkts_toserver"] == 1 and e["flow"]["pkts_toclient"] == 1 for e in events)
    # one service's counters: the workers' sums
    assert stats["packets"] == stats["decoded"] == sent and stats["kernel_drops"] == 0
    assert stats["flows"] == len(events)
    # one aggregation for both workers: the first scan alert, then one summary at exit
    scan = [e for e in events if e["src_ip"] == SCANNER]
    flagged_before = [e for e in scan if e["dest_port"] <= 150 and flow_verdict(e) == "attack"]
    flagged_after = [e for e in scan if e["dest_port"] > 150 and flow_verdict(e) == "attack"]
    assert len(flagged_before) >= 140 and len(flagged_after) >= 140  # still classified after the reload
    scan_lines = [a for a in alert_lines if a["src_ip"] == SCANNER]
    assert len(scan_lines) == 2 and sum(alert_count(a) for a in scan_lines) == len(flagged_before)
    assert stats["suppressed"] == len(flagged_after)  # the reload reached the workers
    assert sum(alert_count(a) for a in alert_lines) == stats["alerts"] - stats["suppressed"]


def _fragments(src: str, dst: str, sport: int, dport: int, payload: bytes, ident: int) -> list[bytes]:
    """An IPv4/UDP datagram cut into two fragments (the second carries no UDP header)."""
    import struct

    from .pcapgen import _ETH, _csum

    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    cut = 800  # a multiple of 8
    out = []
    for off, part, more in ((0, udp[:cut], 0x2000), (cut, udp[cut:], 0)):
        hdr = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(part),
            ident,
            more | (off // 8),
            64,
            17,
            0,
            socket.inet_aton(src),
            socket.inet_aton(dst),
        )
        out.append(_ETH + hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:] + part)
    return out


def _worker_hwm_kib(agent_pid: int) -> list[int]:
    """Peak RSS (VmHWM, KiB) of the agent's worker processes."""
    out = []
    for task in Path(f"/proc/{agent_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                status = Path(f"/proc/{child}/status").read_text()
                out.append(int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1]))
    return out


@pytest.mark.root
@pytest.mark.slow
def test_workers_bound_memory_under_a_spoofed_flood_and_get_whole_datagrams(
    veth: tuple[str, str], tmp_path: Path, agent_bundle: Path
) -> None:
    """--max-flows bounds each worker's table (evictions summed, memory flat per worker),
    and IP fragments are reassembled before the fanout (FLAG_DEFRAG): each fragmented
    datagram, both ways, is one packet of one flow in one worker."""
    tx_if, cap_if = veth
    alerts, flows = tmp_path / "alerts.json", tmp_path / "flows.json"
    notify = NotifySocket(tmp_path / "notify.sock")
    agent = subprocess.Popen(
        agent_cmd(
            "run",
            "--iface",
            cap_if,
            "--workers",
            "2",
            "--max-flows",
            "500",
            "--model",
            str(agent_bundle),
            "--alerts",
            str(alerts),
            "--flows",
            str(flows),
            "--stats-eve",
            "--stats-interval",
            "0",
        ),
        env=dict(os.environ, NOTIFY_SOCKET=notify.path),
        stderr=subprocess.PIPE,
        text=True,
    )

    def flood(tx: socket.socket, lo: int, hi: int) -> int:
        for i in range(lo, hi):
            src = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
            tx.send(ipv4_tcp(src, "192.0.2.1", 1024 + i % 60000, 80, SYN))
            if i % 500 == 0:
                time.sleep(0.01)  # stay below what two workers on a small VM take without drops
        return hi - lo

    try:
        notify.wait_for(f"STATUS=capturing on {cap_if} with 2 workers", timeout=60, proc=agent)
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        tx.bind((tx_if, 0))
        for k in range(20):
            for frame in _fragments(CLIENT, RESOLVER, 30000 + k, 5353, b"a" * 1200, 100 + k):
                tx.send(frame)
            for frame in _fragments(RESOLVER, CLIENT, 5353, 30000 + k, b"b" * 1400, 200 + k):
                tx.send(frame)
        sent = flood(tx, 0, 1_000)
        time.sleep(2.0)
        small = _worker_hwm_kib(agent.pid)
        sent += flood(tx, 1_000, 30_000)
        time.sleep(3.0)
        big = _worker_hwm_kib(agent.pid)
        tx.close()
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=120)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode == 0, err
    lines = [json.loads(x) for x in alerts.read_text().splitlines()]
    stats = stats_counters([x for x in lines if x["event_type"] == "stats"][-1])
    events = [json.loads(x) for x in flows.read_text().splitlines()]
    assert stats["kernel_drops"] == 0, stats
    # 30x the flows, yet each worker's peak memory stays (nearly) flat
    assert len(small) == len(big) == 2
    assert all(b - s < 15 * 1024 for s, b in zip(small, big, strict=True)), (small, big)
    syn = [e for e in events if e["dest_ip"] == "192.0.2.1"]
    assert len(syn) == sent and stats["evicted"] >= sent - 2 * 500  # each worker holds at most 500
    frag = [e for e in events if {e["src_ip"], e["dest_ip"]} == {CLIENT, RESOLVER}]
    assert len(frag) == 20  # no flow split into fragments, none split across workers
    for e in frag:
        f = e["flow"]
        assert (f["pkts_toserver"], f["pkts_toclient"]) == (1, 1)
        assert (f["bytes_toserver"], f["bytes_toclient"]) == (1200, 1400)
    assert "fragment_non_first" not in stats["malformed"]
