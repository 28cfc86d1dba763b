"""The ``edge-nids`` command line.

Each part registers its subcommands from a light module (``<part>/commands.py``)
that imports nothing heavy at module level; the work itself is imported only
when a subcommand runs, so ``edge-nids --help`` stays fast and never imports
TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from edge_nids import __version__

__all__ = ["build_parser", "main"]

#: Modules with a ``register(subparsers)`` function. Add a part here only when its
#: subcommands work.
COMMAND_MODULES: tuple[str, ...] = (
    "edge_nids.flows.commands",
    "edge_nids.agent.commands",
    "edge_nids.training.commands",
    "edge_nids.convert.commands",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="edge-nids",
        description="Real-time CNN-LSTM network anomaly detection for edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"edge-nids {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (repeatable)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _stderr_is_journal() -> bool:
    """True if stderr is systemd's journal (``$JOURNAL_STREAM`` names its device:inode), which
    timestamps every line itself."""
    dev, _, ino = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        st = os.fstat(2)
        return (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (OSError, ValueError):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format=("" if _stderr_is_journal() else "%(asctime)s ") + "%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
