"""Bounded resources: a SYN flood from 30,000 spoofed sources keeps the agent's memory flat
(the flow table holds at most --max-flows flows) and the evictions are reported."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .helpers import agent_cmd
from .pcapgen import SYN, ipv4_tcp, write_pcap

T0 = 1_650_000_000_000_000


def _flood(path: Path, n: int) -> None:
    write_pcap(
        path,
        (
            (
                T0 + i * 20,
                ipv4_tcp(
                    f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", "192.0.2.1", 1024 + i % 60000, 80, SYN
                ),
            )
            for i in range(n)
        ),
    )


def _run(args: list[str], tmp_path: Path) -> tuple[int, str, int]:
    """Run the agent; return (exit status, stderr, peak RSS in KiB) of that process alone."""
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err, open(os.devnull, "w") as out:
        proc = subprocess.Popen(agent_cmd(*args), stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err_path.read_text(), usage.ru_maxrss


@pytest.mark.slow
def test_spoofed_flood_keeps_memory_bounded_and_reports_evictions(tmp_path: Path, agent_bundle: Path) -> None:
    small, flood = tmp_path / "small.pcap", tmp_path / "flood.pcap"
    _flood(small, 1_000)
    _flood(flood, 30_000)
    common = [
        "--model",
        str(agent_bundle),
        "--max-flows",
        "500",
        "--alerts",
        str(tmp_path / "a.json"),
        "--stats-interval",
        "0",
    ]
    rc1, err1, rss_small = _run(["run", "--pcap", str(small), *common], tmp_path)
    rc2, err2, rss_flood = _run(["run", "--pcap", str(flood), *common], tmp_path)
    assert rc1 == 0 and rc2 == 0, err1 + err2
    assert "flow table bound 500 flows" in err2, err2
    assert "packets=30000 " in err2 and "evicted=29500 " in err2  # every flow beyond 500 evicted, counted
    # 30x the flows, yet (nearly) the same peak memory: 30,000 open flows would need ~45 MB more
    assert rss_flood - rss_small < 15 * 1024, (rss_small, rss_flood)
