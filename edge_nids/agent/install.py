"""``edge-nids install-service``: install the systemd unit and an example config.

The unit is ``systemd/edge-nids.service`` (shipped in the package as
``edge_nids/agent/data/edge-nids.service``) with ``ExecStart`` pointing at the
``edge-nids`` executable that runs this command. An existing config is never
overwritten.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["CONFIG_EXAMPLE", "UNIT_FILE", "InstallError", "install_service", "render_unit"]

_DATA = Path(__file__).resolve().parent / "data"
#: The packaged unit file and example config.
UNIT_FILE = _DATA / "edge-nids.service"
CONFIG_EXAMPLE = _DATA / "config.example.yaml"
_DEFAULT_EXEC = "/usr/local/bin/edge-nids"


class InstallError(RuntimeError):
    """The service could not be installed; the message says why."""


def _find_executable() -> str:
    exe = shutil.which("edge-nids")
    if exe is None:
        cand = Path(sys.executable).parent / "edge-nids"
        exe = str(cand) if cand.exists() else _DEFAULT_EXEC
    return os.path.abspath(exe)


def render_unit(executable: str) -> str:
    """The unit text with ExecStart running ``executable``."""
    text = UNIT_FILE.read_text(encoding="utf-8")
    return text.replace(f"ExecStart={_DEFAULT_EXEC} ", f"ExecStart={executable} ")


def install_service(
    prefix: str = "/", dry_run: bool = False, executable: str | None = None, reload: bool = True
) -> Iterator[str]:
    """Install the unit and config below ``prefix``; yields one line per action (done or planned)."""
    root = Path(prefix)
    exe = executable or _find_executable()
    unit_dst = root / "etc/systemd/system/edge-nids.service"
    cfg_dst = root / "etc/edge-nids/config.yaml"
    verb = "would " if dry_run else ""
    if exe.startswith(("/home/", "/root/")):
        yield (
            f"warning: ExecStart={exe} is under /home or /root, which ProtectHome=yes hides from the "
            "service; install edge-nids system-wide (e.g. a venv in /opt) or pass --exec"
        )
    unit = render_unit(exe)
    yield f"{verb}write {unit_dst} (ExecStart={exe} run --config /etc/edge-nids/config.yaml)"
    if cfg_dst.exists():
        yield f"keep existing {cfg_dst}"
    else:
        yield f"{verb}write {cfg_dst} (example config: set capture.iface)"
    systemctl = shutil.which("systemctl")
    do_reload = reload and systemctl is not None and root.resolve() == Path("/")
    if do_reload:
        yield f"{verb}run systemctl daemon-reload"
    if dry_run:
        yield "dry run: nothing changed"
        return
    try:
        unit_dst.parent.mkdir(parents=True, exist_ok=True)
        unit_dst.write_text(unit, encoding="utf-8")
        unit_dst.chmod(0o644)
        if not cfg_dst.exists():
            cfg_dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(CONFIG_EXAMPLE, cfg_dst)
            cfg_dst.chmod(0o644)
    except OSError as exc:
        raise InstallError(f"cannot write {exc.filename}: {exc.strerror} (run as root?)") from None
    if do_reload and systemctl is not None:
        proc = subprocess.run([systemctl, "daemon-reload"], capture_output=True, text=True)
        if proc.returncode != 0:
            yield f"warning: systemctl daemon-reload failed: {proc.stderr.strip()}"
    yield "next: edit /etc/edge-nids/config.yaml, then: systemctl enable --now edge-nids"
