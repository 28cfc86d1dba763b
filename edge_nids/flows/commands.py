"""Registers the ``extract`` subcommand; the work is imported only when it runs."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``edge-nids extract`` to the command line."""
    p = subparsers.add_parser(
        "extract",
        help="capture files -> CIC-IDS2017 flow CSV (85 TrafficLabelling columns)",
        description=(
            "Extract bidirectional flows from pcap/pcapng files and write the 85 columns of the "
            "CIC-IDS2017 TrafficLabelling CSVs (header text identical to the CIC files)."
        ),
    )
    p.add_argument("pcaps", nargs="+", metavar="PCAP", help="capture files (pcap or pcapng), read in order")
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT.csv", help="CSV file to write (- for standard output)"
    )
    p.add_argument(
        "--profile",
        choices=("cicids2017", "corrected"),
        default="cicids2017",
        help="cicids2017: reproduce the published CSVs (default); corrected: intended meanings",
    )
    lab = p.add_mutually_exclusive_group()
    lab.add_argument("--label", metavar="TEXT", help="Label of every flow (default BENIGN)")
    lab.add_argument(
        "--labels",
        metavar="FILE",
        help="labels CSV (scenario,label,attacker,victim,start,end; epoch seconds)",
    )
    p.add_argument("--active-timeout", type=float, default=120.0, metavar="S", help="active timeout, s")
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=None,
        metavar="S",
        help="idle timeout, s (default: none for cicids2017, 60 for corrected; 0 = none)",
    )
    p.add_argument("--max-flows", type=int, default=100_000, metavar="N", help="flow table size bound")
    p.add_argument(
        "--utc-offset",
        type=float,
        default=0.0,
        metavar="H",
        help="write Timestamp at this offset from UTC, hours (default 0; CIC-IDS2017 lab time is -3)",
    )
    p.add_argument(
        "--no-padding",
        action="store_true",
        help="do not count Ethernet padding as payload (CICFlowMeter-4.0; the CIC-IDS2017 CSVs count it)",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress line (shown on a terminal for inputs over ~2 s) and no summary",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from edge_nids.flows.extract import main

    return main(args)
