"""sd_notify messages reach a real unix datagram socket, as systemd's would."""

from __future__ import annotations

import socket
from pathlib import Path

from edge_nids.agent.sdnotify import Notifier


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
