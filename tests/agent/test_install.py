"""install-service (dry run and a real install under a prefix), its choice of executable and
interface, the logrotate rule, and the unit's validity."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_nids.agent.install import (
    CONFIG_EXAMPLE,
    LOGROTATE_FILE,
    install_service,
    render_config,
    render_unit,
    running_executable,
)
from edge_nids.agent.routes import default_route_iface

VENV_EDGE_NIDS = Path(sys.executable).absolute().parent / "edge-nids"

ROUTE_HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"


def _cli(*args: str, env: dict[str, str] | None = None, exe: list[str] | None = None):
    cmd = exe or [sys.executable, "-m", "edge_nids.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env)


def _proc_net(tmp_path: Path, route: str = "", ipv6_route: str = "") -> Path:
    """A stand-in /proc/net with these route tables."""
    d = tmp_path / "proc_net"
    d.mkdir(parents=True)
    (d / "route").write_text(ROUTE_HEADER + route)
    (d / "ipv6_route").write_text(ipv6_route)
    return d


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    out = _cli(
        "install-service", "--dry-run", "--prefix", str(tmp_path), "--exec", "/opt/edge-nids/bin/edge-nids"
    )
    assert out.returncode == 0, out.stderr
    assert f"would write {tmp_path}/etc/systemd/system/edge-nids.service" in out.stdout
    assert "ExecStart=/opt/edge-nids/bin/edge-nids run --config /etc/edge-nids/config.yaml" in out.stdout
    assert "dry run: nothing changed" in out.stdout
    assert list(tmp_path.iterdir()) == []


def test_install_under_prefix_keeps_existing_config(tmp_path: Path, repo_root: Path) -> None:
    root = tmp_path / "root"
    proc_net = _proc_net(tmp_path, "end0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")
    kw = {
        "prefix": str(root),
        "executable": "/opt/en/bin/edge-nids",
        "reload": False,
        "proc_net": str(proc_net),
    }
    lines = list(install_service(**kw))
    unit = (root / "etc/systemd/system/edge-nids.service").read_text()
    assert "ExecStart=/opt/en/bin/edge-nids run --config /etc/edge-nids/config.yaml" in unit
    assert "ExecReload=/opt/en/bin/edge-nids check-config --config /etc/edge-nids/config.yaml" in unit
    assert "capture interface: end0 (the default route's; --iface IF to choose another)" in lines
    cfg = root / "etc/edge-nids/config.yaml"
    example = (repo_root / "systemd/config.example.yaml").read_text()
    assert cfg.read_text() == example.replace("  iface: eth0\n", "  iface: end0\n")
    from edge_nids.agent.config import load_config

    assert load_config(cfg).capture.iface == "end0"
    assert (root / "etc/logrotate.d/edge-nids").read_bytes() == LOGROTATE_FILE.read_bytes()
    assert any("next:" in x for x in lines)
    cfg.write_text("capture:\n  iface: wlan0\n")
    lines = list(install_service(**kw))
    assert f"keep existing {cfg} (capture.iface: wlan0)" in lines
    assert any(x.startswith("note:") and "captures on wlan0, not end0" in x for x in lines)
    assert cfg.read_text() == "capture:\n  iface: wlan0\n"


def test_iface_flag_wins_and_is_written(tmp_path: Path) -> None:
    root = tmp_path / "root"
    lines = list(
        install_service(prefix=str(root), executable="/opt/en/bin/edge-nids", reload=False, iface="wlan0")
    )
    assert "capture interface: wlan0 (--iface)" in lines
    assert "  iface: wlan0\n" in (root / "etc/edge-nids/config.yaml").read_text()


def test_no_default_route_is_said(tmp_path: Path) -> None:
    root = tmp_path / "root"
    proc_net = _proc_net(tmp_path)
    lines = list(
        install_service(prefix=str(root), executable="/x/edge-nids", reload=False, proc_net=str(proc_net))
    )
    assert any(x.startswith("warning: no default route") and "--iface" in x for x in lines)
    assert (root / "etc/edge-nids/config.yaml").read_text() == CONFIG_EXAMPLE.read_text()


def test_default_route_iface_reads_proc_net(tmp_path: Path) -> None:
    # two IPv4 defaults: the lower metric wins; a non-default route and a down one do not count
    v4 = (
        "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
        "end0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
        "eth9\t0000A8C0\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        "eth8\t00000000\t0101A8C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n"
    )
    assert default_route_iface(_proc_net(tmp_path / "a", v4)) == "end0"
    # IPv6 only: the kernel's "unreachable" default on lo does not count
    z = "0" * 32
    v6 = (
        f"{z} 00 {z} 00 {z} ffffffff 00000001 00000000 00200200       lo\n"
        "fe800000000000000000000000000000 40 "
        f"{z} 00 {z} 00000100 00000002 00000000 00000001     eth0\n"
        f"{z} 00 {z} 00 fe800000000000000000000000000001 00000400 00000002 00000000 00000003    wlan0\n"
    )
    assert default_route_iface(_proc_net(tmp_path / "b", "", v6)) == "wlan0"
    assert default_route_iface(_proc_net(tmp_path / "c")) is None
    assert default_route_iface(tmp_path / "missing") is None
    assert "  iface: wlan0\n" in render_config("wlan0")


def test_running_executable_is_not_the_first_on_path(tmp_path: Path) -> None:
    if not VENV_EDGE_NIDS.is_file():
        pytest.skip(f"no console script {VENV_EDGE_NIDS} (install with pip install -e .)")
    decoy_dir = tmp_path / "decoy"
    decoy_dir.mkdir()
    decoy = decoy_dir / "edge-nids"
    decoy.write_text("#!/bin/sh\necho decoy\n")
    decoy.chmod(0o755)
    env = dict(os.environ, PATH=f"{decoy_dir}:{os.environ.get('PATH', '')}")
    assert shutil.which("edge-nids", path=env["PATH"]) == str(decoy)
    want = f"ExecStart={VENV_EDGE_NIDS.resolve()} run --config /etc/edge-nids/config.yaml"
    for exe in ([str(VENV_EDGE_NIDS)], [sys.executable, "-m", "edge_nids.cli"]):
        out = _cli("install-service", "--dry-run", "--prefix", str(tmp_path / "root"), env=env, exe=exe)
        assert out.returncode == 0, out.stderr
        assert want in out.stdout, (exe, out.stdout)
        assert str(decoy) not in out.stdout
    # a script reached through a symlink (e.g. /usr/local/bin/edge-nids -> the venv's): the venv's
    link = tmp_path / "bin" / "edge-nids"
    link.parent.mkdir()
    link.symlink_to(VENV_EDGE_NIDS)
    assert running_executable(str(link)) == str(VENV_EDGE_NIDS.resolve())
    with pytest.raises(Exception, match="cannot tell which edge-nids"):
        running_executable("/usr/lib/python3/x.py", str(tmp_path / "nobin" / "python3"))


def test_unit_has_the_required_settings(repo_root: Path) -> None:
    text = (repo_root / "systemd/edge-nids.service").read_text()
    settings = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            settings[k] = v
    assert settings["Type"] == "notify"
    assert settings["CapabilityBoundingSet"] == "CAP_NET_RAW"
    assert settings["AmbientCapabilities"] == "CAP_NET_RAW"
    assert settings["MemoryDenyWriteExecute"] == "yes"
    lines = [x for x in text.splitlines() if not x.startswith("#")]
    assert "SystemCallFilter=@system-service" in lines and "SystemCallFilter=~@privileged @resources" in lines
    # check first, then signal: a refused config or model fails the reload and the agent is left alone
    assert [x for x in lines if x.startswith("ExecReload=")] == [
        "ExecReload=/usr/local/bin/edge-nids check-config --config /etc/edge-nids/config.yaml",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ]
    assert "ProcSubset" not in settings  # LiteRT's CPU detection reads /proc/cpuinfo
    assert "Documentation" not in settings
    assert settings["DynamicUser"] == "yes" and settings["NoNewPrivileges"] == "yes"
    assert settings["ProtectSystem"] == "strict" and settings["ProtectHome"] == "yes"
    assert settings["PrivateTmp"] == "yes" and settings["Restart"] == "on-failure"
    assert set(settings["RestrictAddressFamilies"].split()) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_PACKET",
    }
    assert settings["LogsDirectory"] == "edge-nids" and "MemoryMax" in settings


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze not installed (apt-get install -y systemd)")
    edge = shutil.which("edge-nids") or str(Path(sys.executable).parent / "edge-nids")
    unit = tmp_path / "edge-nids.service"
    unit.write_text(render_unit(edge))
    out = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == ""
