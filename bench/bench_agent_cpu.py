"""Agent CPU per packet: `edge-nids run --pcap --flows --alerts` against `extract --profile corrected`.

Both run as child processes on the same capture, one after the other; CPU time is the
child's user + system time (``wait4``), the best of ``--repeat`` runs. Each tool's
startup CPU (imports, model load, exit) is measured on a one-packet capture and
subtracted, so µs/packet is the work per packet; the ratio is run / extract (the
target of issue 13 is ≤ 1.5×). Prints a markdown table.

Usage: ``python bench/bench_agent_cpu.py [--packets N] [--repeat K] [--model BUNDLE]
[--lab RUN_DIR ...] [PCAP ...]`` (default: the SYN flood, port scan, HTTP flood and long
benign flows of bench/make_bench_captures.py, the lab's demo capture and a real benign
capture from ../shared/datasets when it is there). ``--lab RUN_DIR`` (a directory written
by ``lab.run_lab``, e.g. lab/out/test) adds its captures of at least ``--lab-min-packets``
packets, each with what its labels.csv says it holds (the labelled attack windows it
overlaps, else benign). The last column is the ratio of whole processes (start-up
included), which does not depend on the start-up measurement: on a capture of a few
thousand packets the work is a few hundredths of a second, as small as the start-up's
run-to-run spread.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_agent import _one_packet_pcap as one_packet_pcap  # the same start-up capture
from bench_agent import _packets as packets

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent
BENIGN = "pcaps/benign_public/ndpi_gnutella.pcap"  # the real benign capture with most flows


def cpu_s(cmd: list[str]) -> float:
    """User + system CPU seconds of one child process; raises if it fails."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.read()}")
        return usage.ru_utime + usage.ru_stime


#: --forked: import what the commands use, then run one `repeat` times, each in a process
#: forked from this one, and print each run's user + system CPU seconds.
_FORKED = r"""
import os, sys
import edge_nids.agent.pipeline, edge_nids.agent.service, edge_nids.cli, edge_nids.flows.extract
from edge_nids.agent.classifier import load_interpreter_class
load_interpreter_class()
repeat, remove, args = int(sys.argv[1]), [f for f in sys.argv[2].split(",") if f], sys.argv[3:]
for _ in range(repeat):
    for f in remove:
        if os.path.exists(f):
            os.unlink(f)
    pid = os.fork()
    if pid == 0:
        rc = edge_nids.cli.main(args)
        sys.stdout.flush()
        os._exit(rc)
    _, status, usage = os.wait4(pid, 0)
    if status:
        sys.exit(f"{args} failed: {status}")
    print(usage.ru_utime + usage.ru_stime)
"""


def best_cpu(args: list[str], repeat: int, forked: bool, remove: tuple[Path, ...] = ()) -> float:
    """Least user + system CPU seconds of ``repeat`` runs of ``edge-nids ARGS`` (``remove``:
    output files deleted before each run); ``forked``: in processes forked after the imports,
    so the interpreter's start-up and imports (~0.15 s and their spread) are not measured."""
    if not forked:
        best = float("inf")
        for _ in range(repeat):
            for f in remove:
                f.unlink(missing_ok=True)
            best = min(best, cpu_s([sys.executable, "-m", "edge_nids.cli", *args]))
        return best
    cmd = [sys.executable, "-c", _FORKED, str(repeat), ",".join(map(str, remove)), *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr}")
    return min(float(x) for x in done.stdout.split())


def default_pcaps(out: Path, n: int) -> list[Path]:
    """Synthetic floods and scan, the lab demo capture, a real benign capture (those present)."""
    gen = [sys.executable, str(REPO / "bench" / "make_bench_captures.py"), str(out), "--packets", str(n)]
    made = [Path(x) for x in subprocess.run(gen, check=True, capture_output=True, text=True).stdout.split()]
    pcaps = list(made)  # syn_flood, port_scan, http_flood, long_flows (benign bulk transfer)
    demo = REPO / "lab" / "captures" / "demo.pcap"
    data = Path(os.environ.get("EDGE_NIDS_DATA", REPO.parent / "shared" / "datasets"))
    pcaps += [p for p in (demo, data / BENIGN) if p.is_file()]
    return pcaps


def capture_span(pcap: Path) -> tuple[int, float, float]:
    """(packets, first and last packet time in epoch s) of a capture."""
    from edge_nids.flows.pcap import open_capture

    n, first, last = 0, 0, 0
    with open_capture(pcap) as cap:
        for ts, *_ in cap:
            first = first or ts
            last = ts
            n += 1
    return n, first / 1e6, last / 1e6


def lab_pcaps(run: Path, min_packets: int) -> dict[Path, str]:
    """The captures of a lab run directory with at least ``min_packets`` packets → what they
    hold: the labels of the attack windows (labels.csv) they overlap, else ``benign``."""
    sys.path.insert(0, str(REPO))
    from lab.labels import read_labels

    labels = read_labels(run / "labels.csv") if (run / "labels.csv").is_file() else []
    out: dict[Path, str] = {}
    for p in sorted(run.glob("*.pcap")):
        n, first, last = capture_span(p)
        if n >= min_packets:
            held = sorted({r.label for r in labels if r.start <= last and r.end >= first})
            out[p] = ", ".join(held) or "benign"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcaps", nargs="*", type=Path)
    ap.add_argument("--packets", type=int, default=100_000, help="packets per synthetic capture")
    ap.add_argument("--repeat", type=int, default=2, help="runs per measurement (the least CPU is kept)")
    ap.add_argument("--model", help="model bundle (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    ap.add_argument(
        "--lab", type=Path, action="append", default=[], metavar="RUN_DIR", help="add a lab run's captures"
    )
    ap.add_argument("--lab-min-packets", type=int, default=1000, help="smallest lab capture measured")
    ap.add_argument(
        "--forked", action="store_true", help="each run forked after the imports (for small captures)"
    )
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    pcaps = list(a.pcaps) or default_pcaps(a.out / "captures", a.packets)
    what: dict[Path, str] = {}
    for run in a.lab:
        what |= lab_pcaps(run, a.lab_min_packets)
    pcaps += [p for p in what if p not in pcaps]
    model = ["--model", a.model] if a.model else []
    tmp = Path(tempfile.mkdtemp(prefix="bench_cpu_", dir=a.out))
    outs = (tmp / "flows.json", tmp / "alerts.json")

    def extract(p: Path) -> float:
        args = ["extract", "--profile", "corrected", "-q", "-o", str(tmp / "extract.csv"), str(p)]
        return best_cpu(args, a.repeat, a.forked)

    def run(p: Path) -> float:
        args = ["run", "--pcap", str(p), *model, "--flows", str(outs[0]), "--alerts", str(outs[1])]
        return best_cpu([*args, "--stats-interval", "0"], a.repeat, a.forked, outs)

    one = one_packet_pcap(pcaps[0], tmp / "one_packet.pcap")
    start_x, start_r = extract(one), run(one)
    py = sys.version.split()[0]
    how = ", each forked after the imports" if a.forked else ""
    print(f"python {py}, {os.cpu_count()} CPUs, {os.uname().machine}, best of {a.repeat}{how}")
    print(f"startup CPU (one-packet capture): extract {start_x:.3f} s, run {start_r:.3f} s (subtracted)")
    print()
    print(
        "| capture | holds | packets | flows | extract CPU s | run CPU s "
        "| extract µs/pkt | run µs/pkt | run / extract | whole runs |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in pcaps:
        n = packets(p)
        cx, cr = extract(p), run(p)
        flows = sum(1 for _ in open(tmp / "flows.json", encoding="utf-8"))
        ux = max(cx - start_x, 1e-6) / n * 1e6
        ur = max(cr - start_r, 1e-6) / n * 1e6
        name = f"{p.parent.name}/{p.name}" if p in what else p.name
        print(
            f"| {name} | {what.get(p, '')} | {n:,} | {flows:,} | {cx:.3f} | {cr:.3f} "
            f"| {ux:.2f} | {ur:.2f} | {ur / ux:.2f}× | {cr / cx:.2f}× |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
