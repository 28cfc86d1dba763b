"""sd_notify messages reach a real unix datagram socket, as systemd's would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from edge_nids.agent.sdnotify import Notifier

from .helpers import NotifySocket, agent_cmd


def test_notify_to_path_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(2)
    n = Notifier(path)
    assert n.enabled
    assert n.ready("capturing on eth0")
    assert srv.recv(4096) == b"READY=1\nSTATUS=capturing on eth0"
    assert n.stopping()
    assert srv.recv(4096) == b"STOPPING=1"
    n.close()
    srv.close()


def test_notify_to_abstract_socket() -> None:
    name = f"edge-nids-test-{id(object())}"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind("\0" + name)
    srv.settimeout(2)
    n = Notifier("@" + name)
    assert n.status("packets=3")
    assert srv.recv(4096) == b"STATUS=packets=3"
    n.close()
    srv.close()


def test_disabled_without_notify_socket(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    assert not n.enabled and not n.ready()


def _status_lines(messages: list[str]) -> list[str]:
    return [x for m in messages for x in m.splitlines() if x.startswith("STATUS=")]


def test_ready_and_waiting_status_without_the_interface(tmp_path: Path, agent_bundle: Path) -> None:
    """No such interface: READY=1 within 5 s anyway, STATUS names it and keeps naming it, SIGTERM: 0."""
    iface = "nosuch0"
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("capture:\n  retry_initial_s: 0.2\n  retry_max_s: 1.0\nstats:\n  interval_s: 1\n")
    notify = NotifySocket(tmp_path / "notify.sock")
    t0 = time.monotonic()
    agent = subprocess.Popen(
        agent_cmd(
            "run", "--iface", iface, "--model", str(agent_bundle), "--config", str(cfg), "--alerts", "-"
        ),
        env=dict(os.environ, NOTIFY_SOCKET=notify.path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = notify.wait_for("READY=1", timeout=5, proc=agent)
        assert time.monotonic() - t0 < 5
        waiting = f"STATUS=waiting for interface {iface}: no such network interface: {iface}"
        assert waiting in ready.splitlines()
        # past the 2 s counter updates and a few retries: STATUS still says what it waits for
        later = _status_lines(notify.collect(4.5))
        assert len(later) >= 2 and set(later) == {waiting}
        notify.messages.clear()
        agent.send_signal(signal.SIGHUP)  # a reload while waiting keeps saying so too
        notify.wait_for("RELOADING=1", timeout=10, proc=agent)
        after = notify.wait_for("READY=1", timeout=10, proc=agent)
        assert waiting in after.splitlines()
        assert agent.poll() is None
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=20)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.communicate()
        notify.close()
    assert agent.returncode == 0, err
    assert f"no such network interface: {iface}; retrying" in err
    assert "Traceback" not in err


def test_no_own_timestamp_when_stderr_is_the_journal(tmp_path: Path, agent_bundle: Path) -> None:
    """Under systemd ($JOURNAL_STREAM names stderr) the journal stamps lines: the agent does not."""
    firsts = []
    for journal in (True, False):
        err = tmp_path / f"stderr-{journal}.txt"
        with open(err, "w") as fh:
            st = os.fstat(fh.fileno())
            env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}" if journal else "")
            rc = subprocess.run(
                agent_cmd(
                    "run", "--demo", "--model", str(agent_bundle), "--alerts", str(tmp_path / "a.json")
                ),
                stderr=fh,
                stdout=subprocess.DEVNULL,
                env=env,
                timeout=60,
            ).returncode
        assert rc == 0
        ours = [x for x in err.read_text().splitlines() if "edge_nids." in x]
        assert ours
        firsts.append(ours[0])
    assert firsts[0].startswith("INFO edge_nids."), firsts
    assert firsts[1][:4].isdigit() and " INFO edge_nids." in firsts[1], firsts
