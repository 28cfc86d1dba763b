"""``edge-nids install-service``: install the systemd unit, an example config and a logrotate rule.

The unit is ``systemd/edge-nids.service`` (shipped in the package as
``edge_nids/agent/data/edge-nids.service``) with ``ExecStart`` pointing at the
``edge-nids`` executable that runs this command: the console script in
``sys.argv[0]``, or the one next to the running interpreter (``python -m
edge_nids.cli``), never merely the first ``edge-nids`` on PATH. The config's
``capture.iface`` is ``--iface``, else the default route's interface. An
existing config is never overwritten.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from edge_nids.agent.routes import default_route_iface

__all__ = [
    "CONFIG_EXAMPLE",
    "LOGROTATE_FILE",
    "UNIT_FILE",
    "InstallError",
    "install_service",
    "render_config",
    "render_unit",
    "running_executable",
]

_DATA = Path(__file__).resolve().parent / "data"
#: The packaged unit file, example config and logrotate rule.
UNIT_FILE = _DATA / "edge-nids.service"
CONFIG_EXAMPLE = _DATA / "config.example.yaml"
LOGROTATE_FILE = _DATA / "edge-nids.logrotate"
_DEFAULT_EXEC = "/usr/local/bin/edge-nids"
_EXAMPLE_IFACE_LINE = "  iface: eth0\n"


class InstallError(RuntimeError):
    """The service could not be installed; the message says why."""


def running_executable(argv0: str | None = None, python: str | None = None) -> str:
    """The ``edge-nids`` that runs this process: ``argv0`` if it is that console script, else the
    script in the running interpreter's environment (``python``'s directory); InstallError if neither.
    """
    a0 = Path(argv0 if argv0 is not None else sys.argv[0])
    if a0.name == "edge-nids" and a0.is_file():
        return str(a0.resolve())
    # `python -m edge_nids.cli`: the environment's own script (the venv's bin/, not resolved: a venv's
    # python is a symlink to the base interpreter, whose directory holds no edge-nids)
    cand = Path(python if python is not None else sys.executable).absolute().parent / "edge-nids"
    if cand.is_file():
        return str(cand)
    raise InstallError(
        f"cannot tell which edge-nids runs this (no {cand}); run ENV/bin/edge-nids install-service "
        "or pass --exec PATH"
    )


def render_unit(executable: str) -> str:
    """The unit text with ExecStart (and ExecReload's config check) running ``executable``."""
    text = UNIT_FILE.read_text(encoding="utf-8")
    return text.replace(f"{_DEFAULT_EXEC} ", f"{executable} ")


def render_config(iface: str | None) -> str:
    """The example config with ``capture.iface`` set to ``iface`` (the example's eth0 if None)."""
    text = CONFIG_EXAMPLE.read_text(encoding="utf-8")
    if iface is None:
        return text
    if _EXAMPLE_IFACE_LINE not in text:
        raise InstallError(f"{CONFIG_EXAMPLE}: no {_EXAMPLE_IFACE_LINE.strip()!r} line to set the interface")
    return text.replace(_EXAMPLE_IFACE_LINE, f"  iface: {iface}\n", 1)


def _configured_iface(path: Path) -> str | None:
    """``capture.iface`` of an existing config file, None if unset or unreadable."""
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        iface = (data.get("capture") or {}).get("iface")
    except (ImportError, OSError, AttributeError, ValueError):  # yaml.YAMLError is a ValueError
        return None
    return str(iface) if iface else None


def install_service(
    prefix: str = "/",
    dry_run: bool = False,
    executable: str | None = None,
    reload: bool = True,
    iface: str | None = None,
    proc_net: str = "/proc/net",
) -> Iterator[str]:
    """Install the unit, config and logrotate rule below ``prefix``; yields one line per action."""
    root = Path(prefix)
    exe = executable or running_executable()
    unit_dst = root / "etc/systemd/system/edge-nids.service"
    cfg_dst = root / "etc/edge-nids/config.yaml"
    rot_dst = root / "etc/logrotate.d/edge-nids"
    verb = "would " if dry_run else ""
    if exe.startswith(("/home/", "/root/")):
        yield (
            f"warning: ExecStart={exe} is under /home or /root, which ProtectHome=yes hides from the "
            "service; install edge-nids system-wide (e.g. a venv in /opt) or pass --exec"
        )
    if iface:
        yield f"capture interface: {iface} (--iface)"
    else:
        iface = default_route_iface(proc_net)
        if iface:
            yield f"capture interface: {iface} (the default route's; --iface IF to choose another)"
        else:
            yield "warning: no default route to take the capture interface from: pass --iface IF"
    unit = render_unit(exe)
    config = render_config(iface)
    yield f"{verb}write {unit_dst} (ExecStart={exe} run --config /etc/edge-nids/config.yaml)"
    if cfg_dst.exists():
        have = _configured_iface(cfg_dst)
        yield f"keep existing {cfg_dst} (capture.iface: {have})"
        if iface and have != iface:
            yield f"note: {cfg_dst} captures on {have}, not {iface}: edit capture.iface to change it"
    else:
        yield f"{verb}write {cfg_dst} (example config, capture.iface: {iface or 'eth0'})"
    yield f"{verb}write {rot_dst} (daily, 7 kept, SIGHUP reopens the files)"
    systemctl = shutil.which("systemctl")
    do_reload = reload and systemctl is not None and root.resolve() == Path("/")
    if do_reload:
        yield f"{verb}run systemctl daemon-reload"
    if dry_run:
        yield "dry run: nothing changed"
        return
    try:
        for dst, text in ((unit_dst, unit), (rot_dst, LOGROTATE_FILE.read_text(encoding="utf-8"))):
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(text, encoding="utf-8")
            dst.chmod(0o644)
        if not cfg_dst.exists():
            cfg_dst.parent.mkdir(parents=True, exist_ok=True)
            cfg_dst.write_text(config, encoding="utf-8")
            cfg_dst.chmod(0o644)
    except OSError as exc:
        raise InstallError(f"cannot write {exc.filename}: {exc.strerror} (run as root?)") from None
    if do_reload and systemctl is not None:
        proc = subprocess.run([systemctl, "daemon-reload"], capture_output=True, text=True)
        if proc.returncode != 0:
            yield f"warning: systemctl daemon-reload failed: {proc.stderr.strip()}"
    yield f"next: systemctl enable --now edge-nids (check the config first: {exe} check-config)"
