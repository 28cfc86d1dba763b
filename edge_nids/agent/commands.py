"""``edge-nids run``, ``check-config``, ``install-service``: argument parsing; the work is imported lazily."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

__all__ = ["check_config_command", "install_service_command", "register", "run_command"]


def register(sub: Any) -> None:
    """Add the agent's subcommands to the top-level subparsers."""
    p = sub.add_parser(
        "run",
        help="capture (live or from a pcap), classify flows in real time, write EVE alerts",
        description=(
            "Run the detector: flows from a live interface (AF_PACKET) or a capture file are "
            "classified by the model bundle; alerts are written as Suricata EVE JSON lines. "
            "Flags override the config file."
        ),
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--iface", metavar="IF", help="capture live on this interface (needs CAP_NET_RAW)")
    src.add_argument("--pcap", metavar="FILE", help="replay this pcap/pcapng through the same pipeline")
    src.add_argument(
        "--demo", action="store_true", help="replay the bundled demo capture (a SYN port scan of 150 ports)"
    )
    p.add_argument("--realtime", action="store_true", help="replay at the capture's own pace")
    p.add_argument("--model", metavar="BUNDLE", help="model bundle directory (default: the shipped bundle)")
    p.add_argument("--site", metavar="SITE.json", help="site file of edge-nids learn (config: model.site)")
    p.add_argument("--config", metavar="YAML", help="config file (see systemd/config.example.yaml)")
    p.add_argument("--alerts", metavar="PATH|-", help="alert output: file path or - for stdout")
    p.add_argument("--flows", metavar="PATH|-", help="also write every classified flow as an EVE flow event")
    p.add_argument(
        "--bpf", metavar="EXPR", help="BPF capture filter (tcpdump syntax), live or replaying --pcap/--demo"
    )
    p.add_argument(
        "--threshold", type=float, metavar="P", help="attack-probability threshold (default: bundle's)"
    )
    p.add_argument(
        "--stats-interval", type=float, metavar="S", help="log statistics every S seconds (0: at exit)"
    )
    p.add_argument("--stats-eve", action="store_true", help="also write EVE stats events to the alert output")
    p.add_argument("--aggregate-window", type=float, metavar="S", help="alert aggregation window, s (0: off)")
    p.add_argument("--max-flows", type=int, metavar="N", help="most open flows held (LRU eviction beyond)")
    p.add_argument("--workers", type=int, metavar="N", help="capture processes on --iface (PACKET_FANOUT)")
    p.add_argument("--prometheus-port", type=int, metavar="PORT", help="serve Prometheus metrics on PORT")
    p.add_argument("--no-promisc", action="store_true", help="do not put the interface in promiscuous mode")
    p.set_defaults(func=run_command)

    c = sub.add_parser(
        "check-config",
        help="validate a config and load its model, as a reload would (exit 0: it would be accepted)",
        description=(
            "Validate the config file and load the model it names, without starting the agent; "
            "exit 2 for a config error, 1 for a model, filter or output problem. The systemd unit's "
            "ExecReload runs it before signalling the agent, so a refused reload fails visibly."
        ),
    )
    c.add_argument("--config", metavar="YAML", help="config file (default: the built-in defaults)")
    c.set_defaults(func=check_config_command)

    q = sub.add_parser(
        "install-service",
        help="install the systemd unit, an example config and a logrotate rule",
        description=(
            "Install systemd/edge-nids.service (ExecStart: this edge-nids), /etc/edge-nids/config.yaml "
            "(kept if present; capture.iface: --iface, else the default route's interface) and "
            "/etc/logrotate.d/edge-nids."
        ),
    )
    q.add_argument(
        "--iface", metavar="IF", help="capture interface for the config (default: the default route's)"
    )
    q.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    q.add_argument("--prefix", default="/", metavar="DIR", help="install below this root (default: /)")
    q.add_argument("--exec", dest="executable", metavar="PATH", help="edge-nids executable for ExecStart")
    q.add_argument("--no-reload", action="store_true", help="do not run systemctl daemon-reload")
    q.set_defaults(func=install_service_command)

    from edge_nids.agent.learn_commands import register as register_learn

    register_learn(sub)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    o: dict[str, Any] = {}
    pairs = {
        "iface": "capture.iface",
        "pcap": "capture.pcap",
        "bpf": "capture.bpf",
        "model": "model.path",
        "site": "model.site",
        "threshold": "model.threshold",
        "alerts": "outputs.alerts",
        "flows": "outputs.flows",
        "stats_interval": "stats.interval_s",
        "aggregate_window": "alerts.aggregate_window_s",
        "max_flows": "flows.max_flows",
        "workers": "capture.workers",
        "prometheus_port": "stats.prometheus_port",
    }
    for attr, key in pairs.items():
        v = getattr(args, attr, None)
        if v is not None:
            o[key] = v
    if args.iface:
        o["capture.pcap"] = None
    if args.demo:
        from pathlib import Path

        o["capture.pcap"] = str(Path(__file__).resolve().parent / "data" / "demo_port_scan.pcap")
    if args.pcap or args.demo:
        o["capture.iface"] = None
    if args.realtime:
        o["capture.realtime"] = True
    if args.stats_eve:
        o["stats.eve"] = True
    if args.no_promisc:
        o["capture.promiscuous"] = False
    return o


def run_command(args: argparse.Namespace) -> int:
    """``edge-nids run``."""
    from edge_nids.agent.config import ConfigError, load_config, with_overrides
    from edge_nids.agent.service import AgentError, Service

    if args.verbose == 0:
        logging.getLogger("edge_nids").setLevel(logging.INFO)
    overrides = _overrides(args)
    try:
        cfg = with_overrides(load_config(args.config), overrides)
    except ConfigError as exc:
        print(f"edge-nids run: {exc}", file=sys.stderr)
        return 2
    try:
        return Service(cfg, args.config, overrides).run()
    except AgentError as exc:
        print(f"edge-nids run: {exc}", file=sys.stderr)
        return 1


def install_service_command(args: argparse.Namespace) -> int:
    """``edge-nids install-service``."""
    from edge_nids.agent.install import InstallError, install_service

    try:
        for line in install_service(
            prefix=args.prefix,
            dry_run=args.dry_run,
            executable=args.executable,
            reload=not args.no_reload,
            iface=args.iface,
        ):
            print(line)
    except InstallError as exc:
        print(f"edge-nids install-service: {exc}", file=sys.stderr)
        return 1
    return 0


def check_config_command(args: argparse.Namespace) -> int:
    """``edge-nids check-config``."""
    from edge_nids.agent.check import check_config
    from edge_nids.agent.config import ConfigError
    from edge_nids.agent.service import AgentError

    try:
        lines = check_config(args.config)
    except ConfigError as exc:
        print(f"edge-nids check-config: {exc}", file=sys.stderr)
        return 2
    except AgentError as exc:
        print(f"edge-nids check-config: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0
