"""The agent's configuration: one frozen dataclass tree loaded from YAML.

Every key of ``systemd/config.example.yaml`` maps to a field here. Unknown keys
and bad values raise :class:`ConfigError` with a message naming the key, for
example ``config error: flows.max_flows: must be a positive integer, got -3``.
Command-line flags override the file through :func:`with_overrides`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AgentConfig",
    "AlertsConfig",
    "BatchConfig",
    "CaptureConfig",
    "ConfigError",
    "FlowsConfig",
    "ModelConfig",
    "MqttConfig",
    "OutputsConfig",
    "StatsConfig",
    "SuppressEntry",
    "SyslogConfig",
    "from_dict",
    "load_config",
    "with_overrides",
]


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the key."""


@dataclass(frozen=True)
class CaptureConfig:
    """Where packets come from."""

    iface: str | None = None  #: live capture interface (AF_PACKET)
    pcap: str | None = None  #: replay this capture file instead
    realtime: bool = False  #: replay at the capture's own pace
    bpf: str | None = None  #: optional BPF filter expression (tcpdump syntax)
    promiscuous: bool = True  #: put the interface in promiscuous mode
    snaplen: int = 65535  #: bytes kept per frame
    buffer_mb: int = 16  #: kernel capture buffer per socket (the ring, or the receive buffer), MiB
    ring: bool = True  #: read through a TPACKET_V3 mmap ring (false: one recvmsg per frame)
    retry_initial_s: float = 1.0  #: first wait after the interface is down or missing, s
    retry_max_s: float = 30.0  #: longest wait between retries, s
    tick_ms: int = 200  #: wall-clock tick in live mode (expiry with no traffic), ms
    workers: int | None = None  #: capture processes sharing iface (PACKET_FANOUT); null = auto


@dataclass(frozen=True)
class ModelConfig:
    """Which model bundle classifies flows."""

    path: str | None = None  #: bundle directory; None = the shipped default bundle
    threshold: float | None = None  #: attack-probability threshold; None = the bundle's
    site: str | None = None  #: site file from ``edge-nids learn`` (per-service baselines); None = none
    escalate: bool = True  #: apply the bundle's escalation rule (docs/agent.md "Escalation")


@dataclass(frozen=True)
class FlowsConfig:
    """Flow-table behaviour and bounds."""

    idle_timeout_s: float | None = None  #: no packet for this long ends a flow, s; null = profile default
    active_timeout_s: float | None = None  #: a flow longer than this is cut, s; null = profile default
    max_flows: int = 100_000  #: most flows kept open at once (LRU eviction beyond)
    memory_budget_mb: int = 64  #: flow-table memory budget, MiB (lowers max_flows if needed)
    classify_active_s: float = 0.5  #: classify open flows again after this much capture time, s
    classify_active_packets: int = 200  #: ... or after this many new packets


@dataclass(frozen=True)
class BatchConfig:
    """Micro-batching of flows into the classifier."""

    max_flows: int | None = None  #: classify when this many flows wait; null: the model's largest batch
    max_wait_ms: int = 100  #: ... or when the oldest has waited this long (capture time), ms


@dataclass(frozen=True)
class SuppressEntry:
    """One ``alerts.suppress`` entry: alerts matching every key it sets are not written.

    src/dest: an address or CIDR (IPv4 or IPv6) the alert's ``src_ip``/``dest_ip`` is in;
    dest_port: the alert's ``dest_port``; proto: ``tcp``, ``udp``, ``icmp``, ``ipv6-icmp``,
    ``sctp``, ``gre`` or a protocol number; family: the alert's attack family name
    (e.g. ``port scan``), matched against the alert's ``family`` field (no match when the
    alert has none).
    """

    src: str | None = None
    dest: str | None = None
    dest_port: int | None = None
    proto: str | None = None
    family: str | None = None


#: Protocol names a suppress entry accepts -> the EVE ``proto`` text they match.
PROTO_BY_NAME: dict[str, str] = {
    "tcp": "TCP",
    "udp": "UDP",
    "icmp": "ICMP",
    "ipv6-icmp": "IPv6-ICMP",
    "icmpv6": "IPv6-ICMP",
    "sctp": "SCTP",
    "gre": "GRE",
}


@dataclass(frozen=True)
class AlertsConfig:
    """Alert content and aggregation."""

    aggregate_window_s: float = 60.0  #: merge repeats of (src, dest, signature) per window; 0 = off
    max_groups: int = 10_000  #: most aggregation groups held; the oldest is flushed beyond
    signature: str = "edge-nids anomalous flow"  #: alert.signature text
    signature_id: int = 9_000_001  #: alert.signature_id
    category: str = "Anomalous network flow"  #: alert.category
    severity: int = 2  #: alert.severity (1 high .. 3 low)
    community_id_seed: int = 0  #: Community ID v1 seed (0..65535)
    suppress: tuple[SuppressEntry, ...] = ()  #: alerts not to write (flows are still classified)


@dataclass(frozen=True)
class SyslogConfig:
    """Alerts to syslog (one EVE line per message)."""

    enabled: bool = False
    address: str = "/dev/log"  #: unix socket path or host:port (UDP)
    facility: str = "local5"
    ident: str = "edge-nids"


@dataclass(frozen=True)
class MqttConfig:
    """Alerts to an MQTT broker (needs the ``mqtt`` extra: paho-mqtt)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    topic: str = "edge-nids/alerts"
    qos: int = 1
    client_id: str = ""  #: empty: let the broker choose
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 60


@dataclass(frozen=True)
class OutputsConfig:
    """Where alerts and classified flows go."""

    alerts: str | None = "-"  #: file path, "-" for stdout, or null for none
    flows: str | None = None  #: EVE flow events: file path, "-" or null
    syslog: SyslogConfig = field(default_factory=SyslogConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)


@dataclass(frozen=True)
class StatsConfig:
    """Periodic statistics."""

    interval_s: float = 60.0  #: log statistics this often (wall clock), s; 0 = only at exit
    eve: bool = False  #: also write an EVE ``stats`` event to the alert outputs
    prometheus_port: int | None = None  #: serve Prometheus text metrics on 127.0.0.1:PORT
    prometheus_address: str = "127.0.0.1"


@dataclass(frozen=True)
class AgentConfig:
    """The whole agent configuration."""

    capture: CaptureConfig = field(default_factory=CaptureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    flows: FlowsConfig = field(default_factory=FlowsConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)

    def validate(self) -> AgentConfig:
        """Check cross-field rules; return self."""
        c = self.capture
        if c.iface and c.pcap:
            raise ConfigError("config error: capture: set either iface or pcap, not both")
        if c.retry_max_s < c.retry_initial_s:
            raise ConfigError(
                f"config error: capture.retry_max_s: must be >= capture.retry_initial_s, got {c.retry_max_s}"
            )
        if not 0 <= self.alerts.community_id_seed <= 65535:
            raise ConfigError(
                "config error: alerts.community_id_seed: must be in 0..65535, "
                f"got {self.alerts.community_id_seed}"
            )
        if not 0 <= self.outputs.mqtt.qos <= 2:
            raise ConfigError(
                f"config error: outputs.mqtt.qos: must be 0, 1 or 2, got {self.outputs.mqtt.qos}"
            )
        if self.model.threshold is not None and not 0.0 <= self.model.threshold <= 1.0:
            raise ConfigError(f"config error: model.threshold: must be in [0, 1], got {self.model.threshold}")
        if not 1 <= self.alerts.severity <= 3:
            raise ConfigError(f"config error: alerts.severity: must be 1, 2 or 3, got {self.alerts.severity}")
        for i, entry in enumerate(self.alerts.suppress):
            _check_suppress(entry, f"alerts.suppress[{i}]")
        return self


def _check_suppress(e: SuppressEntry, key: str) -> None:
    """A suppress entry's values: addresses/CIDRs, port range, protocol; at least one key set."""
    import ipaddress

    if all(getattr(e, f.name) is None for f in dataclasses.fields(e)):
        names = ", ".join(f.name for f in dataclasses.fields(e))
        raise ConfigError(f"config error: {key}: set at least one of {names}")
    for name in ("src", "dest"):
        value = getattr(e, name)
        if value is not None:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ConfigError(
                    f"config error: {key}.{name}: not an IP address or CIDR, got {_describe(value)}"
                ) from None
    if e.dest_port is not None and not 0 <= e.dest_port <= 65535:
        raise ConfigError(f"config error: {key}.dest_port: must be a port in 0..65535, got {e.dest_port}")
    if e.proto is not None:
        p = e.proto.strip().lower()
        if p not in PROTO_BY_NAME and not (p.isdigit() and 0 <= int(p) <= 255):
            raise ConfigError(
                f"config error: {key}.proto: must be one of {', '.join(PROTO_BY_NAME)} "
                f"or a protocol number 0..255, got {_describe(e.proto)}"
            )
    if e.family is not None and not e.family.strip():
        raise ConfigError(f"config error: {key}.family: must not be empty")


# Fields that must be > 0 (the rest of the numbers must be >= 0).
_POSITIVE = {
    "capture.snaplen",
    "capture.buffer_mb",
    "capture.retry_initial_s",
    "capture.retry_max_s",
    "capture.tick_ms",
    "capture.workers",
    "flows.active_timeout_s",
    "flows.max_flows",
    "flows.memory_budget_mb",
    "flows.classify_active_s",
    "flows.classify_active_packets",
    "batch.max_flows",
    "batch.max_wait_ms",
    "alerts.max_groups",
    "alerts.signature_id",
    "outputs.mqtt.port",
    "outputs.mqtt.keepalive_s",
    "stats.prometheus_port",
}


def _describe(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _convert(key: str, tp: Any, value: Any) -> Any:
    """Check and convert one scalar value to the annotated type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(key, args[0], value)
    if value is None:
        raise ConfigError(f"config error: {key}: must not be null")
    positive = key in _POSITIVE
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config error: {key}: must be true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int) or (value <= 0 if positive else value < 0):
            kind = "a positive integer" if positive else "a non-negative integer"
            raise ConfigError(f"config error: {key}: must be {kind}, got {_describe(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"config error: {key}: must be a number, got {_describe(value)}")
        if value <= 0 if positive else value < 0:
            kind = "a positive number" if positive else "a non-negative number"
            raise ConfigError(f"config error: {key}: must be {kind}, got {_describe(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config error: {key}: must be a string, got {_describe(value)}")
        return value
    raise ConfigError(f"config error: {key}: unsupported type")  # pragma: no cover


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        where = prefix or "top level"
        raise ConfigError(f"config error: {where}: must be a mapping, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            full = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(f"config error: {full}: unknown key (known: {', '.join(sorted(names))})")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        full = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = _build(tp, data[f.name], full)
        elif typing.get_origin(tp) is tuple:
            kwargs[f.name] = _build_list(typing.get_args(tp)[0], data[f.name], full)
        else:
            kwargs[f.name] = _convert(full, tp, data[f.name])
    return cls(**kwargs)


def _build_list(cls: type, data: Any, key: str) -> tuple[Any, ...]:
    """A list of mappings (``alerts.suppress``) -> a tuple of ``cls``; null is an empty list."""
    if data is None:
        return ()
    if not isinstance(data, (list, tuple)):
        raise ConfigError(f"config error: {key}: must be a list, got {_describe(data)}")
    return tuple(_build(cls, item, f"{key}[{i}]") for i, item in enumerate(data))


def from_dict(data: Any) -> AgentConfig:
    """Build and validate a config from parsed YAML (a nested dict)."""
    return _build(AgentConfig, data, "").validate()


def load_config(path: str | Path | None) -> AgentConfig:
    """Load a YAML config file; ``None`` gives the defaults."""
    if path is None:
        return AgentConfig().validate()
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config error: cannot read {p}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config error: {p}: not valid YAML: {exc}".splitlines()[0]) from None
    return from_dict(data)


def with_overrides(cfg: AgentConfig, overrides: dict[str, Any]) -> AgentConfig:
    """Return ``cfg`` with dotted keys (``"capture.iface"``) replaced; values are checked."""
    data = dataclasses.asdict(cfg)
    for dotted, value in overrides.items():
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"config error: {dotted}: unknown key")
        node[parts[-1]] = value
    return from_dict(data)
