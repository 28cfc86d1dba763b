"""A network namespace of its own holding a veth pair, for live-capture tests (root, iproute2).

Nothing else talks in it (IPv6 off, no addresses), so a capture there sees exactly the
frames a test sends. ``with ns.inside():`` switches the calling thread into the namespace:
sockets created there stay in it after the block ends.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

__all__ = ["VethNetns", "veth_netns"]

CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class VethNetns:
    """Namespace ``name`` with the veth pair ``tx`` - ``cap``, both up, and its own ``lo`` up."""

    tx = "vr0"
    cap = "vr1"

    def __init__(self, name: str) -> None:
        self.name = name

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True)

    @contextmanager
    def inside(self) -> Iterator[None]:
        """Run the block with this thread in the namespace (back in its own one afterwards)."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(target)
            os.close(home)


@contextmanager
def veth_netns(tag: str) -> Iterator[VethNetns]:
    """Create the namespace (skips the test, saying why, where that is impossible); delete it after."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2 (`ip`): apt-get install -y iproute2")
    ns = VethNetns(f"enring{tag}{os.getpid() % 100000}")
    try:
        subprocess.run(["ip", "netns", "add", ns.name], check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace here: {exc.stderr.decode().strip()}")
    try:
        with ns.inside(), open("/proc/sys/net/ipv6/conf/default/disable_ipv6", "w") as f:
            f.write("1")  # the pair is created without IPv6: no neighbour discovery chatter
        ns.ip("link", "add", ns.tx, "type", "veth", "peer", "name", ns.cap)
        for i in (ns.tx, ns.cap, "lo"):
            ns.ip("link", "set", i, "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)
