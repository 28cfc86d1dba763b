"""What live workers cost the detection: each worker keeps its own flow context and escalation.

``PACKET_FANOUT_HASH`` sends each flow to a worker by a symmetric hash of its 5-tuple, so a
scanner's, a guesser's or a flood's flows are spread over the workers and each worker's
context (the originator's and the service's recent flows) and escalation counts see about
1/N of them. This splits each held-out capture of an ``edge-nids detection`` work folder the
same way (CRC-32 of the sorted endpoints and the protocol; the kernel's hash differs, the
spread does not), replays every part through the capture's fold bundle, and judges the union
at the report's threshold and escalation rule. Prints a markdown table: per public scan,
flood, brute-force and slow-DoS capture the attacker flows flagged in one process and with
each worker count, then the benign_public flows flagged.

Usage: ``python bench/bench_worker_context.py [--work runs/detection] [--workers 2,3]
[--benign]`` (the attack captures take a few minutes on 2 cores; ``--benign`` adds the 259
benign captures, a few more).
"""

from __future__ import annotations

import argparse
import pickle
import struct
import sys
import tempfile
import zlib
from pathlib import Path

__all__ = ["main", "split"]


def split(pcap: Path, n: int, out: Path) -> list[Path]:
    """Write ``pcap``'s records into ``n`` pcap files by a symmetric flow hash (frames without
    an IP packet go to the first); returns them."""
    from edge_nids.flows.decode import Decoder
    from edge_nids.flows.pcap import open_capture

    dec = Decoder()
    paths = [out / f"part{i}.pcap" for i in range(n)]
    files = [p.open("wb") for p in paths]
    started = False
    try:
        with open_capture(pcap) as cap:
            for ts, lt, frame, wire in cap:
                if not started:  # pcap with ns timestamps; the link type of the first record
                    for f in files:
                        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, lt))
                    started = True
                p = dec.decode(lt, frame, ts, wire)
                k = 0
                if p is not None:
                    lo, hi = sorted(((p.src, p.sport), (p.dst, p.dport)))
                    key = lo[0] + lo[1].to_bytes(2, "big") + hi[0] + hi[1].to_bytes(2, "big")
                    k = zlib.crc32(key + bytes([p.proto])) % n
                files[k].write(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000 * 1000, len(frame), wire))
                files[k].write(bytes(frame))
    finally:
        for f in files:
            f.close()
    return paths


def _flagged(res, cap, parts: list[Path] | None, work: Path) -> tuple[int, int, int, int]:
    """(attacker flows, flagged, benign flows, flagged) of ``cap``: its saved one-process
    replay, or the union of ``parts`` replayed through its fold bundle."""
    from edge_nids.flows.labels import BENIGN
    from edge_nids.training.detection import _label_function, replay

    replays = (
        [res.agent[cap.name]]
        if parts is None
        else [replay(work / f"fold{res.folds[cap.name]}" / "bundle", p, _label_function(cap)) for p in parts]
    )
    a = ak = b = bk = 0
    for r in replays:
        for lab, fl in zip(r.labels, r.flagged(res.threshold, res.rule), strict=True):
            if lab == BENIGN:
                b, bk = b + 1, bk + fl
            else:
                a, ak = a + 1, ak + fl
    return a, ak, b, bk


def main(argv: list[str] | None = None) -> int:
    from edge_nids.training.detection import CORE_TYPES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("runs/detection"))
    ap.add_argument("--workers", default="2,3", help="worker counts, comma-separated")
    ap.add_argument("--benign", action="store_true", help="also the benign_public captures")
    a = ap.parse_args(argv)
    ns = [int(x) for x in a.workers.split(",")]
    with open(a.work / "results.pickle", "rb") as fh:
        res = pickle.load(fh)
    core = sorted(
        (c for c in res.captures if c.source == "attacks_public" and c.attack_type in CORE_TYPES),
        key=lambda c: (c.attack_type, c.name),
    )
    print(f"{a.work}: threshold {res.threshold:.4f}, {res.rule.describe() if res.rule else 'no escalation'}")
    print()
    print("| capture | type | attacker flows | 1 process | " + " | ".join(f"{n} workers" for n in ns) + " |")
    print("|---|---|---:|---:|" + "---:|" * len(ns))
    tot = {n: [0, 0] for n in [1, *ns]}
    ben = {n: [0, 0] for n in [1, *ns]}
    caps = core + ([c for c in res.captures if c.source == "benign_public"] if a.benign else [])
    with tempfile.TemporaryDirectory() as tmp:
        for cap in caps:
            cells = []
            for n in [1, *ns]:
                parts = None
                if n > 1:
                    d = Path(tmp) / f"{cap.name}-{n}"
                    d.mkdir()
                    parts = split(cap.pcap, n, d)
                att, ak, b, bk = _flagged(res, cap, parts, a.work)
                tot[n][0] += att
                tot[n][1] += ak
                if cap.source == "benign_public":
                    ben[n][0] += b
                    ben[n][1] += bk
                cells.append(f"{ak}/{att}")
            if cap.source == "attacks_public":
                print(f"| `{cap.name}` | {cap.attack_type} | {att} | " + " | ".join(cells) + " |")
            sys.stdout.flush()
    pct = lambda k, m: f"{100 * k / m:.2f} % ({k}/{m})" if m else "—"  # noqa: E731
    print("| all of them | | | " + " | ".join(pct(tot[n][1], tot[n][0]) for n in [1, *ns]) + " |")
    if a.benign:
        print("| benign_public flows | | | " + " | ".join(pct(ben[n][1], ben[n][0]) for n in [1, *ns]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
