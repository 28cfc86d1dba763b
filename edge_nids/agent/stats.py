"""Agent counters and classify-latency percentiles, rendered as a log line, EVE stats or Prometheus text."""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["SURICATA_COUNTERS", "AgentStats", "PrometheusServer", "percentile"]

#: Counters that Suricata's EVE ``stats`` names: ours -> (section, Suricata's name).
SURICATA_COUNTERS: dict[str, tuple[str, str]] = {
    "packets": ("decoder", "pkts"),
    "bytes": ("decoder", "bytes"),
    "kernel_drops": ("capture", "kernel_drops"),
    "capture_errors": ("capture", "errors"),
    "open_flows": ("flow", "active"),
    "alerts": ("detect", "alert"),
    "suppressed": ("detect", "alerts_suppressed"),
}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list; 0.0 if empty."""
    if not values:
        return 0.0
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q * len(s) / 100.0) - 1))
    return float(s[k])


@dataclass
class AgentStats:
    """Counters since start. Latencies: the last ``window`` classifier calls, µs per call and per flow."""

    packets: int = 0  #: frames read from the capture
    bytes: int = 0  #: wire bytes of those frames
    filtered: int = 0  #: replayed frames capture.bpf rejected (not in packets; live, the kernel drops them)
    decoded: int = 0  #: frames that became IP packets
    flows: int = 0  #: flows ended and classified
    flows_active_classified: int = 0  #: classifications of still-open flows
    alerts: int = 0  #: alerts raised (before suppression and aggregation)
    suppressed: int = 0  #: alerts alerts.suppress silenced (not written)
    escalated: int = 0  #: alerts raised below the threshold by their source's escalation
    alert_lines: int = 0  #: alert lines written (after aggregation)
    batches: int = 0  #: classifier calls
    kernel_drops: int = 0  #: packets the kernel dropped (PACKET_STATISTICS)
    evicted: int = 0  #: flows evicted by the table's bounds
    dropped_single: int = 0  #: one-packet flows the cicids2017 profile drops (as CICFlowMeter did)
    remnants: int = 0  #: packets trailing a closed TCP connection, absorbed (corrected profile)
    sink_errors: int = 0
    capture_errors: int = 0  #: interface down / open failures
    open_flows: int = 0  #: flows in the flow table now (a gauge)
    malformed: dict[str, int] = field(default_factory=dict)  #: decoder counts by reason
    window: int = 4096
    _lat_batch: deque[float] = field(default_factory=deque)
    _lat_flow: deque[float] = field(default_factory=deque)

    def add_latency(self, batch_us: float, n_flows: int) -> None:
        """Record one classifier call that took ``batch_us`` µs for ``n_flows`` flows."""
        self.batches += 1
        for d, v in ((self._lat_batch, batch_us), (self._lat_flow, batch_us / max(1, n_flows))):
            d.append(v)
            if len(d) > self.window:
                d.popleft()

    def snapshot(self) -> dict[str, Any]:
        """Plain dict of every counter plus latency p50/p99 (µs)."""
        lb, lf = list(self._lat_batch), list(self._lat_flow)
        return {
            "packets": self.packets,
            "bytes": self.bytes,
            "filtered": self.filtered,
            "decoded": self.decoded,
            "flows": self.flows,
            "flows_active_classified": self.flows_active_classified,
            "alerts": self.alerts,
            "suppressed": self.suppressed,
            "escalated": self.escalated,
            "alert_lines": self.alert_lines,
            "batches": self.batches,
            "kernel_drops": self.kernel_drops,
            "evicted": self.evicted,
            "dropped_single": self.dropped_single,
            "remnants": self.remnants,
            "sink_errors": self.sink_errors,
            "capture_errors": self.capture_errors,
            "open_flows": self.open_flows,
            "malformed": dict(sorted(self.malformed.items())),
            "classify_batch_us_p50": round(percentile(lb, 50), 1),
            "classify_batch_us_p99": round(percentile(lb, 99), 1),
            "classify_flow_us_p50": round(percentile(lf, 50), 1),
            "classify_flow_us_p99": round(percentile(lf, 99), 1),
        }

    def eve(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(Suricata-named ``stats`` sections, our other counters) for an EVE stats event.

        ``decoder.invalid`` is the malformed frames (non-IP frames are not invalid).
        """
        s = self.snapshot()
        suricata: dict[str, dict[str, Any]] = {}
        for name, (section, key) in SURICATA_COUNTERS.items():
            suricata.setdefault(section, {})[key] = s[name]
        mal = s["malformed"]
        suricata["decoder"]["invalid"] = sum(mal.values()) - mal.get("non_ip", 0)
        own = {k: v for k, v in s.items() if k not in SURICATA_COUNTERS}
        return suricata, own

    def log_line(self) -> str:
        """One human-readable line for the log."""
        s = self.snapshot()
        # frames that are not IP (ARP, LLDP, ...) are skipped, not malformed
        non_ip = s["malformed"].get("non_ip", 0)
        mal = sum(s["malformed"].values()) - non_ip
        return (
            f"packets={s['packets']} bytes={s['bytes']} filtered={s['filtered']} flows={s['flows']} "
            f"alerts={s['alerts']} suppressed={s['suppressed']} alert_lines={s['alert_lines']} "
            f"malformed={mal} non_ip={non_ip} "
            f"kernel_drops={s['kernel_drops']} "
            f"evicted={s['evicted']} dropped_single={s['dropped_single']} sink_errors={s['sink_errors']} "
            f"classify_us p50={s['classify_batch_us_p50']} "
            f"p99={s['classify_batch_us_p99']} (per flow p50={s['classify_flow_us_p50']})"
        )

    def status_line(self) -> str:
        """Short text for systemd's STATUS=."""
        return f"packets={self.packets} flows={self.flows} alerts={self.alerts} drops={self.kernel_drops}"

    def prometheus(self) -> str:
        """Prometheus text exposition format (version 0.0.4)."""
        s = self.snapshot()
        lines: list[str] = []
        for name in (
            "packets",
            "bytes",
            "filtered",
            "decoded",
            "flows",
            "flows_active_classified",
            "alerts",
            "suppressed",
            "escalated",
            "alert_lines",
            "batches",
            "kernel_drops",
            "evicted",
            "dropped_single",
            "remnants",
            "sink_errors",
            "capture_errors",
        ):
            lines += [f"# TYPE edge_nids_{name}_total counter", f"edge_nids_{name}_total {s[name]}"]
        lines += ["# TYPE edge_nids_open_flows gauge", f"edge_nids_open_flows {s['open_flows']}"]
        lines.append("# TYPE edge_nids_malformed_total counter")
        for reason, n in s["malformed"].items():
            lines.append(f'edge_nids_malformed_total{{reason="{reason}"}} {n}')
        lines.append("# TYPE edge_nids_classify_batch_microseconds gauge")
        for q in ("50", "99"):
            lines.append(
                f'edge_nids_classify_batch_microseconds{{quantile="0.{q}"}} {s["classify_batch_us_p" + q]}'
            )
        return "\n".join(lines) + "\n"


class PrometheusServer:
    """Serves ``AgentStats.prometheus()`` at ``/metrics`` from a daemon thread (stdlib http.server)."""

    def __init__(self, stats_fn: Any, address: str, port: int) -> None:
        fn = stats_fn

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = fn().prometheus().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self.httpd = ThreadingHTTPServer((address, port), Handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="prometheus", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
