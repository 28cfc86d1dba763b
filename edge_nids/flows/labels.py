"""Flow labels from a labels file (shared format with the lab's attack runs).

CSV with the header ``scenario,label,attacker,victim,start,end``: ``start`` and
``end`` are epoch seconds (float), ``attacker`` and ``victim`` IP addresses. A flow
gets the ``label`` of the first row whose {attacker, victim} equals the flow's
address pair (either direction) and whose [start, end] contains the flow's first
packet time; otherwise ``BENIGN``. An ``attacker`` of ``0.0.0.0`` (``ANY_SOURCE``) stands
for spoofed sources: the row labels every flow with its victim at one end in its window
(the lab records a spoofed flood with nothing else running).
"""

from __future__ import annotations

import csv
import ipaddress
import math
import os
from dataclasses import dataclass

__all__ = ["ANY_SOURCE", "BENIGN", "LABELS_HEADER", "LabelError", "LabelRule", "Labeller", "load_labels"]

BENIGN = "BENIGN"
#: The ``attacker`` of a row whose attack came from spoofed sources (any address).
ANY_SOURCE = "0.0.0.0"
_ANY = bytes(4)
LABELS_HEADER: tuple[str, ...] = ("scenario", "label", "attacker", "victim", "start", "end")


class LabelError(ValueError):
    """A labels file that cannot be used; the message names the file, line and problem."""


@dataclass(frozen=True)
class LabelRule:
    """One labels-file row: label flows between two hosts during [start_us, end_us]."""

    scenario: str
    label: str
    attacker: bytes
    victim: bytes
    start_us: int
    end_us: int

    def matches(self, src: bytes, dst: bytes, first_us: int) -> bool:
        """True when a flow between packed ``src``/``dst`` starting at ``first_us`` is this row's."""
        if not self.start_us <= first_us <= self.end_us:
            return False
        if self.attacker == _ANY:
            return self.victim in (src, dst)
        return {src, dst} == {self.attacker, self.victim}


class Labeller:
    """Looks a flow's label up by its address pair and first packet time."""

    def __init__(self, rules: list[LabelRule], default: str = BENIGN) -> None:
        self.rules = rules
        self.default = default
        self._by_pair: dict[frozenset[bytes], list[LabelRule]] = {}
        self._by_victim: dict[bytes, list[LabelRule]] = {}  # ANY_SOURCE rows
        for rule in rules:
            if rule.attacker == _ANY:
                self._by_victim.setdefault(rule.victim, []).append(rule)
            else:
                self._by_pair.setdefault(frozenset((rule.attacker, rule.victim)), []).append(rule)

    def label(self, src: bytes, dst: bytes, first_us: int) -> str:
        """Label for a flow between packed addresses ``src``/``dst`` starting at ``first_us`` (µs)."""
        # the rows are indexed by their address pair (or victim), so only candidates are matched
        for rule in self._by_pair.get(frozenset((src, dst)), ()):
            if rule.matches(src, dst, first_us):
                return rule.label
        if self._by_victim:
            for end in (dst, src):
                for rule in self._by_victim.get(end, ()):
                    if rule.matches(src, dst, first_us):
                        return rule.label
        return self.default


def _seconds_to_us(text: str, what: str, where: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise LabelError(f"{where}: {what} {text!r} is not a number of epoch seconds") from None
    if not math.isfinite(value):
        raise LabelError(f"{where}: {what} {text!r} is not a finite number")
    return round(value * 1e6)


def _address(text: str, what: str, where: str) -> bytes:
    try:
        return ipaddress.ip_address(text.strip()).packed
    except ValueError:
        raise LabelError(f"{where}: {what} {text!r} is not an IP address") from None


def load_labels(path: str | os.PathLike[str]) -> Labeller:
    """Read a labels file; raises ``LabelError`` with a one-line message on any problem."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise LabelError(f"{path}: empty labels file")
            names = tuple(h.strip().lstrip("\ufeff") for h in header)
            if names != LABELS_HEADER:
                raise LabelError(f"{path}: header must be {','.join(LABELS_HEADER)}, got {','.join(names)}")
            rules: list[LabelRule] = []
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(LABELS_HEADER):
                    raise LabelError(f"{where}: expected {len(LABELS_HEADER)} fields, got {len(row)}")
                scenario, label, attacker, victim, start, end = (c.strip() for c in row)
                if not label:
                    raise LabelError(f"{where}: empty label")
                start_us = _seconds_to_us(start, "start", where)
                end_us = _seconds_to_us(end, "end", where)
                if end_us < start_us:
                    raise LabelError(f"{where}: end {end} is before start {start}")
                rules.append(
                    LabelRule(
                        scenario,
                        label,
                        _address(attacker, "attacker", where),
                        _address(victim, "victim", where),
                        start_us,
                        end_us,
                    )
                )
    except FileNotFoundError:
        raise LabelError(f"{path}: no such labels file") from None
    except UnicodeDecodeError:
        raise LabelError(f"{path}: not a UTF-8 text file") from None
    except csv.Error as exc:
        raise LabelError(f"{path}: bad CSV: {exc}") from None
    except OSError as exc:
        raise LabelError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return Labeller(rules)
