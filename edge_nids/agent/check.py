"""``edge-nids check-config``: what a reload would load, checked before the agent is signalled.

The unit's ``ExecReload`` runs this first (nginx's ``nginx -t && kill -HUP``), so
``systemctl reload edge-nids`` fails, with the reason in its output and the
journal, when the new config or model would be refused; the running agent is
then not signalled at all and keeps its config and model.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from edge_nids.agent.capture import compile_bpf
from edge_nids.agent.config import AgentConfig, load_config
from edge_nids.agent.service import AgentError, load_model

__all__ = ["check_config"]


def check_config(path: str | None) -> list[str]:
    """Validate the config at ``path`` and load its model; lines describing it, or an error.

    Raises ConfigError (a bad key or value) or AgentError (model, filter or output file), each
    with a one-line message. A missing interface is a note, not an error: the agent waits for it.
    """
    cfg = load_config(path)
    lines = [f"config {path or '(defaults)'}: OK"]
    c = cfg.capture
    if c.bpf:
        try:
            compile_bpf(c.bpf, c.iface)
        except ValueError as exc:
            raise AgentError(str(exc)) from None
    if c.pcap:
        lines.append(f"capture: replay {c.pcap}")
    elif c.iface:
        lines.append(f"capture: live on {c.iface}" + (f", filter {c.bpf!r}" if c.bpf else ""))
        how = "TPACKET_V3 ring" if c.ring else "recvmsg, socket receive buffer"
        lines.append(f"capture buffer: {how} of {c.buffer_mb} MiB per capture socket (one per worker)")
        try:
            socket.if_nametoindex(c.iface)
        except OSError:
            lines.append(f"note: no interface {c.iface} here now: the agent waits for it (STATUS says so)")
    else:
        raise AgentError("nothing to capture: set capture.iface (or capture.pcap)")
    model = load_model(cfg)
    esc = f"escalation {model.escalation.describe()}" if model.escalation else "no escalation"
    lines.append(
        f"model: {model.name} {model.version} "
        f"(profile {model.profile}, threshold {model.threshold:.4f}, {esc})"
    )
    lines.extend(_check_outputs(cfg))
    return lines


def _check_outputs(cfg: AgentConfig) -> list[str]:
    """The file outputs can be appended to (or created) by this user; nothing is written.

    AgentError naming the first that cannot.
    """
    lines = []
    for what, target in (("alerts", cfg.outputs.alerts), ("flows", cfg.outputs.flows)):
        if not target or target == "-":
            lines.append(f"{what}: {'stdout' if target else 'off'}")
            continue
        path = Path(target)
        if path.is_dir():
            raise AgentError(f"outputs.{what}: {target} is a directory")
        if path.exists():
            ok, where = os.access(path, os.W_OK), path
        else:  # the agent creates the file and missing directories: the nearest existing one decides
            where = path.parent
            while not where.exists() and where != where.parent:
                where = where.parent
            ok = os.access(where, os.W_OK | os.X_OK)
        if not ok:
            raise AgentError(f"outputs.{what}: cannot write {target} (no write permission on {where})")
        lines.append(f"{what}: {target}")
    return lines
