"""The labelled flow corpus that detection is trained and judged on: one CSV per capture.

Sources (each capture is one group: it never feeds both training and evaluation):

* ``benign_public``: the real benign captures of the shared datasets (nDPI and
  nfstream test suites); every flow BENIGN.
* ``attacks_public``: real attack captures from other networks; a flow is the
  capture's attack type when an attacker address of its ``MANIFEST.tsv`` row is
  one of its ends (for rows without addresses, spoofed or anonymised sources:
  every flow to the victim address or service named there), else BENIGN.
* ``lab``: lab runs (``lab/out/<run>``), labelled by their ``labels.csv``.

Flows come from ``edge-nids extract --profile corrected`` (the same flow meter and
context as the agent) and are cached: a capture is extracted again only when the
capture or the flow meter's code is newer than its CSV.
"""

from __future__ import annotations

import csv
import ipaddress
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_nids.flows.extract import extract, labeller_function
from edge_nids.flows.labels import BENIGN, load_labels
from edge_nids.flows.pcap import CAPTURE_SUFFIXES
from edge_nids.flows.table import Flow, FlowConfig

__all__ = ["ATTACK_TYPES", "Capture", "attack_labeller", "build_corpus", "find_captures"]

log = logging.getLogger(__name__)

#: attacks_public ``attack_type`` → class name used in training and reports.
ATTACK_TYPES: dict[str, str] = {
    "scan": "PortScan",
    "flood": "DoS Flood",
    "slow_dos": "DoS slowloris",
    "brute_force": "BruteForce",
    "web_attack": "Web Attack",
    "exploit": "Exploit",
}

_IPV4 = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3})\b")
_SERVICE = re.compile(r"\b(TCP|UDP)/(\d+)\b")


@dataclass(frozen=True)
class Capture:
    """One capture of the corpus: where it is, where its flows go, how they are labelled."""

    source: str
    name: str
    pcap: Path
    csv: Path
    attack_type: str = ""  # attacks_public rows: scan, flood, ...
    attackers: tuple[str, ...] = ()


def _addresses(text: str) -> list[bytes]:
    out = []
    for token in re.split(r"[;,\s]+", text):
        try:
            out.append(ipaddress.ip_address(token.strip()).packed)
        except ValueError:
            continue
    return out


def attack_labeller(row: dict[str, str]) -> Callable[[Flow], str]:
    """The label function of one attacks_public MANIFEST row (see the module docstring)."""
    label = ATTACK_TYPES.get(row["attack_type"], row["attack_type"])
    attackers = set(_addresses(row["attacker"]))
    if attackers:

        def by_attacker(flow: Flow) -> str:
            return label if flow.src in attackers or flow.dst in attackers else BENIGN

        return by_attacker
    victims = {ipaddress.ip_address(m).packed for m in _IPV4.findall(row["victim"])}
    service = _SERVICE.search(row["victim"])
    proto = {"TCP": 6, "UDP": 17}[service.group(1)] if service else None
    port = int(service.group(2)) if service else None
    if not victims and port is None:
        raise ValueError(f"{row['file']}: MANIFEST names no attacker, victim address or service")

    def by_victim(flow: Flow) -> str:
        if victims and flow.dst not in victims and flow.src not in victims:
            return BENIGN
        if port is not None and not (flow.proto == proto and port in (flow.dport, flow.sport)):
            return BENIGN
        return label

    return by_victim


def _manifest(folder: Path) -> list[dict[str, str]]:
    path = folder / "MANIFEST.tsv"
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def find_captures(datasets: Path | None, lab_runs: Sequence[Path], out: Path) -> list[Capture]:
    """Every capture of the corpus under ``datasets/pcaps`` and the lab run folders."""
    caps: list[Capture] = []
    if datasets is not None:
        pcaps = datasets / "pcaps"
        benign = pcaps / "benign_public"
        if benign.is_dir():
            for p in sorted(benign.iterdir()):
                if p.suffix in CAPTURE_SUFFIXES:
                    caps.append(Capture("benign_public", p.stem, p, out / "benign_public" / f"{p.stem}.csv"))
        attacks = pcaps / "attacks_public"
        if attacks.is_dir():
            for row in _manifest(attacks):
                p = attacks / row["file"]
                stem = Path(row["file"]).stem
                caps.append(
                    Capture(
                        "attacks_public",
                        stem,
                        p,
                        out / "attacks_public" / f"{stem}.csv",
                        attack_type=row["attack_type"],
                        attackers=tuple(row["attacker"].split(";")),
                    )
                )
    for run in lab_runs:
        for p in sorted(Path(run).glob("*.pcap")):
            caps.append(
                Capture(f"lab:{Path(run).name}", p.stem, p, out / "lab" / Path(run).name / f"{p.stem}.csv")
            )
    return caps


def _label_function(cap: Capture) -> str | Callable[[Flow], str]:
    if cap.source == "benign_public":
        return BENIGN
    if cap.source == "attacks_public":
        rows = {r["file"]: r for r in _manifest(cap.pcap.parent)}
        return attack_labeller(rows[cap.pcap.name])
    labels = cap.pcap.parent / "labels.csv"
    return labeller_function(load_labels(labels)) if labels.is_file() else BENIGN


def _code_mtime() -> float:
    flows = Path(__file__).resolve().parents[1] / "flows"
    return max(p.stat().st_mtime for p in flows.glob("*.py"))


def build_corpus(captures: Sequence[Capture], force: bool = False) -> list[Capture]:
    """Extract (``corrected``) every capture whose CSV is missing or older; returns them all."""
    newest_code = _code_mtime()
    config = FlowConfig(profile="corrected")
    for cap in captures:
        if (
            not force
            and cap.csv.is_file()
            and cap.csv.stat().st_mtime >= max(cap.pcap.stat().st_mtime, newest_code)
        ):
            continue
        cap.csv.parent.mkdir(parents=True, exist_ok=True)
        tmp = cap.csv.with_suffix(".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            summary = extract([cap.pcap], fh, config, label=_label_function(cap))
        tmp.replace(cap.csv)
        log.info("%s/%s: %d flows", cap.source, cap.name, summary.flows)
    return list(captures)
