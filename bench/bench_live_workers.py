"""Live capture with capture workers: the highest `tcpreplay --pps` rate without a kernel drop.

Creates a veth pair (root; removed at exit), runs `edge-nids run --iface` on one end with
``--workers 1, 2 and N``, replays a capture into the other end with `tcpreplay --pps R`,
stops the agent with SIGTERM and reads its final stats (kernel drops) and flow events.
For each worker count it searches R (bisection between --min-pps and --max-pps, a few
steps) for the highest rate with 0 kernel drops, and prints a markdown table: the
rate, tcpreplay's achieved rate, flows written / flows in the capture at that rate,
and the drops at the next rate tried above it.

Usage: ``sudo python bench/bench_live_workers.py [--workers 1,2,3] [--steps 5] [PCAP]``
(default capture: the lab-shaped SYN flood of make_bench_captures.py, 180,000 packets,
60,000 flows).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _veth(tag: str) -> tuple[str, str]:
    tx, cap = f"ebt{tag}", f"ebc{tag}"
    _ip("link", "add", tx, "type", "veth", "peer", "name", cap)
    for i in (tx, cap):
        v6 = Path(f"/proc/sys/net/ipv6/conf/{i}/disable_ipv6")
        if v6.exists():
            v6.write_text("1")
        _ip("link", "set", i, "up")
    return tx, cap


def _wait_status(path: Path, want: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    """Wait for a STATUS/READY line on our stand-in notify socket file."""
    import socket

    end = time.monotonic() + timeout
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    try:
        while time.monotonic() < end:
            try:
                if want in sock.recv(4096).decode():
                    return
            except TimeoutError:
                if proc.poll() is not None:
                    raise RuntimeError(f"agent exited with {proc.returncode}") from None
        raise RuntimeError(f"no {want!r} from the agent within {timeout} s")
    finally:
        sock.close()


def trial(pcap: Path, tx: str, cap: str, workers: int, pps: int, model: list[str]) -> dict[str, float]:
    """One run: agent on ``cap`` with ``workers``, ``pcap`` replayed at ``pps``; its results."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        alerts, flows, sock = tmp / "alerts.json", tmp / "flows.json", tmp / "notify.sock"
        cmd = [sys.executable, "-m", "edge_nids.cli", "run", "--iface", cap, "--workers", str(workers)]
        cmd += [*model, "--alerts", str(alerts), "--flows", str(flows)]
        cmd += ["--stats-eve", "--stats-interval", "0"]
        agent = subprocess.Popen(cmd, env=dict(os.environ, NOTIFY_SOCKET=str(sock)), stderr=subprocess.PIPE)
        try:
            want = f"with {workers} workers" if workers > 1 else f"capturing on {cap}"
            _wait_status(sock, want, agent)
            rep = subprocess.run(
                ["tcpreplay", "-q", "-i", tx, f"--pps={pps}", str(pcap)], capture_output=True, text=True
            )
            m = re.search(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps", rep.stdout + rep.stderr)
            time.sleep(2.0)  # let the agent read what is queued
            agent.send_signal(signal.SIGTERM)
            agent.communicate(timeout=300)
        finally:
            if agent.poll() is None:
                agent.kill()
        from edge_nids.agent.records import stats_counters

        lines = [json.loads(x) for x in alerts.read_text().splitlines()]
        st = stats_counters([x for x in lines if x["event_type"] == "stats"][-1])
        n_flows = sum(1 for _ in flows.open()) if flows.exists() else 0
        return {
            "drops": st["kernel_drops"],
            "packets": st["packets"],
            "flows": n_flows,
            "achieved": float(m.group(1)) if m else float("nan"),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap", nargs="?", type=Path)
    ap.add_argument("--workers", default=f"1,2,{max(2, (os.cpu_count() or 2) - 1)}")
    ap.add_argument("--min-pps", type=int, default=10_000)
    ap.add_argument("--max-pps", type=int, default=300_000)
    ap.add_argument("--steps", type=int, default=5, help="bisection steps per worker count")
    ap.add_argument("--model", help="model bundle (default: the shipped one)")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (veth pair, raw capture)", file=sys.stderr)
        return 2
    pcap = a.pcap
    if pcap is None:
        sys.path.insert(0, str(REPO / "bench"))
        from make_bench_captures import syn_flood_answered, write_pcap

        pcap = Path(tempfile.mkdtemp()) / "syn_flood_answered_180k.pcap"
        write_pcap(pcap, syn_flood_answered(180_000))
    from edge_nids.flows.pcap import open_capture

    with open_capture(pcap) as c:
        n_packets = sum(1 for _ in c)
    model = ["--model", a.model] if a.model else []
    tx, cap = _veth(str(os.getpid() % 100000))
    rows = []
    try:
        # flows in the capture: the agent's own count with no drops at a low rate
        base = trial(pcap, tx, cap, 1, a.min_pps, model)
        want_flows = base["flows"]
        for w in sorted({int(x) for x in a.workers.split(",")}):
            lo, hi = a.min_pps, a.max_pps  # lo: passes (tried first), hi: taken to fail
            r = trial(pcap, tx, cap, w, lo, model)
            best: dict[str, float] | None = {**r, "pps": lo} if r["drops"] == 0 else None
            above: dict[str, float] | None = None if best else {**r, "pps": lo}
            for _ in range(a.steps if best else 0):
                mid = (lo + hi) // 2
                r = trial(pcap, tx, cap, w, mid, model)
                if r["drops"] == 0:
                    best, lo = {**r, "pps": mid}, mid
                else:
                    above, hi = {**r, "pps": mid}, mid
                if hi - lo < 5_000:
                    break
            rows.append((w, best, above))
            print(f"workers {w}: best {best} above {above}", file=sys.stderr)
    finally:
        subprocess.run(["ip", "link", "del", tx], capture_output=True)
    print(f"capture {pcap.name}: {n_packets:,} packets, {want_flows:,} flows; {os.cpu_count()} CPUs")
    print()
    print(
        "| workers | highest pps with 0 drops | tcpreplay achieved pps | flows written "
        "| next rate tried: drops |"
    )
    print("|---:|---:|---:|---:|---:|")
    for w, best, above in rows:
        b = f"{best['pps']:,}" if best else "none"
        ach = f"{best['achieved']:,.0f}" if best else "-"
        fl = f"{int(best['flows']):,} / {want_flows:,}" if best else "-"
        ab = f"{int(above['pps']):,}: {int(above['drops']):,}" if above else "-"
        print(f"| {w} | {b} | {ach} | {fl} | {ab} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
