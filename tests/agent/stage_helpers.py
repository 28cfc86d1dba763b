"""Helpers for the tests of the stages after the detector: flows of a real capture, labelled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_nids.flows.decode import Decoder
from edge_nids.flows.labels import load_labels
from edge_nids.flows.pcap import open_capture
from edge_nids.flows.table import FlowConfig, FlowTable

__all__ = ["DEMO_LABELS", "DEMO_PCAP", "capture_flows", "demo_flows"]

_ROOT = Path(__file__).resolve().parents[2]
DEMO_PCAP = _ROOT / "lab" / "captures" / "demo.pcap"
DEMO_LABELS = _ROOT / "lab" / "captures" / "demo.labels.csv"


def capture_flows(pcap: Path, profile: str = "corrected") -> list[Any]:
    """Every flow of a capture, ended, as the flow meter of ``profile`` gives them."""
    table, decoder, flows = FlowTable(FlowConfig(profile=profile)), Decoder(), []
    with open_capture(pcap) as cap:
        for ts, linktype, frame, wire in cap:
            pkt = decoder.decode(linktype, frame, ts, wire)
            if pkt is not None:
                flows += table.add(pkt)
    return flows + table.flush()


def demo_flows(profile: str = "corrected") -> list[tuple[Any, str]]:
    """The demo capture's flows with their labels (PortScan, DoS SYN Flood, DoS slowloris, BENIGN)."""
    labels = load_labels(DEMO_LABELS)
    return [(f, labels.label(f.src, f.dst, f.first_us)) for f in capture_flows(DEMO_PCAP, profile)]
