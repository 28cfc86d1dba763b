"""The lab's testbed: network namespaces on a bridge, real servers, tcpdump (needs root).

Layout (every address from the RFC 5737 documentation ranges)::

    client ns  (203.0.113.x, several)  ─┐
    attacker ns (198.51.100.x)          ─┼─ veth ─ bridge br0 in the switch ns
    victim ns  (192.0.2.10)             ─┘

Each host reaches the other two /24s on-link over the bridge, so no namespace
has a route anywhere else and nothing touches the host's own network namespace.
IPv6 and the veths' segmentation/checksum offloads are off, so captures hold
real-sized frames with correct checksums. The victim runs nginx, OpenSSH (a
test user with a password), a DNS-like UDP responder and an iperf3 server;
tcpdump records on the victim's veth. :meth:`Testbed.close` kills every process
started here (and any left in the lab's namespaces) and deletes the namespaces;
it is idempotent and safe to call from signal handlers' ``finally`` and atexit.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CaptureResult", "LabError", "Testbed", "remove_stale_namespaces"]

log = logging.getLogger("lab.testbed")

_NS_RE = re.compile(r"^enl(\d+)-(sw|victim|attacker|client)$")
_USER_COMMENT = "edge-nids lab test user"


class LabError(RuntimeError):
    """The testbed could not be built or a server did not start; the message says which and why."""


@dataclass(frozen=True)
class CaptureResult:
    """What tcpdump reported when it stopped: packets captured and dropped by the kernel."""

    path: Path
    captured: int
    dropped: int


def _sh(argv: Sequence[str], what: str, timeout: float = 30.0) -> str:
    """Run a setup command; ``LabError`` naming ``what`` when it fails."""
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{what}: {' '.join(argv)}: {exc}") from None
    if out.returncode != 0:
        raise LabError(f"{what}: {' '.join(argv)} exited {out.returncode}: {out.stderr.strip()[-300:]}")
    return out.stdout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace_pids(ns: str) -> None:
    """SIGKILL the processes still inside namespace ``ns`` (all were started by the lab)."""
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False)
    for token in out.stdout.split():
        if token.isdigit() and int(token) != os.getpid():
            try:
                os.kill(int(token), signal.SIGKILL)
            except ProcessLookupError:
                pass


def remove_stale_namespaces() -> list[str]:
    """Delete lab namespaces left by lab runs that no longer exist (killed with SIGKILL)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    removed = []
    for line in out.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NS_RE.match(name)
        if m and not _pid_alive(int(m.group(1))):
            _kill_namespace_pids(name)
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
            removed.append(name)
    return removed


@dataclass(frozen=True)
class WanProfile:
    """One direction's ``tc netem`` settings: delay and jitter (ms), loss (%), rate (Mbit/s)."""

    delay_ms: float
    jitter_ms: float
    loss_pct: float
    rate_mbit: float

    def netem_args(self) -> list[str]:
        args = ["netem", "delay", f"{self.delay_ms:g}ms"]
        if self.jitter_ms:
            args += [f"{self.jitter_ms:g}ms", "distribution", "normal"]
        if self.loss_pct:
            args += ["loss", f"{self.loss_pct:g}%"]
        return [*args, "rate", f"{self.rate_mbit:g}mbit", "limit", "10000"]

    def to_dict(self) -> dict[str, float]:
        return {"delay_ms": self.delay_ms, "jitter_ms": self.jitter_ms, "loss_pct": self.loss_pct,
                "rate_mbit": self.rate_mbit}  # fmt: skip


def draw_wan(rng: random.Random) -> WanProfile:
    """A seeded WAN between home broadband and a cloud region: 2-60 ms each way (RTT 4-120 ms),
    jitter up to a quarter of the delay, 0-1 % loss, 8-200 Mbit/s."""
    delay = round(rng.uniform(2, 60), 1)
    return WanProfile(
        delay_ms=delay,
        jitter_ms=round(rng.uniform(0, delay / 4), 1),
        loss_pct=round(rng.choice([0, 0, 0.1, 0.3, 1.0]), 1),
        rate_mbit=float(rng.choice([8, 20, 50, 100, 200])),
    )


class Testbed:
    """Namespaces, servers and captures of one lab run.

    workdir: scratch directory (configs, web files); logdir: server, tool and tcpdump
    output. victim, attacker: IPv4
    addresses; clients: benign client addresses (the first is the client's primary);
    neighbours: more addresses on the victim's interface (the rest of its network, for
    sweeps), every fourth of them with the web server too.
    """

    def __init__(
        self,
        workdir: Path,
        logdir: Path,
        victim: str,
        attacker: str,
        clients: Sequence[str],
        neighbours: Sequence[str] = (),
    ) -> None:
        self.workdir = Path(workdir)
        self.logdir = Path(logdir)
        self.addrs = {"victim": [victim, *neighbours], "attacker": [attacker], "client": list(clients)}
        tag = f"enl{os.getpid()}"
        self.ns = {host: f"{tag}-{host}" for host in ("sw", "victim", "attacker", "client")}
        self._procs: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._created_ns: list[str] = []
        self._created_user: str | None = None
        self._closed = False

    # ---- building -----------------------------------------------------------------
    def up(self) -> None:
        """Create the namespaces, the bridge and one veth per host; addresses, routes, offloads off."""
        self.logdir.mkdir(parents=True, exist_ok=True)
        nets = {"victim": "192.0.2.0/24", "attacker": "198.51.100.0/24", "client": "203.0.113.0/24"}
        for ns in self.ns.values():
            _sh(["ip", "netns", "add", ns], f"create namespace {ns}")
            self._created_ns.append(ns)
            _sh(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                 "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"],
                f"disable IPv6 in {ns}")  # fmt: skip
            _sh(["ip", "-n", ns, "link", "set", "lo", "up"], f"loopback up in {ns}")
        sw = self.ns["sw"]
        _sh(
            ["ip", "-n", sw, "link", "add", "br0", "type", "bridge", "stp_state", "0", "mcast_snooping", "0"],
            "create bridge",
        )
        _sh(["ip", "-n", sw, "link", "set", "br0", "up"], "bridge up")
        for host in ("victim", "attacker", "client"):
            ns, port = self.ns[host], f"p-{host}"
            _sh(["ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns],
                f"create veth for {host}")  # fmt: skip
            _sh(["ip", "-n", sw, "link", "set", port, "master", "br0", "up"], f"attach {port} to the bridge")
            for i, addr in enumerate(self.addrs[host]):
                _sh(["ip", "-n", ns, "addr", "add", f"{addr}/24" if i == 0 else f"{addr}/32", "dev", "eth0"],
                    f"address {addr} on {host}")  # fmt: skip
            _sh(["ip", "-n", ns, "link", "set", "eth0", "up"], f"eth0 up in {host}")
            for other, net in nets.items():
                if other != host:
                    _sh(["ip", "-n", ns, "route", "add", net, "dev", "eth0", "src", self.addrs[host][0]],
                        f"route to {net} in {host}")  # fmt: skip
            for dev_ns, dev in ((ns, "eth0"), (sw, port)):
                _sh(["ip", "netns", "exec", dev_ns, "ethtool", "-K", dev, "tx", "off", "rx", "off",
                     "tso", "off", "gso", "off", "gro", "off"], f"offloads off on {dev}")  # fmt: skip
        log.info("testbed up: %s", ", ".join(self.ns.values()))

    def shape(self, wan: WanProfile) -> None:
        """Put the client's and the attacker's links behind the same WAN (``tc netem`` both ways).

        Both get the same delay, jitter, loss and rate, so the victim sees benign and attack
        traffic under one network condition (a model cannot learn the link as the label).
        """
        for host in ("client", "attacker"):
            for ns, dev in ((self.ns[host], "eth0"), (self.ns["sw"], f"p-{host}")):
                try:
                    argv = ["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root"]
                    _sh([*argv, *wan.netem_args()], f"netem on {dev} ({host})")
                except LabError as exc:
                    if "qdisc kind is unknown" in str(exc):
                        raise LabError(
                            "--wan needs the kernel's netem queueing discipline (sch_netem), which this "
                            "kernel lacks (tc: 'Specified qdisc kind is unknown'); run without --wan"
                        ) from None
                    raise
        log.info("WAN on the client and attacker links: %s", " ".join(wan.netem_args()))

    # ---- processes ------------------------------------------------------------------
    def spawn(self, host: str, argv: Sequence[str], log_name: str) -> subprocess.Popen[bytes]:
        """Start ``argv`` in ``host``'s namespace in its own process group, output to logs/``log_name``."""
        if self._closed:
            raise LabError("testbed is closed")
        with open(self.logdir / log_name, "ab") as fh:
            fh.write(f"\n# {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
            fh.flush()
            try:
                proc = subprocess.Popen(
                    ["ip", "netns", "exec", self.ns[host], *argv],
                    stdin=subprocess.DEVNULL,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    start_new_session=True,
                )
            except OSError as exc:
                raise LabError(f"cannot start {argv[0]} in {host}: {exc}") from None
        with self._lock:
            self._procs.append(proc)
        return proc

    def run(
        self,
        host: str,
        argv: Sequence[str],
        timeout_s: float,
        log_name: str,
        stop: threading.Event | None = None,
    ) -> tuple[int | None, float]:
        """Run ``argv`` to completion (≤ ``timeout_s`` s, or until ``stop`` is set).

        Returns ``(exit status or None when killed, seconds taken)``.
        """
        t0 = time.monotonic()
        proc = self.spawn(host, argv, log_name)
        try:
            while True:
                try:
                    rc = proc.wait(timeout=0.2)
                    return rc, time.monotonic() - t0
                except subprocess.TimeoutExpired:
                    pass
                if time.monotonic() - t0 > timeout_s or (stop is not None and stop.is_set()):
                    if stop is None or not stop.is_set():
                        log.warning("%s in %s: killed after %.0f s", argv[0], host, timeout_s)
                    self._kill(proc)
                    return None, time.monotonic() - t0
        finally:
            with self._lock:
                if proc in self._procs and proc.poll() is not None:
                    self._procs.remove(proc)

    def _kill(self, proc: subprocess.Popen[bytes], grace_s: float = 3.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace_s`` s."""
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue

    # ---- servers --------------------------------------------------------------------
    def ensure_user(self, user: str, password: str) -> None:
        """Create the SSH test user (removed again by :meth:`close`) and set its password."""
        exists = subprocess.run(["id", user], capture_output=True, check=False).returncode == 0
        if not exists:
            _sh(["useradd", "-m", "-s", "/bin/bash", "-c", _USER_COMMENT, user], f"create user {user}")
            self._created_user = user
        else:
            gecos = _sh(["getent", "passwd", user], "look up user").split(":")[4]
            if gecos != _USER_COMMENT:
                raise LabError(
                    f"user {user} exists and was not made by the lab; refusing to change its password"
                )
            self._created_user = user
        subprocess.run(["chpasswd"], input=f"{user}:{password}", text=True, capture_output=True, check=True)

    def start_servers(self, webroot: Path, dnslike: Path, python: str, ssh_user: str, password: str) -> None:
        """Start nginx, sshd (only ``ssh_user`` may log in), the DNS-like responder, iperf3 and
        mosquitto in the victim namespace; return once all of them listen.

        ``ssh_user`` with ``password`` may also log in to nginx's ``/private/`` (HTTP basic
        auth) and to mosquitto (no anonymous clients); ``/login`` answers every POST with
        "login failed" (the target of form brute force)."""
        victim = self.addrs["victim"][0]
        conf = self.workdir / "conf"
        conf.mkdir(exist_ok=True)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (conf / "nginx-tmp" / sub).mkdir(parents=True, exist_ok=True)
        listen_more = "".join(f"        listen {a}:80;\n" for a in self.addrs["victim"][1::4])
        (conf / "nginx.conf").write_text(
            f"""user root;
worker_processes 1;
worker_rlimit_nofile 8192;
pid {conf}/nginx.pid;
error_log {self.logdir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {self.logdir}/nginx-access.log;
    client_body_temp_path {conf}/nginx-tmp/body;
    proxy_temp_path {conf}/nginx-tmp/proxy;
    fastcgi_temp_path {conf}/nginx-tmp/fastcgi;
    uwsgi_temp_path {conf}/nginx-tmp/uwsgi;
    scgi_temp_path {conf}/nginx-tmp/scgi;
    types {{ text/html html; application/octet-stream bin; }}
    sendfile on;
    keepalive_timeout 15;
    server {{
        listen {victim}:80 backlog=1024;
{listen_more}        root {webroot};
        autoindex on;
        location /private/ {{ auth_basic "lab"; auth_basic_user_file {conf}/htpasswd; }}
        location = /login {{ default_type text/html; return 200 "<p>login failed</p>\n"; }}
    }}
}}
"""
        )
        _sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(conf / "ssh_host_ed25519_key")],
            "generate the SSH host key")  # fmt: skip
        (conf / "sshd_config").write_text(
            f"""Port 22
ListenAddress {victim}
HostKey {conf}/ssh_host_ed25519_key
PidFile {conf}/sshd.pid
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication no
PermitRootLogin no
AllowUsers {ssh_user}
StrictModes no
UseDNS no
MaxStartups 200:30:400
MaxAuthTries 6
LoginGraceTime 20
Subsystem sftp internal-sftp
"""
        )
        (conf / "htpasswd").write_text(f"{ssh_user}:{{PLAIN}}{password}\n")
        (conf / "mosquitto.conf").write_text(
            f"""user root
persistence false
log_dest stderr
listener 1883 {victim}
allow_anonymous false
password_file {conf}/mosquitto.passwd
max_connections 2048
"""
        )
        (conf / "mosquitto.passwd").touch()
        _sh(["mosquitto_passwd", "-b", str(conf / "mosquitto.passwd"), ssh_user, password],
            "write the mosquitto password file")  # fmt: skip
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        _sh(["/usr/sbin/sshd", "-t", "-f", str(conf / "sshd_config")], "check the sshd config")
        nginx = ["nginx", "-p", str(conf), "-c", str(conf / "nginx.conf")]
        nginx += ["-e", str(self.logdir / "nginx-error.log"), "-g", "daemon off;"]
        self.spawn("victim", nginx, "nginx.log")
        self.spawn("victim", ["/usr/sbin/sshd", "-D", "-e", "-f", str(conf / "sshd_config")], "sshd.log")
        self.spawn("victim", [python, str(dnslike), "serve", "--bind", victim, "--port", "53"], "dnslike.log")
        self.spawn("victim", ["iperf3", "-s", "-B", victim, "-p", "5201"], "iperf3.log")
        self.spawn("victim", ["mosquitto", "-c", str(conf / "mosquitto.conf")], "mosquitto.log")
        want = {"tcp:80": "nginx", "tcp:22": "sshd", "udp:53": "dnslike", "tcp:5201": "iperf3"}
        want["tcp:1883"] = "mosquitto"
        deadline = time.monotonic() + 15
        missing = set(want)
        while time.monotonic() < deadline:
            out = _sh(["ip", "netns", "exec", self.ns["victim"], "ss", "-Hlntu"], "list listening sockets")
            listening = {
                f"{f[0]}:{f[4].rsplit(':', 1)[-1]}" for f in (ln.split() for ln in out.splitlines()) if f
            }
            missing = set(want) - listening
            if not missing:
                log.info("servers listening on %s", victim)
                return
            time.sleep(0.3)
        names = ", ".join(sorted(want[m] for m in missing))
        raise LabError(f"server(s) did not start in the victim namespace: {names} (see {self.logdir})")

    # ---- capture --------------------------------------------------------------------
    def start_capture(self, pcap: Path) -> subprocess.Popen[bytes]:
        """tcpdump on the victim's veth, full snap length, packet-buffered; returns once it listens."""
        log_path = self.logdir / f"tcpdump-{pcap.stem}.log"
        log_path.unlink(missing_ok=True)
        argv = ["tcpdump", "-i", "eth0", "-n", "-s", "0", "-U", "-B", "16384", "-Z", "root", "-w", str(pcap)]
        proc = self.spawn("victim", argv, log_path.name)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "listening on" in log_path.read_text(errors="replace"):
                return proc
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        self._kill(proc)
        raise LabError(f"tcpdump did not start: {log_path.read_text(errors='replace').strip()[-300:]}")

    def stop_capture(self, proc: subprocess.Popen[bytes], pcap: Path) -> CaptureResult:
        """Stop tcpdump cleanly (SIGINT) and return its packet counts."""
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill(proc)
        with self._lock:
            if proc in self._procs:
                self._procs.remove(proc)
        text = (self.logdir / f"tcpdump-{pcap.stem}.log").read_text(errors="replace")
        captured = re.search(r"(\d+) packets? captured", text)
        dropped = re.search(r"(\d+) packets? dropped by kernel", text)
        return CaptureResult(
            pcap, int(captured.group(1)) if captured else -1, int(dropped.group(1)) if dropped else -1
        )

    # ---- teardown -------------------------------------------------------------------
    def close(self) -> None:
        """Kill every lab process, delete the namespaces and the test user. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            procs = list(self._procs)
            self._procs.clear()
        for proc in procs:
            self._kill(proc, grace_s=2.0)
        for ns in reversed(self._created_ns):
            _kill_namespace_pids(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self._created_ns.clear()
        if self._created_user:
            subprocess.run(["userdel", "-r", "-f", self._created_user], capture_output=True, check=False)
            self._created_user = None
        log.info("testbed removed")

    @staticmethod
    def tools_missing(binaries: Sequence[str]) -> list[str]:
        """The binaries of ``binaries`` not found on PATH (sbin directories included)."""
        path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
        return [b for b in binaries if shutil.which(b, path=path) is None]
