"""The testbed builds reachable namespaces and removes them and their processes (needs root)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab import testbed

pytestmark = [pytest.mark.root]

_PROBE = (
    "import socket,sys\n"
    "s=socket.socket(); s.settimeout(3)\n"
    "try: s.connect(('192.0.2.10', 9))\n"
    "except ConnectionRefusedError: sys.exit(0)\n"
    "sys.exit(1)\n"
)


def _can_make_namespaces() -> bool:
    """True when this process may create network namespaces (root with the capabilities)."""
    if os.geteuid() != 0 or testbed.Testbed.tools_missing(["ip", "ethtool"]):
        return False
    name = f"enl{os.getpid()}-probe"
    ok = subprocess.run(["ip", "netns", "add", name], capture_output=True, check=False).returncode == 0
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    return ok


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.split()}


def test_testbed_up_reachable_and_fully_removed(tmp_path: Path) -> None:
    if not _can_make_namespaces():
        pytest.skip("needs root allowed to create network namespaces, iproute2 and ethtool")
    lab = testbed.Testbed(
        tmp_path, tmp_path / "logs", "192.0.2.10", "198.51.100.66", ["203.0.113.20", "203.0.113.21"]
    )
    try:
        lab.up()
        assert set(lab.ns.values()) <= _namespaces()
        sleeper = lab.spawn("victim", ["sleep", "60"], "sleep.log")
        # A refused connection proves the client reaches the victim over the bridge (RST came back).
        rc, seconds = lab.run("client", [sys.executable, "-c", _PROBE], 10, "probe.log")
        assert rc == 0 and seconds < 5, (tmp_path / "logs" / "probe.log").read_text()
        rc, _ = lab.run("attacker", [sys.executable, "-c", _PROBE], 10, "probe.log")
        assert rc == 0
        # Nothing outside the lab's ranges is routable from inside.
        routes = subprocess.run(
            ["ip", "-n", lab.ns["client"], "route"], capture_output=True, text=True
        ).stdout
        assert "default" not in routes and "198.51.100.0/24" in routes and "192.0.2.0/24" in routes
        rc, seconds = lab.run("victim", ["sleep", "30"], 0.5, "timeout.log")
        assert rc is None and seconds < 5  # killed at its timeout
    finally:
        lab.close()
    assert not set(lab.ns.values()) & _namespaces()
    assert sleeper.poll() is not None
    lab.close()  # idempotent
