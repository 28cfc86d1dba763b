"""``edge-nids learn``: argument parsing only; the work is imported when it runs."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

__all__ = ["learn_command", "register"]


def register(sub: Any) -> None:
    """Add ``edge-nids learn`` to the top-level subparsers."""
    p = sub.add_parser(
        "learn",
        help="learn a site file from traffic declared normal (per-service score baselines)",
        description=(
            "Run the model bundle over traffic you declare normal (capture files, or live traffic for "
            "--duration) and write a site file; 'edge-nids run --site SITE.json' then stops alerting "
            "on traffic like it, while scans, floods and brute force still alert."
        ),
    )
    p.add_argument("pcaps", nargs="*", metavar="PCAP", help="capture files of normal traffic")
    p.add_argument("--iface", metavar="IF", help="learn from live traffic on this interface instead")
    p.add_argument(
        "--duration", default="24h", metavar="T", help="how long to learn live (90s, 30m, 24h, 7d)"
    )
    p.add_argument("-o", "--output", required=True, metavar="SITE.json", help="site file to write")
    p.add_argument("--model", metavar="BUNDLE", help="model bundle directory (default: the shipped bundle)")
    p.add_argument("--config", metavar="YAML", help="agent config (flow settings, threshold, BPF filter)")
    p.add_argument(
        "--threshold", type=float, metavar="P", help="attack-probability threshold (default: bundle's)"
    )
    p.add_argument("--quantile", type=float, default=0.999, metavar="Q", help="score quantile per service")
    p.add_argument("--margin", type=float, default=0.02, metavar="M", help="added to the quantile")
    p.add_argument(
        "--min-flows", type=int, default=20, metavar="N", help="fewest flows for a service baseline"
    )
    p.add_argument("--by-address", action="store_true", help="services per server address, not only port")
    p.add_argument(
        "--force", action="store_true", help="write the site file even if the traffic looks like an attack"
    )
    p.set_defaults(func=learn_command)


def learn_command(args: argparse.Namespace) -> int:
    """``edge-nids learn``."""
    from edge_nids.agent.config import ConfigError, load_config, with_overrides
    from edge_nids.agent.families import FamilyError, load_family_model
    from edge_nids.agent.learn import (
        LearnParams,
        LearnRefused,
        format_report,
        learn_live,
        learn_pcaps,
        parse_duration,
    )
    from edge_nids.agent.service import AgentError, load_model
    from edge_nids.agent.site import SiteError
    from edge_nids.flows.pcap import CaptureError

    if args.verbose == 0:
        logging.getLogger("edge_nids").setLevel(logging.INFO)
    if bool(args.pcaps) == bool(args.iface):
        print("edge-nids learn: give capture files or --iface IF (not both)", file=sys.stderr)
        return 2
    overrides: dict[str, Any] = {"model.site": None}
    if args.model:
        overrides["model.path"] = args.model
    if args.threshold is not None:
        overrides["model.threshold"] = args.threshold
    if not 0.0 < args.quantile <= 1.0 or args.margin < 0 or args.min_flows < 1:
        print(
            "edge-nids learn: --quantile must be in (0, 1], --margin >= 0, --min-flows >= 1", file=sys.stderr
        )
        return 2
    params = LearnParams(
        quantile=args.quantile,
        margin=args.margin,
        min_flows=args.min_flows,
        by_address=args.by_address,
        force=args.force,
    )
    try:
        cfg = with_overrides(load_config(args.config), overrides)
        model = load_model(cfg)
        families = load_family_model()
        if args.iface:
            result = learn_live(cfg, model, families, args.iface, parse_duration(args.duration), params)
        else:
            result = learn_pcaps(cfg, model, families, args.pcaps, params)
    except LearnRefused as exc:
        print(f"edge-nids learn: refused: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, AgentError, FamilyError, SiteError, CaptureError, OSError, ValueError) as exc:
        print(f"edge-nids learn: {exc}", file=sys.stderr)
        return 1
    print(format_report(result))
    try:
        result.site.write(args.output)
    except OSError as exc:
        print(f"edge-nids learn: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} (model {model.name}); apply it with: edge-nids run --site {args.output} ...")
    return 0
