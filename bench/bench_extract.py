"""Benchmark ``edge-nids extract`` against peer flow meters on the same captures.

Prints a table (tool, capture, packets, flows, wall s, CPU s, packets/s by wall
and by CPU time, peak RSS MB). On a shared machine the CPU-time rate is the fairer
number: wall time includes waiting for the CPU. Peers, each installed by this script into its own virtual
environment under bench/.venvs/ when missing:

* ``cicflowmeter`` 0.5.0 (PyPI; needs Python >= 3.12: /root/.pyenv/versions/3.12.1
  by default, ``--py312`` to change);
* NFStream (``statistical_analysis=True``), with the Python running this script.

Captures: the two gold captures of ../shared/datasets (when present) and three
generated ones (bench/make_bench_captures.py): a SYN flood (~100k one-packet
flows), a port scan (SYN + RST-ACK: 50k two-packet flows) and a few long flows.
Each tool runs as a child process under GNU time (wall, CPU and peak RSS).

    .venv/bin/python bench/bench_extract.py [--packets 100000] [--tools ours,nfstream,cicflowmeter]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENVS = HERE / ".venvs"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

__all__ = ["main"]

# cicflowmeter 0.5.0's command line passes its arguments to create_sniffer in the
# wrong order (file mode fails with "'bool' object has no attribute 'split'"), so
# the benchmark drives it the way its main() does, with keyword arguments.
CICFLOWMETER_SCRIPT = """
import sys
from cicflowmeter.sniffer import create_sniffer
sniffer, session = create_sniffer(
    input_file=sys.argv[1], input_interface=None, output_mode="csv", output=sys.argv[2]
)
sniffer.start()
sniffer.join()
session._gc_stop.set()
session._gc_thread.join(timeout=2.0)
session.flush_flows()
"""

NFSTREAM_SCRIPT = """
import sys
from nfstream import NFStreamer
n = NFStreamer(source=sys.argv[1], statistical_analysis=True).to_csv(path=sys.argv[2])
"""


def _venv(name: str, python: str, packages: list[str]) -> Path:
    """The venv's python, creating the venv and installing ``packages`` if missing."""
    env = VENVS / name
    py = env / "bin" / "python"
    marker = env / ".installed"
    if not marker.exists():
        print(f"installing {' '.join(packages)} into {env} ...", file=sys.stderr)
        subprocess.run([python, "-m", "venv", "--clear", str(env)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *packages], check=True)
        marker.write_text(" ".join(packages) + "\n")
    return py


def _count_packets(path: Path) -> int:
    from edge_nids.flows.pcap import open_capture

    with open_capture(path) as cap:
        return sum(1 for _ in cap)


def _count_rows(path: Path) -> int:
    if not path.exists():
        return -1
    with open(path, "rb") as f:
        return max(sum(1 for _ in f) - 1, 0)


def _run(cmd: list[str], timeout_s: float) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak RSS MB, exit status; -9 = killed at the timeout) of a command.

    Measured by GNU time (``/usr/bin/time``) around the command: the rusage of a
    child forked from this process would count this process's pages in its peak RSS.
    """
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "time.txt"
        err_path = Path(tmp) / "stderr.txt"
        with open(err_path, "wb") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(
                ["/usr/bin/time", "-o", str(stats), "-f", "%e %U %S %M", *cmd],
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
            try:
                rc = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
                return time.perf_counter() - start, 0.0, 0.0, -9
        if rc:
            tail = err_path.read_bytes().decode(errors="replace").strip()[-300:]
            print(f"  {cmd[0]} failed ({rc}): {tail}", file=sys.stderr)
        fields = stats.read_text().split()[-4:]
        wall, user, system, rss_kb = float(fields[0]), float(fields[1]), float(fields[2]), int(fields[3])
    return wall, user + system, rss_kb / 1024, rc


def _tool_command(tool: str, pythons: dict[str, Path], cap: Path, out: Path) -> list[str]:
    if tool == "ours":
        return [sys.executable, "-m", "edge_nids.cli", "extract", str(cap), "-o", str(out), "-q"]
    if tool == "ours-corrected":
        return [
            sys.executable,
            "-m",
            "edge_nids.cli",
            "extract",
            str(cap),
            "-o",
            str(out),
            "-q",
            "--profile",
            "corrected",
        ]
    if tool == "cicflowmeter":
        return [str(pythons[tool]), "-c", CICFLOWMETER_SCRIPT, str(cap), str(out)]
    if tool == "nfstream":
        return [str(pythons[tool]), "-c", NFSTREAM_SCRIPT, str(cap), str(out)]
    raise ValueError(f"unknown tool {tool!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=100_000, help="packets per generated capture")
    ap.add_argument("--tools", default="ours,ours-corrected,nfstream,cicflowmeter")
    ap.add_argument("--py312", default="/root/.pyenv/versions/3.12.1/bin/python")
    ap.add_argument("--captures", type=Path, default=REPO / "bench" / "out" / "bench_extract_captures")
    ap.add_argument("--timeout", type=float, default=600.0, help="per run, s (peers can take minutes)")
    ap.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("EDGE_NIDS_DATA", REPO.parent / "shared" / "datasets")),
    )
    a = ap.parse_args()
    tools = [t.strip() for t in a.tools.split(",") if t.strip()]

    from make_bench_captures import make_all

    pythons: dict[str, Path] = {}
    if "cicflowmeter" in tools:
        pythons["cicflowmeter"] = _venv("cicflowmeter", a.py312, ["cicflowmeter==0.5.0"])
    if "nfstream" in tools:
        pythons["nfstream"] = _venv("nfstream", sys.executable, ["nfstream"])

    captures = []
    for rel in (
        "pcaps/gold_cicids2017_sqlinj/WebattackSQLinj.pcap",
        "pcaps/gold_cicflowmeter4_slowloris/slowloris.pcap",
    ):
        if (a.data / rel).is_file():
            captures.append(a.data / rel)
    captures += make_all(a.captures / str(a.packets), a.packets)

    print(
        "| tool | capture | packets | flows | wall s | CPU s | packets/s (wall) | packets/s (CPU) "
        "| peak RSS MB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for cap in captures:
            packets = _count_packets(cap)
            for tool in tools:
                out = Path(tmp) / f"{tool}-{cap.stem}.csv"
                wall, cpu, rss, rc = _run(_tool_command(tool, pythons, cap, out), a.timeout)
                if rc == -9:
                    flows = f"killed after {a.timeout:.0f} s"
                elif rc:
                    flows = f"failed ({rc})"
                else:
                    flows = f"{_count_rows(out):,}"
                ok = rc == 0
                pps = f"{packets / wall:,.0f}" if ok and wall else "-"
                cpu_pps = f"{packets / cpu:,.0f}" if ok and cpu else "-"
                cpu_s = f"{cpu:.2f}" if ok else "-"
                rss_mb = f"{rss:.0f}" if ok else "-"
                print(
                    f"| {tool} | {cap.name} | {packets:,} | {flows} | {wall:.2f} | {cpu_s} | {pps} "
                    f"| {cpu_pps} | {rss_mb} |",
                    flush=True,
                )
                out.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
