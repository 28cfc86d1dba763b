"""µs per packet of the agent's BPF interpreter (BpfProgram.matches) vs tcpdump -r -w, same capture.

Usage: .venv/bin/python bench/bench_bpf.py [PCAP] [EXPR ...]  (default lab/captures/demo.pcap)
"""

from __future__ import annotations

import subprocess
import sys
import time

from edge_nids.agent.bpf import BpfProgram
from edge_nids.agent.capture import compile_bpf
from edge_nids.flows.pcap import open_capture

path = sys.argv[1] if len(sys.argv) > 1 else "lab/captures/demo.pcap"
exprs = sys.argv[2:] or [
    "tcp port 80", "tcp", "not port 22", "host 192.0.2.10 and tcp[tcpflags] & tcp-syn != 0",
]  # fmt: skip
with open_capture(path) as cap:
    recs = [(bytes(f), w) for _, _, f, w in cap]
print(f"{path}: {len(recs)} packets, Python {sys.version.split()[0]}")
print(f"{'expression':<50} {'insns':>5} {'accepted':>8} {'ours µs/pkt':>11} {'tcpdump -r -w µs/pkt':>20}")
for expr in exprs:
    prog = BpfProgram(compile_bpf(expr, pcap=path))
    m = prog.matches
    best = float("inf")
    for _ in range(7):
        t = time.perf_counter()
        n = sum(1 for f, w in recs if m(f, w))
        best = min(best, time.perf_counter() - t)
    # the loop itself without the call, to subtract
    t = time.perf_counter()
    sum(1 for f, w in recs if f)
    loop = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run(["tcpdump", "-r", path, "-w", "/dev/null", expr], capture_output=True, check=True)
    td = time.perf_counter() - t
    ours = (best - loop) / len(recs) * 1e6
    print(f"{expr:<50} {len(prog):>5} {n:>8} {ours:>11.2f} {td / len(recs) * 1e6:>20.2f}")
