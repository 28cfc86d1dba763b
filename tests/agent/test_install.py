"""install-service (dry run and a real install under a prefix) and the unit's validity."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_nids.agent.install import install_service, render_unit


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_nids.cli", *args], capture_output=True, text=True)


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
    lines = list(install_service(prefix=str(tmp_path), executable="/opt/en/bin/edge-nids", reload=False))
    unit = (tmp_path / "etc/systemd/system/edge-nids.service").read_text()
    assert "ExecStart=/opt/en/bin/edge-nids run --config /etc/edge-nids/config.yaml" in unit
    cfg = tmp_path / "etc/edge-nids/config.yaml"
    assert cfg.read_bytes() == (repo_root / "systemd/config.example.yaml").read_bytes()
    assert any("next:" in x for x in lines)
    cfg.write_text("capture:\n  iface: wlan0\n")
    lines = list(install_service(prefix=str(tmp_path), executable="/opt/en/bin/edge-nids", reload=False))
    assert f"keep existing {cfg}" in lines
    assert cfg.read_text() == "capture:\n  iface: wlan0\n"


def test_unit_has_the_required_settings(repo_root: Path) -> None:
    text = (repo_root / "systemd/edge-nids.service").read_text()
    settings = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            settings[k] = v
    assert settings["Type"] == "notify"
    assert settings["CapabilityBoundingSet"] == "CAP_NET_RAW CAP_NET_ADMIN"
    assert settings["AmbientCapabilities"] == "CAP_NET_RAW CAP_NET_ADMIN"
    assert settings["DynamicUser"] == "yes" and settings["NoNewPrivileges"] == "yes"
    assert settings["ProtectSystem"] == "strict" and settings["ProtectHome"] == "yes"
    assert settings["PrivateTmp"] == "yes" and settings["Restart"] == "on-failure"
    assert set(settings["RestrictAddressFamilies"].split()) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_PACKET",
        "AF_NETLINK",
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
