"""Helpers shared by the agent tests: the agent command line and a stand-in systemd notify socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["NotifySocket", "agent_cmd"]


def agent_cmd(*args: str) -> list[str]:
    """Command line of ``edge-nids`` run from this interpreter."""
    return [*os.environ.get("EDGE_NIDS_AGENT_CMD", f"{sys.executable} -m edge_nids.cli").split(), *args]


class NotifySocket:
    """A unix datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[str] = []

    def wait_for(self, prefix: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> str:
        """Wait for a message containing a line starting with ``prefix``; return it."""
        end = time.monotonic() + timeout
        for m in self.messages:
            if any(x.startswith(prefix) for x in m.splitlines()):
                return m
        while time.monotonic() < end:
            self.sock.settimeout(0.2)
            try:
                m = self.sock.recv(4096).decode()
            except TimeoutError:
                if proc is not None and proc.poll() is not None:
                    raise AssertionError(f"agent exited with {proc.returncode} before {prefix}") from None
                continue
            self.messages.append(m)
            if any(x.startswith(prefix) for x in m.splitlines()):
                return m
        raise AssertionError(f"no {prefix} from the agent within {timeout} s; got {self.messages}")

    def collect(self, seconds: float) -> list[str]:
        """Every message that arrives within ``seconds``, also kept in ``messages``."""
        got: list[str] = []
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(min(left, 0.2))
            try:
                m = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.messages.append(m)
            got.append(m)
        return got

    def close(self) -> None:
        self.sock.close()
