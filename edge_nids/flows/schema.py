"""The CIC-IDS2017 feature schema shared by the flow meter, trainer, converter and agent.

The 78 feature columns are listed in the order of the ``MachineLearningCVE`` CSVs,
with the exact header text (leading spaces included), a clean name, a unit and what
is measured. ``FeatureSchema.fingerprint`` identifies the ordered column list; model
bundles record it together with the behaviour (``cicids2017`` or ``corrected``) so
the agent can refuse a model whose features it cannot compute.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

__all__ = [
    "CIC_IDS2017",
    "EDGE_EXTRA_HEADER",
    "EDGE_FLOWS",
    "MACHINE_LEARNING_CVE_HEADER",
    "PROFILES",
    "TRAFFIC_LABELLING_HEADER",
    "FeatureSchema",
    "FeatureSpec",
    "get_schema",
]

#: Behaviours of the flow meter (see FEATURES.md): reproduce the published CSVs,
#: or compute the intended meaning of every column.
PROFILES: tuple[str, ...] = ("cicids2017", "corrected")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature column: CSV header text, clean name, unit and meaning."""

    header: str
    name: str
    unit: str
    description: str


@dataclass(frozen=True)
class FeatureSchema:
    """An ordered list of feature columns with a stable fingerprint."""

    name: str
    features: tuple[FeatureSpec, ...]

    @property
    def names(self) -> list[str]:
        """Clean column names, in order."""
        return [f.name for f in self.features]

    @property
    def headers(self) -> list[str]:
        """CSV header texts (leading spaces kept), in order."""
        return [f.header for f in self.features]

    def __len__(self) -> int:
        return len(self.features)

    def index(self, name: str) -> int:
        """Position of the column with this clean name or header text."""
        key = name.strip()
        for i, f in enumerate(self.features):
            if f.name == key or f.header.strip() == key:
                return i
        raise KeyError(f"no feature column named {name!r} in schema {self.name}")

    @property
    def fingerprint(self) -> str:
        """sha256 (first 16 hex digits) of the schema name and ordered column names."""
        blob = json.dumps({"schema": self.name, "columns": self.names}, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


_US = "µs"
_B = "bytes"
_N = "packets"

# (header text, clean name, unit, meaning)
_CIC_COLUMNS: list[tuple[str, str, str, str]] = [
    (" Destination Port", "Destination Port", "port", "destination port of the flow's first packet"),
    (" Flow Duration", "Flow Duration", _US, "last minus first packet time"),
    (" Total Fwd Packets", "Total Fwd Packets", _N, "packets in the forward direction"),
    (" Total Backward Packets", "Total Backward Packets", _N, "packets in the backward direction"),
    ("Total Length of Fwd Packets", "Total Length of Fwd Packets", _B, "forward transport payload bytes"),
    (" Total Length of Bwd Packets", "Total Length of Bwd Packets", _B, "backward transport payload bytes"),
    (" Fwd Packet Length Max", "Fwd Packet Length Max", _B, "largest forward payload"),
    (" Fwd Packet Length Min", "Fwd Packet Length Min", _B, "smallest forward payload"),
    (" Fwd Packet Length Mean", "Fwd Packet Length Mean", _B, "mean forward payload"),
    (" Fwd Packet Length Std", "Fwd Packet Length Std", _B, "sample std of forward payload"),
    ("Bwd Packet Length Max", "Bwd Packet Length Max", _B, "largest backward payload"),
    (" Bwd Packet Length Min", "Bwd Packet Length Min", _B, "smallest backward payload"),
    (" Bwd Packet Length Mean", "Bwd Packet Length Mean", _B, "mean backward payload"),
    (" Bwd Packet Length Std", "Bwd Packet Length Std", _B, "sample std of backward payload"),
    ("Flow Bytes/s", "Flow Bytes/s", "bytes/s", "payload bytes / duration"),
    (" Flow Packets/s", "Flow Packets/s", "packets/s", "packets / duration"),
    (" Flow IAT Mean", "Flow IAT Mean", _US, "mean gap between consecutive packets (both directions)"),
    (" Flow IAT Std", "Flow IAT Std", _US, "sample std of those gaps"),
    (" Flow IAT Max", "Flow IAT Max", _US, "largest gap"),
    (" Flow IAT Min", "Flow IAT Min", _US, "smallest gap"),
    ("Fwd IAT Total", "Fwd IAT Total", _US, "sum of gaps between forward packets"),
    (" Fwd IAT Mean", "Fwd IAT Mean", _US, "mean forward gap"),
    (" Fwd IAT Std", "Fwd IAT Std", _US, "sample std of forward gaps"),
    (" Fwd IAT Max", "Fwd IAT Max", _US, "largest forward gap"),
    (" Fwd IAT Min", "Fwd IAT Min", _US, "smallest forward gap"),
    ("Bwd IAT Total", "Bwd IAT Total", _US, "sum of gaps between backward packets"),
    (" Bwd IAT Mean", "Bwd IAT Mean", _US, "mean backward gap"),
    (" Bwd IAT Std", "Bwd IAT Std", _US, "sample std of backward gaps"),
    (" Bwd IAT Max", "Bwd IAT Max", _US, "largest backward gap"),
    (" Bwd IAT Min", "Bwd IAT Min", _US, "smallest backward gap"),
    ("Fwd PSH Flags", "Fwd PSH Flags", _N, "forward packets with PSH"),
    (" Bwd PSH Flags", "Bwd PSH Flags", _N, "backward packets with PSH"),
    (" Fwd URG Flags", "Fwd URG Flags", _N, "forward packets with URG"),
    (" Bwd URG Flags", "Bwd URG Flags", _N, "backward packets with URG"),
    (" Fwd Header Length", "Fwd Header Length", _B, "sum of forward transport header bytes"),
    (" Bwd Header Length", "Bwd Header Length", _B, "sum of backward transport header bytes"),
    ("Fwd Packets/s", "Fwd Packets/s", "packets/s", "forward packets / duration"),
    (" Bwd Packets/s", "Bwd Packets/s", "packets/s", "backward packets / duration"),
    (" Min Packet Length", "Min Packet Length", _B, "smallest payload (all packets)"),
    (" Max Packet Length", "Max Packet Length", _B, "largest payload (all packets)"),
    (" Packet Length Mean", "Packet Length Mean", _B, "mean payload (all packets)"),
    (" Packet Length Std", "Packet Length Std", _B, "sample std of payload (all packets)"),
    (" Packet Length Variance", "Packet Length Variance", "bytes²", "sample variance of payload"),
    ("FIN Flag Count", "FIN Flag Count", _N, "packets with FIN"),
    (" SYN Flag Count", "SYN Flag Count", _N, "packets with SYN"),
    (" RST Flag Count", "RST Flag Count", _N, "packets with RST"),
    (" PSH Flag Count", "PSH Flag Count", _N, "packets with PSH"),
    (" ACK Flag Count", "ACK Flag Count", _N, "packets with ACK"),
    (" URG Flag Count", "URG Flag Count", _N, "packets with URG"),
    (" CWE Flag Count", "CWE Flag Count", _N, "packets with CWR"),
    (" ECE Flag Count", "ECE Flag Count", _N, "packets with ECE"),
    (" Down/Up Ratio", "Down/Up Ratio", "ratio", "backward packets / forward packets"),
    (" Average Packet Size", "Average Packet Size", _B, "payload bytes / packets"),
    (" Avg Fwd Segment Size", "Avg Fwd Segment Size", _B, "mean forward payload"),
    (" Avg Bwd Segment Size", "Avg Bwd Segment Size", _B, "mean backward payload"),
    (" Fwd Header Length", "Fwd Header Length.1", _B, "duplicate of Fwd Header Length"),
    ("Fwd Avg Bytes/Bulk", "Fwd Avg Bytes/Bulk", _B, "mean bytes per forward bulk"),
    (" Fwd Avg Packets/Bulk", "Fwd Avg Packets/Bulk", _N, "mean packets per forward bulk"),
    (" Fwd Avg Bulk Rate", "Fwd Avg Bulk Rate", "bytes/s", "forward bulk bytes / bulk duration"),
    (" Bwd Avg Bytes/Bulk", "Bwd Avg Bytes/Bulk", _B, "mean bytes per backward bulk"),
    (" Bwd Avg Packets/Bulk", "Bwd Avg Packets/Bulk", _N, "mean packets per backward bulk"),
    ("Bwd Avg Bulk Rate", "Bwd Avg Bulk Rate", "bytes/s", "backward bulk bytes / bulk duration"),
    ("Subflow Fwd Packets", "Subflow Fwd Packets", _N, "forward packets per subflow"),
    (" Subflow Fwd Bytes", "Subflow Fwd Bytes", _B, "forward payload bytes per subflow"),
    (" Subflow Bwd Packets", "Subflow Bwd Packets", _N, "backward packets per subflow"),
    (" Subflow Bwd Bytes", "Subflow Bwd Bytes", _B, "backward payload bytes per subflow"),
    (
        "Init_Win_bytes_forward",
        "Init_Win_bytes_forward",
        _B,
        "TCP window of the first forward packet; -1 if none",
    ),
    (
        " Init_Win_bytes_backward",
        "Init_Win_bytes_backward",
        _B,
        "TCP window of the first backward packet; -1 if none",
    ),
    (" act_data_pkt_fwd", "act_data_pkt_fwd", _N, "forward packets with at least 1 payload byte"),
    (" min_seg_size_forward", "min_seg_size_forward", _B, "smallest forward transport header"),
    ("Active Mean", "Active Mean", _US, "mean active period (5 s activity timeout)"),
    (" Active Std", "Active Std", _US, "sample std of active periods"),
    (" Active Max", "Active Max", _US, "longest active period"),
    (" Active Min", "Active Min", _US, "shortest active period"),
    ("Idle Mean", "Idle Mean", _US, "mean idle period"),
    (" Idle Std", "Idle Std", _US, "sample std of idle periods"),
    (" Idle Max", "Idle Max", _US, "longest idle period"),
    (" Idle Min", "Idle Min", _US, "shortest idle period"),
]

#: The 78 feature columns of the CIC-IDS2017 MachineLearningCVE CSVs.
CIC_IDS2017 = FeatureSchema(
    name="cic-ids2017-78",
    features=tuple(FeatureSpec(*c) for c in _CIC_COLUMNS),
)

#: Header of the MachineLearningCVE CSVs: 78 features and the label.
MACHINE_LEARNING_CVE_HEADER: list[str] = [*CIC_IDS2017.headers, " Label"]

#: Header of the 85-column TrafficLabelling CSVs: flow id, endpoints, protocol,
#: timestamp, the 77 features after Destination Port, and the label.
TRAFFIC_LABELLING_HEADER: list[str] = [
    "Flow ID",
    " Source IP",
    " Source Port",
    " Destination IP",
    " Destination Port",
    " Protocol",
    " Timestamp",
    *CIC_IDS2017.headers[1:],
    " Label",
]

#: Per-flow state the 78 columns do not hold (``corrected`` profile, see edge_nids.flows.table).
_STATE_COLUMNS: list[tuple[str, str, str]] = [
    ("Protocol", "number", "IP protocol of the transport (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...)"),
    ("Handshake Seen", "0/1", "1 if the flow began with the originator's SYN (TCP)"),
    ("Continued", "0/1", "1 if the flow continues one that ended by idle or active timeout"),
]


def _edge_columns() -> list[FeatureSpec]:
    from edge_nids.flows.context import CONTEXT_COLUMNS

    extra = [*_STATE_COLUMNS, *CONTEXT_COLUMNS]
    return [FeatureSpec(name, name, unit, meaning) for name, unit, meaning in extra]


#: The 78 CIC columns, then the flow's state and its context (edge_nids.flows.context):
#: what the ``corrected`` profile computes and ``edge-nids extract --profile corrected``
#: writes after the 78 (``EDGE_EXTRA_HEADER``).
EDGE_FLOWS = FeatureSchema(name="edge-flows-94", features=(*CIC_IDS2017.features, *_edge_columns()))

#: Header cells that ``corrected`` extract output adds before the label.
EDGE_EXTRA_HEADER: list[str] = [f.header for f in EDGE_FLOWS.features[len(CIC_IDS2017) :]]

_SCHEMAS = {CIC_IDS2017.name: CIC_IDS2017, EDGE_FLOWS.name: EDGE_FLOWS}


def get_schema(name: str) -> FeatureSchema:
    """Look a schema up by name; raises ``KeyError`` naming the known ones."""
    try:
        return _SCHEMAS[name]
    except KeyError:
        raise KeyError(f"unknown feature schema {name!r}; known: {sorted(_SCHEMAS)}") from None
