"""Agent benchmark: end-to-end `edge-nids run --pcap` (capture to alert) against `extract` alone.

For each capture it runs both as subprocesses (same input, same machine, one after the
other) and prints a markdown table: packets/s over the whole process lifetime
(startup included), peak RSS, and the classifier latency the agent measured (µs per
micro-batch call, p50/p99, and per flow). A first line times the agent's startup on a
one-packet capture (import, model load, exit); "after startup" subtracts it.

Usage: ``python bench/bench_agent.py [--packets N] [--model BUNDLE] [--out DIR] [PCAP ...]``
(default: the synthetic captures of bench/make_bench_captures.py, plus the shared
slowloris capture when ../shared/datasets is there).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent


def stats_counters(ev: dict) -> dict:
    """The agent's counters of a stats event (Suricata's sections + ours)."""
    from edge_nids.agent.records import stats_counters as read

    return read(ev)


def _run(cmd: list[str]) -> tuple[int, float, int, str]:
    """(exit status, wall s, peak RSS KiB, stderr) of one child process."""
    with tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err.seek(0)
        return os.waitstatus_to_exitcode(status), wall, usage.ru_maxrss, err.read()


def _packets(pcap: Path) -> int:
    """Records in ``pcap``, counted in a child process: reading a large capture here would
    raise this process's peak RSS, which every child forked after it reports as its own
    (Linux keeps the pre-exec high-water mark in ru_maxrss)."""
    code = "import sys; from edge_nids.flows.pcap import open_capture\n"
    code += "with open_capture(sys.argv[1]) as cap: print(sum(1 for _ in cap))"
    out = subprocess.run([sys.executable, "-c", code, str(pcap)], check=True, capture_output=True, text=True)
    return int(out.stdout)


def _one_packet_pcap(src: Path, dst: Path) -> Path:
    from edge_nids.flows.pcap import open_capture

    with open_capture(src) as cap:
        ts, lt, frame, wire = next(iter(cap))
    import struct

    with open(dst, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, lt))
        f.write(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(frame), wire))
        f.write(frame)
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcaps", nargs="*", type=Path)
    ap.add_argument("--packets", type=int, default=100_000, help="packets per synthetic capture")
    ap.add_argument("--model", help="model bundle (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    pcaps = list(a.pcaps)
    if not pcaps:
        # in a child process: peak RSS (ru_maxrss) of a forked child includes its parent's
        # pages at fork time, so this process must stay small
        gen = [sys.executable, str(REPO / "bench" / "make_bench_captures.py"), str(a.out / "captures")]
        out = subprocess.run([*gen, "--packets", str(a.packets)], check=True, capture_output=True, text=True)
        pcaps = [Path(x) for x in out.stdout.split()]
        data = Path(os.environ.get("EDGE_NIDS_DATA", REPO.parent / "shared" / "datasets"))
        slow = data / "pcaps" / "gold_cicflowmeter4_slowloris" / "slowloris.pcap"
        if slow.exists():
            pcaps.append(slow)
    exe = [sys.executable, "-m", "edge_nids.cli"]
    model = ["--model", a.model] if a.model else []
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {os.uname().machine}")
    print()
    one = _one_packet_pcap(pcaps[0], a.out / "one_packet.pcap")
    rc, startup, rss, err = _run(
        [*exe, "run", "--pcap", str(one), *model, "--alerts", "-", "--stats-interval", "0"]
    )
    if rc != 0:
        print(err, file=sys.stderr)
        return 1
    print(
        f"agent startup (one-packet capture, model loaded, exit): {startup:.2f} s, peak RSS {rss >> 10} MiB"
    )
    print()
    print(
        "| capture | packets | extract pkt/s | extract RSS MiB | run pkt/s | run pkt/s after startup "
        "| run RSS MiB | flows | alert lines | classify µs/batch p50 / p99 | µs/flow p50 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for pcap in pcaps:
        n = _packets(pcap)
        rc1, w1, r1, e1 = _run([*exe, "extract", "-q", "-o", str(a.out / "extract.csv"), str(pcap)])
        alerts = a.out / "alerts.json"
        alerts.unlink(missing_ok=True)
        rc2, w2, r2, e2 = _run(
            [
                *exe,
                "run",
                "--pcap",
                str(pcap),
                *model,
                "--alerts",
                str(alerts),
                "--stats-interval",
                "0",
                "--stats-eve",
            ]
        )
        if rc1 or rc2:
            print(f"{pcap.name}: failed\n{e1}\n{e2}", file=sys.stderr)
            continue
        # only the last stats line is parsed: a spoofed flood writes ~100,000 alert lines, and
        # holding them here would raise the peak RSS of every later child (see _packets)
        last = None
        with alerts.open() as f:
            for line in f:
                if '"event_type":"stats"' in line:  # the agent writes compact JSON
                    last = line
        st = stats_counters(json.loads(last or "{}"))
        print(
            f"| {pcap.name} | {n:,} | {n / w1:,.0f} | {r1 / 1024:.0f} | {n / w2:,.0f} "
            f"| {n / max(w2 - startup, 1e-3):,.0f} | {r2 / 1024:.0f} "
            f"| {st['flows']:,} | {st['alert_lines']:,} | {st['classify_batch_us_p50']:.0f} / "
            f"{st['classify_batch_us_p99']:.0f} | {st['classify_flow_us_p50']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
