"""Benchmark: reading and decoding captures (edge_nids.flows.pcap + decode), one core.

Prints a table: packets, seconds and packets/s for reading alone, for reading +
decoding, and, as a reference on the same file in the same run, for iterating
the raw records with scapy's RawPcapReader (if scapy is installed). Inputs: the
two gold captures in the shared data (if present) and a capture of N packets
(default 200,000) that tests/data/make_scenarios.py writes to a temporary folder
(the scenario packets replayed: IPv4/IPv6 TCP, UDP, ICMP, VLAN, fragments).

Usage: .venv/bin/python bench/bench_decode.py [--packets N] [--repeat R] [PCAP ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from edge_nids.flows.decode import Decoder
from edge_nids.flows.pcap import open_capture

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent


def _shared_data() -> Path:
    env = os.environ.get("EDGE_NIDS_DATA")
    return Path(env) if env else REPO.parent / "shared" / "datasets"


def read_only(path: Path) -> int:
    n = 0
    with open_capture(path) as cap:
        for _ in cap:
            n += 1
    return n


def read_decode(path: Path) -> int:
    decoder = Decoder()
    decode = decoder.decode
    with open_capture(path) as cap:
        for ts, linktype, frame, wire_len in cap:
            decode(linktype, frame, ts, wire_len)
    return decoder.decoded


def scapy_raw(path: Path) -> int:
    from scapy.utils import RawPcapReader

    n = 0
    with RawPcapReader(str(path)) as reader:
        for _ in reader:
            n += 1
    return n


def best_of(fn: Callable[[Path], int], path: Path, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(path)
        best = min(best, time.perf_counter() - t)
    return best


def _make_big(folder: Path, packets: int) -> Path:
    spec = importlib.util.spec_from_file_location(
        "make_scenarios", REPO / "tests" / "data" / "make_scenarios.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = folder / f"scenarios_{packets}.pcap"
    module.write_big(path, packets)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pcaps", nargs="*", type=Path, help="more captures to time")
    parser.add_argument("--packets", type=int, default=200_000, help="packets in the generated capture")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best is shown)")
    args = parser.parse_args(argv)
    have_scapy = importlib.util.find_spec("scapy") is not None

    with tempfile.TemporaryDirectory(prefix="edge-nids-bench-") as tmp:
        inputs: list[Path] = []
        gold = _shared_data() / "pcaps"
        inputs += [
            p
            for p in (
                gold / "gold_cicids2017_sqlinj" / "WebattackSQLinj.pcap",
                gold / "gold_cicflowmeter4_slowloris" / "slowloris.pcap",
            )
            if p.is_file()
        ]
        if have_scapy:
            inputs.append(_make_big(Path(tmp), args.packets))
        else:
            print("scapy not installed: no generated capture", file=sys.stderr)
        inputs += args.pcaps

        head = (
            "capture",
            "packets",
            "read s",
            "read pkt/s",
            "read+decode s",
            "read+decode pkt/s",
            "scapy raw pkt/s",
        )
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for path in inputs:
            n = read_only(path)
            t_read = best_of(read_only, path, args.repeat)
            t_dec = best_of(read_decode, path, args.repeat)
            scapy = f"{n / best_of(scapy_raw, path, args.repeat):,.0f}" if have_scapy else "-"
            cells = [path.name, f"{n:,}", f"{t_read:.3f}", f"{n / t_read:,.0f}", f"{t_dec:.3f}"]
            cells += [f"{n / t_dec:,.0f}", scapy]
            print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
