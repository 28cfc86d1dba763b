"""The lab's labels file: which traffic in a capture is an attack.

CSV with the header ``scenario,label,attacker,victim,start,end``; one row per attack
run. ``start``/``end`` are epoch seconds (float, the same clock as the pcap
timestamps); ``attacker``/``victim`` are IP addresses. A flow is an attack of
``label`` when its two endpoints are the row's attacker and victim (either
direction) and its first packet lies in ``[start, end]`` (as ``edge-nids extract
--labels`` applies it, see ``edge_nids.flows.labels``); every flow matched by no
row is BENIGN. Benign scenarios are not listed. The lab gives each run one
attacker address that makes attack traffic only, so the windows can be generous.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_nids.flows.labels import ANY_SOURCE, LABELS_HEADER

__all__ = ["HEADER", "LabelError", "LabelRow", "format_labels", "parse_labels", "read_labels", "write_labels"]

#: Column names, in order, of every labels file (the format ``edge-nids extract --labels`` reads).
HEADER: tuple[str, ...] = LABELS_HEADER


class LabelError(ValueError):
    """A labels file or row is malformed; the message names the file, line and problem."""


@dataclass(frozen=True)
class LabelRow:
    """One labelled attack window.

    scenario: name of the lab activity that made the traffic (e.g. ``nmap_syn``).
    label: class name written into the flow CSV (e.g. ``PortScan``); never ``BENIGN``.
    attacker, victim: IP addresses (text, normalised).
    start, end: window in epoch seconds, ``start <= end``.
    """

    scenario: str
    label: str
    attacker: str
    victim: str
    start: float
    end: float

    def __post_init__(self) -> None:
        for name in ("scenario", "label"):
            value = getattr(self, name)
            if not value or value != value.strip() or any(c in value for c in ",\r\n"):
                raise LabelError(f"{name} {value!r} must be non-empty text without commas or line breaks")
        if self.label.upper() == "BENIGN":
            raise LabelError("label BENIGN must not be listed: unlisted traffic is benign")
        for name in ("attacker", "victim"):
            try:
                object.__setattr__(self, name, str(ipaddress.ip_address(getattr(self, name))))
            except ValueError:
                raise LabelError(f"{name} {getattr(self, name)!r} is not an IP address") from None
        if self.attacker == self.victim:
            raise LabelError(f"attacker and victim are the same address {self.attacker}")
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise LabelError(f"{name} {value!r} is not a finite epoch time in seconds")
            object.__setattr__(self, name, float(value))
        if self.end < self.start:
            raise LabelError(f"end {self.end} is before start {self.start}")

    def covers(self, ts: float, a: str, b: str) -> bool:
        """True when a packet at ``ts`` (epoch s) between ``a`` and ``b`` falls in this window."""
        if not self.start <= ts <= self.end:
            return False
        if self.attacker == ANY_SOURCE:  # spoofed sources: every packet to or from the victim
            return self.victim in (a, b)
        return {a, b} == {self.attacker, self.victim}


def format_labels(rows: Iterable[LabelRow]) -> str:
    """The labels file text for ``rows`` (header first, times with µs precision)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for r in rows:
        writer.writerow([r.scenario, r.label, r.attacker, r.victim, f"{r.start:.6f}", f"{r.end:.6f}"])
    return out.getvalue()


def write_labels(path: Path, rows: Sequence[LabelRow]) -> None:
    """Write ``rows`` to ``path`` atomically (a partial file is never left behind)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(format_labels(rows), encoding="utf-8")
    tmp.replace(path)


def parse_labels(text: str, source: str = "<labels>") -> list[LabelRow]:
    """Parse labels file text; raise ``LabelError`` naming ``source`` and the line on any problem."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise LabelError(f"{source}: empty file, expected header {','.join(HEADER)}") from None
    if tuple(h.strip() for h in header) != HEADER:
        raise LabelError(f"{source}: line 1: header {','.join(header)!r} is not {','.join(HEADER)!r}")
    rows: list[LabelRow] = []
    for fields in reader:
        line = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(HEADER):
            raise LabelError(f"{source}: line {line}: {len(fields)} fields, expected {len(HEADER)}")
        scenario, label, attacker, victim, start, end = (f.strip() for f in fields)
        try:
            t0, t1 = float(start), float(end)
        except ValueError:
            raise LabelError(f"{source}: line {line}: start/end {start!r}/{end!r} are not numbers") from None
        try:
            rows.append(LabelRow(scenario, label, attacker, victim, t0, t1))
        except LabelError as exc:
            raise LabelError(f"{source}: line {line}: {exc}") from None
    return rows


def read_labels(path: Path) -> list[LabelRow]:
    """Read and validate a labels file; ``LabelError`` names the file and problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabelError(f"{path}: cannot read labels file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LabelError(f"{path}: not a UTF-8 text file") from None
    return parse_labels(text, str(path))
