"""Live capture on a veth: TPACKET_V3 ring vs recvmsg, per worker count, under `tcpreplay --pps`.

Creates a veth pair (root; removed at exit) and prints a markdown table:

* ``--capacity``: without the agent, how many frames of a burst (the capture's frames sent
  from a raw socket, flat out or at ``--burst-pps`` for 2 s, nothing reading) a
  ``--buffer-mb`` kernel buffer holds in each capture mode (for the ring, with each block
  retire timeout of ``--retire-ms``), bytes of buffer per frame held, and what reading
  them cost (µs/frame).
* ``--pps R``: one run per (capture mode, buffer, workers): `edge-nids run --iface` on
  one end, the capture replayed into the other with `tcpreplay --pps R [--loop N]`;
  packets captured and kernel drops (final stats, summed over workers), flows written to
  --flows, and when the agent caught up: the seconds from the end of the replay until
  its counters account for every packet sent (stats every 1 s, polled every 0.25 s), and
  the rate that makes (packets captured / (replay time + catch-up)): what it sustains.
* otherwise: per (capture mode, buffer, workers) the highest R with 0 kernel drops
  (bisection between --min-pps and --max-pps, a few steps; with ``--loop N`` over N
  replays in a row, a sustained rate rather than a burst), flows written at that rate,
  and the drops at the next rate tried above it.

Flows in the capture are counted by replaying it through `edge-nids run --pcap`.
Usage: ``sudo python bench/bench_live_workers.py [--workers 1,2] [--capture ring,recvmsg]
[--buffer-mb 8,16] [--pps 150000] [--loop 5] [--capacity] [--steps 5] [PCAP]`` (default
capture: the lab-shaped SYN flood of make_bench_captures.py, 180,000 packets, 60,000
flows). ``--capture default`` leaves ``capture.ring`` unset, to run another checkout of the
agent (``PYTHONPATH=../main``, from outside this one).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def _last_stats(alerts: Path) -> dict[str, Any] | None:
    from edge_nids.agent.records import stats_counters

    last = None
    if alerts.exists():
        for line in alerts.read_text().splitlines():
            if '"event_type":"stats"' in line.replace(" ", ""):
                try:
                    last = json.loads(line)
                except ValueError:
                    pass  # a line being written
    return stats_counters(last) if last else None


def trial(
    pcap: Path, tx: str, cap: str, run: dict[str, Any], pps: int, offered: int, loop: int = 1
) -> dict[str, float]:
    """One run: agent on ``cap`` (``run``: capture mode, buffer_mb, workers, model args), ``pcap``
    replayed ``loop`` times at ``pps`` (``offered`` packets in all); its results."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        alerts, flows, sock, cfg = (
            tmp / "alerts.json",
            tmp / "flows.json",
            tmp / "notify.sock",
            tmp / "c.yaml",
        )
        c: dict[str, Any] = {"buffer_mb": run["mb"]}
        if run["capture"] != "default":  # default: as the agent does by default (another checkout's)
            c["ring"] = run["capture"] == "ring"
        cfg.write_text(json.dumps({"capture": c}))
        w = run["workers"]
        cmd = [sys.executable, "-m", "edge_nids.cli", "run", "--iface", cap, "--workers", str(w)]
        cmd += [*run["model"], "--config", str(cfg), "--alerts", str(alerts), "--flows", str(flows)]
        cmd += ["--stats-eve", "--stats-interval", "1"]
        agent = subprocess.Popen(cmd, env=dict(os.environ, NOTIFY_SOCKET=str(sock)), stderr=subprocess.PIPE)
        try:
            _wait_status(sock, f"with {w} workers" if w > 1 else f"capturing on {cap}", agent)
            t0 = time.monotonic()
            rep = subprocess.run(
                ["tcpreplay", "-q", "-i", tx, f"--pps={pps}", f"--loop={loop}", str(pcap)],
                capture_output=True,
                text=True,
            )
            t_replay = time.monotonic()
            m = re.search(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps", rep.stdout + rep.stderr)
            caught_up = float("nan")
            while time.monotonic() - t_replay < 600:  # until the counters account for every packet
                st = _last_stats(alerts)
                if st and st["packets"] + st["kernel_drops"] >= offered:
                    caught_up = time.monotonic() - t_replay
                    break
                time.sleep(0.25)
            agent.send_signal(signal.SIGTERM)
            _, err = agent.communicate(timeout=300)
        finally:
            if agent.poll() is None:
                agent.kill()
        st = _last_stats(alerts)
        if st is None or agent.returncode != 0:
            raise RuntimeError(f"agent failed ({agent.returncode}): {err.decode()[-2000:]}")
        n_flows = sum(1 for _ in flows.open()) if flows.exists() else 0
        return {
            "drops": st["kernel_drops"],
            "packets": st["packets"],
            "flows": n_flows,
            "achieved": float(m.group(1)) if m else float("nan"),
            "caught_up_s": caught_up,
            "sustained": st["packets"] / (t_replay - t0 + caught_up),
        }


def replay_flows(pcap: Path, model: list[str]) -> int:
    """Flows in the capture: the agent's own count, replaying the file (nothing to drop)."""
    with tempfile.TemporaryDirectory() as d:
        flows = Path(d) / "flows.json"
        cmd = [sys.executable, "-m", "edge_nids.cli", "run", "--pcap", str(pcap), *model]
        cmd += ["--flows", str(flows), "--alerts", str(Path(d) / "alerts.json")]
        subprocess.run(cmd, check=True, capture_output=True)
        return sum(1 for _ in flows.open())


def capacity(
    frames: list[bytes], tx: str, cap: str, mode: str, mb: int, pps: int, retire_ms: int
) -> dict[str, float]:
    """Send ``frames`` (at ``pps``, 0: as fast as this process can, else 2 s of them) with nothing
    reading into a ``mb`` MiB buffer (a ring retiring blocks after ``retire_ms``); what it held."""
    from edge_nids.agent import capture

    if mode == "ring":
        capture.RETIRE_MS = retire_ms
    c = capture.LiveCapture(cap, buffer_bytes=mb << 20, ring=mode == "ring")
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.bind((tx, 0))
    sent = frames if not pps else frames[: 2 * pps]
    chunk = max(1, pps // 100)
    try:
        t0 = time.perf_counter()
        for i in range(0, len(sent), chunk):
            for f in sent[i : i + chunk]:
                s.send(f)
            if pps and (ahead := t0 + (i + chunk) / pps - time.perf_counter()) > 0:
                time.sleep(ahead)
        rate = len(sent) / (time.perf_counter() - t0)
        time.sleep(0.3)  # the ring's last block retires
        t = time.perf_counter()
        n = len(c.drain())
        dt = time.perf_counter() - t
        drops = c.read_drops()
    finally:
        s.close()
        c.close()
    per = (mb << 20) / max(n, 1)
    return {
        "sent": len(sent),
        "rate": rate,
        "held": n,
        "drops": drops,
        "bytes_per_frame": per,
        "us": dt / max(n, 1) * 1e6,
    }


def _capacity_table(a: argparse.Namespace, frames: list[bytes], tx: str, cap: str, head: str) -> None:
    from edge_nids.agent.capture import RETIRE_MS

    retire = [int(x) for x in a.retire_ms.split(",")] if a.retire_ms else [RETIRE_MS]
    settings = [
        (mode, int(mb), int(pps), ms)
        for mode in a.capture.split(",")
        for mb in a.buffer_mb.split(",")
        for pps in a.burst_pps.split(",")
        for ms in (retire if mode == "ring" else [0])
    ]
    print(f"{head}; nothing reading while the frames are sent\n")
    print(
        "| capture | buffer MiB | retire ms | sent at pps | frames sent | frames held | kernel drops "
        "| bytes per frame held | read µs/frame |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode, mb, pps, ms in settings:
        r = capacity(frames, tx, cap, mode, mb, pps, ms)
        print(
            f"| {mode} | {mb} | {ms or '-'} | {r['rate']:,.0f} | {r['sent']:,} | {r['held']:,} | "
            f"{r['drops']:,} | {r['bytes_per_frame']:,.0f} | {r['us']:.2f} |",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap", nargs="?", type=Path)
    ap.add_argument("--workers", default=f"1,2,{max(2, (os.cpu_count() or 2) - 1)}")
    ap.add_argument(
        "--capture",
        default="ring,recvmsg",
        help="capture modes: ring, recvmsg, default (capture.ring unset: to run another checkout "
        "of the agent, e.g. PYTHONPATH=../main)",
    )
    ap.add_argument("--buffer-mb", default="16", help="capture.buffer_mb values")
    ap.add_argument("--pps", type=int, help="one run per setting at this rate (no search)")
    ap.add_argument("--loop", type=int, default=1, help="tcpreplay --loop: a longer run at the same rate")
    ap.add_argument("--capacity", action="store_true", help="only the buffer capacity table")
    ap.add_argument("--burst-pps", default="0", help="with --capacity: send rates (0: flat out)")
    ap.add_argument(
        "--retire-ms", help="with --capacity: ring block retire timeouts, ms (default: the agent's)"
    )
    ap.add_argument("--min-pps", type=int, default=10_000)
    ap.add_argument("--max-pps", type=int, default=300_000)
    ap.add_argument("--steps", type=int, default=5, help="bisection steps per setting")
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
        frames = [rec[2] for rec in c]
    modes = a.capture.split(",")
    sizes = [int(x) for x in a.buffer_mb.split(",")]
    workers = sorted({int(x) for x in a.workers.split(",")})
    model = ["--model", a.model] if a.model else []
    tx, cap = _veth(str(os.getpid() % 100000))
    head = f"capture {pcap.name}: {len(frames):,} packets; {os.cpu_count()} CPUs"
    try:
        if a.capacity:
            _capacity_table(a, frames, tx, cap, head)
            return 0
        runs = [
            {"capture": m, "mb": mb, "workers": w, "model": model}
            for m in modes
            for mb in sizes
            for w in workers
        ]
        want_flows = replay_flows(pcap, model)
        offered = a.loop * len(frames)
        if a.pps:
            print(f"{head}, {want_flows:,} flows; tcpreplay --pps {a.pps:,} --loop {a.loop}\n")
            print(
                "| capture | buffer MiB | workers | achieved pps | packets sent | captured | kernel drops "
                "| flows written | caught up after s | sustained pkt/s |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for run in runs:
                r = trial(pcap, tx, cap, run, a.pps, offered, a.loop)
                print(
                    f"| {run['capture']} | {run['mb']} | {run['workers']} | {r['achieved']:,.0f} | "
                    f"{offered:,} | {int(r['packets']):,} | {int(r['drops']):,} | "
                    f"{int(r['flows']):,} / {want_flows * a.loop:,} | {r['caught_up_s']:.1f} | "
                    f"{r['sustained']:,.0f} |",
                    flush=True,
                )
            return 0
        rows = []
        for run in runs:
            lo, hi = a.min_pps, a.max_pps  # lo: passes (tried first), hi: taken to fail
            r = trial(pcap, tx, cap, run, lo, offered, a.loop)
            best: dict[str, float] | None = {**r, "pps": lo} if r["drops"] == 0 else None
            above: dict[str, float] | None = None if best else {**r, "pps": lo}
            for _ in range(a.steps if best else 0):
                mid = (lo + hi) // 2
                r = trial(pcap, tx, cap, run, mid, offered, a.loop)
                if r["drops"] == 0:
                    best, lo = {**r, "pps": mid}, mid
                else:
                    above, hi = {**r, "pps": mid}, mid
                if hi - lo < 5_000:
                    break
            rows.append((run, best, above))
            print(
                f"{run['capture']} {run['mb']} MiB x{run['workers']}: best {best} above {above}",
                file=sys.stderr,
            )
    finally:
        subprocess.run(["ip", "link", "del", tx], capture_output=True)
    print(f"{head}, {want_flows:,} flows; tcpreplay --loop {a.loop}\n")
    print(
        "| capture | buffer MiB | workers | highest pps with 0 drops | tcpreplay achieved pps "
        "| flows written | next rate tried: drops |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run, best, above in rows:
        b = f"{best['pps']:,}" if best else "none"
        ach = f"{best['achieved']:,.0f}" if best else "-"
        fl = f"{int(best['flows']):,} / {want_flows * a.loop:,}" if best else "-"
        ab = f"{int(above['pps']):,}: {int(above['drops']):,}" if above else "-"
        print(f"| {run['capture']} | {run['mb']} | {run['workers']} | {b} | {ach} | {fl} | {ab} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
