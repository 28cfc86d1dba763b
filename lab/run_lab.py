"""Run the traffic lab: build the testbed, record one pcap per scenario, write the labels file.

Run as root from the repository root::

    sudo .venv/bin/python -m lab.run_lab --seed 1 --out lab/out/train
    sudo .venv/bin/python -m lab.run_lab --seed 2 --scale 0.7 --out lab/out/test
    sudo .venv/bin/python -m lab.run_lab --demo      # regenerates lab/captures/demo.*

Writes ``OUT/<scenario>.pcap``, ``OUT/labels.csv`` (see :mod:`lab.labels`),
``OUT/summary.json`` and tool/server logs in ``OUT/logs/``; prints a summary
per scenario. The testbed is removed on any exit (normal, error, Ctrl-C,
SIGTERM, SIGHUP).
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType

from edge_nids.flows.labels import ANY_SOURCE
from lab.labels import LabelRow, write_labels
from lab.pcapcheck import capture_stats, check_labels
from lab.scenarios import (
    COMPOSITES,
    SCENARIOS,
    SPOOFED,
    SWEEPS,
    LabContext,
    ScenarioError,
    Step,
    build_steps,
    make_wordlist,
    scenario_rng,
    select_scenarios,
    validate_scale,
)
from lab.testbed import LabError, Testbed, draw_wan, remove_stale_namespaces

__all__ = ["APT_PACKAGES", "DEMO_MAX_BYTES", "ScenarioResult", "main"]

log = logging.getLogger("lab.run_lab")

LAB_DIR = Path(__file__).resolve().parent
#: Debian packages the lab installs when a tool is missing.
APT_PACKAGES = (
    "nmap", "hping3", "slowhttptest", "hydra", "nginx", "openssh-server", "openssh-client", "sshpass",
    "iperf3", "tcpdump", "apache2-utils", "wrk", "curl", "iproute2", "ethtool", "mosquitto",
)  # fmt: skip
_BINARIES = (
    "nmap", "hping3", "slowhttptest", "hydra", "nginx", "sshd", "ssh", "scp", "ssh-keygen", "sshpass",
    "iperf3", "tcpdump", "ab", "wrk", "curl", "ip", "ss", "ethtool", "useradd", "chpasswd",
    "mosquitto", "mosquitto_passwd",
)  # fmt: skip
DEMO_MAX_BYTES = 2_000_000
DEMO_SEED = 7
SSH_USER = "enlab"
VICTIM = "192.0.2.10"
#: More addresses of the victim's network (on the victim's interface), touched only by sweeps.
NEIGHBOURS = tuple(f"192.0.2.{i}" for i in range(20, 84))


@dataclass
class ScenarioResult:
    """One scenario's capture and outcome (sizes in bytes, times in s)."""

    name: str
    labels: list[str]
    pcap: str
    packets: int = 0
    dropped: int = 0
    duration_s: float = 0.0
    pcap_bytes: int = 0
    steps_ok: int = 0
    steps_failed: int = 0
    steps_killed: int = 0
    attacker_outside: int = 0
    rows: list[LabelRow] = field(default_factory=list)


class _StepCounter:
    """Thread-safe tally of step outcomes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok = self.failed = self.killed = 0

    def add(self, rc: int | None) -> None:
        with self.lock:
            if rc is None:
                self.killed += 1
            elif rc == 0:
                self.ok += 1
            else:
                self.failed += 1


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _apt(args: Sequence[str]) -> None:
    """Run apt-get, waiting (≤ 10 min) while a colleague's apt holds the lock."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    deadline = time.monotonic() + 600
    while True:
        out = subprocess.run(["apt-get", *args], capture_output=True, text=True, env=env, check=False)
        if out.returncode == 0:
            return
        locked = "Could not get lock" in out.stderr or "Unable to lock" in out.stderr
        if not locked or time.monotonic() > deadline:
            raise LabError(f"apt-get {' '.join(args[:2])} failed: {out.stderr.strip()[-300:]}")
        log.warning("apt is locked by another process; retrying in 10 s")
        time.sleep(10)


def check_devnull() -> None:
    """Fail when /dev/null is not the null character device (the tools' output and ssh's
    ``-F /dev/null`` would go to or come from a file)."""
    st = os.lstat("/dev/null")
    if not stat.S_ISCHR(st.st_mode) or os.major(st.st_rdev) != 1 or os.minor(st.st_rdev) != 3:
        what = f"a link to {os.readlink('/dev/null')}" if stat.S_ISLNK(st.st_mode) else "not the null device"
        raise LabError(
            f"/dev/null is {what}; restore it (rm /dev/null; mknod -m 666 /dev/null c 1 3) and run again"
        )


def ensure_tools(install: bool) -> None:
    """Install the lab's Debian packages when a tool is missing (or fail naming the tools)."""
    missing = Testbed.tools_missing(_BINARIES)
    if not missing:
        return
    if not install:
        raise LabError(f"missing tools: {', '.join(missing)} (run without --no-install to apt-get them)")
    print(f"installing Debian packages (missing: {', '.join(missing)})", file=sys.stderr)
    _apt(["update"])
    _apt(["install", "-y", "--no-install-recommends", *APT_PACKAGES])
    still = Testbed.tools_missing(_BINARIES)
    if still:
        raise LabError(f"tools still missing after apt-get install: {', '.join(still)}")


def _make_files(
    work: Path, rng: random.Random, home: Path
) -> tuple[list[tuple[str, int]], list[str], list[str]]:
    """Web root, scp upload files and (in the test user's home) download files; returns their paths."""
    www = work / "www"
    www.mkdir(parents=True, exist_ok=True)
    web: list[tuple[str, int]] = []
    words = "edge nids lab packet flow sensor raspberry anomaly network traffic window".split()
    for size in (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536):
        body = " ".join(rng.choice(words) for _ in range(size // 6))
        text = f"<html><body><p>{body}</p></body></html>\n"[:size]
        (www / f"page-{size}.html").write_text(text)
        web.append((f"/page-{size}.html", len(text)))
    (www / "index.html").write_text("<html><body><h1>lab</h1><a href='/page-512.html'>p</a></body></html>\n")
    web.append(("/index.html", (www / "index.html").stat().st_size))
    for size in (262144, 1048576, 4194304):
        (www / f"blob-{size}.bin").write_bytes(rng.randbytes(size))
        web.append((f"/blob-{size}.bin", size))
    up = work / "upload"
    up.mkdir(exist_ok=True)
    uploads = []
    for size in (65536, 524288, 2097152):
        (up / f"up-{size}.bin").write_bytes(rng.randbytes(size))
        uploads.append(str(up / f"up-{size}.bin"))
    files = home / "files"
    files.mkdir(exist_ok=True)
    downloads = []
    for size in (131072, 1048576):
        (files / f"dl-{size}.bin").write_bytes(rng.randbytes(size))
        downloads.append(f"files/dl-{size}.bin")
    shutil.chown(files, SSH_USER, SSH_USER)
    for p in files.iterdir():
        shutil.chown(p, SSH_USER, SSH_USER)
    return web, uploads, downloads


def _run_steps(
    lab: Testbed,
    steps: Sequence[Step],
    log_name: str,
    tally: _StepCounter,
    stop: threading.Event | None = None,
) -> None:
    for step in steps:
        if stop is not None and stop.is_set():
            return
        rc, _ = lab.run(step.host, step.argv, step.timeout_s, log_name, stop)
        tally.add(rc if stop is None or not stop.is_set() else 0)
        if rc not in (0, None):
            log.info("%s exited %s (see logs/%s)", step.argv[0], rc, log_name)
        if step.pause_s:
            if stop is not None:
                stop.wait(step.pause_s)
            else:
                time.sleep(step.pause_s)


def _run_attack(
    lab: Testbed, name: str, ctx: LabContext, tally: _StepCounter, settle_s: float
) -> list[LabelRow]:
    """Run attack ``name``; its label window spans the tool run plus ``settle_s`` s for the last replies
    (one row for the victim, and one for each neighbour when the attack is a sweep)."""
    scenario = SCENARIOS[name]
    assert scenario.label is not None
    steps = build_steps(name, ctx)
    for step in steps:
        print(f"  {name}: {' '.join(step.argv)}", file=sys.stderr)
    start = time.time()
    _run_steps(lab, steps, f"{name}.log", tally)
    end = time.time()
    time.sleep(settle_s)
    victims = [ctx.victim, *(ctx.neighbours if name in SWEEPS else ())]
    attacker = ANY_SOURCE if name in SPOOFED else ctx.attacker
    return [LabelRow(name, scenario.label, attacker, v, start, end + settle_s) for v in victims]


def run_scenario(lab: Testbed, name: str, ctx: LabContext, out: Path, settle_s: float) -> ScenarioResult:
    """Record one simple or composite scenario into ``out/<name>.pcap``."""
    pcap = out / f"{name}.pcap"
    tally = _StepCounter()
    rows: list[LabelRow] = []
    cap = lab.start_capture(pcap)
    time.sleep(0.5)
    if name in COMPOSITES:
        comp = COMPOSITES[name]
        stop = threading.Event()

        def loop(k: int, bg: str) -> None:
            i = 0
            while not stop.is_set():
                sub = replace(ctx, seed=(ctx.seed * 1000 + i) * 16 + k, light=True, scale=0.5 * ctx.scale)
                _run_steps(lab, build_steps(bg, sub), f"{name}-{bg}.log", tally, stop)
                i += 1

        threads = [threading.Thread(target=loop, args=kb, daemon=True) for kb in enumerate(comp.background)]
        for t in threads:
            t.start()
        try:
            time.sleep(comp.lead_s)
            for i, (attack, factor) in enumerate(comp.attacks):
                if i:
                    time.sleep(comp.gap_s)
                rows += _run_attack(lab, attack, replace(ctx, scale=ctx.scale * factor), tally, settle_s)
            time.sleep(comp.tail_s)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=15)
    elif SCENARIOS[name].label is not None:
        rows += _run_attack(lab, name, ctx, tally, settle_s)
    else:
        _run_steps(lab, build_steps(name, ctx), f"{name}.log", tally)
    time.sleep(settle_s)
    capture = lab.stop_capture(cap, pcap)
    stats = capture_stats(pcap)
    result = ScenarioResult(
        name, sorted({r.label for r in rows}), pcap.name, stats.packets, capture.dropped, stats.duration,
        stats.bytes_on_disk, tally.ok, tally.failed, tally.killed, rows=rows,
    )  # fmt: skip
    return result


def _print_summary(results: Sequence[ScenarioResult]) -> None:
    print(f"{'scenario':<15} {'packets':>8} {'dropped':>7} {'dur s':>6} {'pcap MB':>8} "
          f"{'steps ok/fail/kill':>18} {'attacks':>7} {'outside':>7}  labels")  # fmt: skip
    for r in results:
        steps = f"{r.steps_ok}/{r.steps_failed}/{r.steps_killed}"
        labels = ", ".join(r.labels) or "BENIGN"
        runs = len({(w.scenario, w.start) for w in r.rows})
        print(f"{r.name:<15} {r.packets:>8} {r.dropped:>7} {r.duration_s:>6.1f} {r.pcap_bytes / 1e6:>8.2f} "
              f"{steps:>18} {runs:>7} {r.attacker_outside:>7}  {labels}")  # fmt: skip
    print("attacks: labelled attack runs; outside: packets to/from an attacker outside every label window")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab.run_lab", description=__doc__.splitlines()[0])
    p.add_argument(
        "--out", type=Path, help="output directory (default lab/out/seed-SEED, lab/out/demo with --demo)"
    )
    p.add_argument("--seed", type=int, help="seed of addresses, timings and tool options (default 1; demo 7)")
    p.add_argument(
        "--scenarios", default=None, help="comma list of scenarios or groups all, benign, attacks, demo"
    )
    p.add_argument("--scale", type=float, default=1.0, help="multiply counts and durations (default 1.0)")
    p.add_argument("--labels", type=Path, help="labels file (default OUT/labels.csv)")
    p.add_argument("--settle", type=float, default=2.0, help="seconds recorded after each attack (default 2)")
    p.add_argument("--demo", action="store_true", help="record the demo capture and copy it to lab/captures/")
    p.add_argument(
        "--wan",
        action="store_true",
        help="put the client and attacker behind a seeded WAN (tc netem: delay, jitter, loss, rate)",
    )
    p.add_argument("--no-install", action="store_true", help="never apt-get; fail when a tool is missing")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.list:
        for s in SCENARIOS.values():
            print(f"{s.name:<15} {s.label or 'BENIGN':<16} {s.summary}")
        for c in COMPOSITES.values():
            print(f"{c.name:<15} {'mixed':<16} {c.summary}")
        return 0
    try:
        names = select_scenarios(args.scenarios or ("demo" if args.demo else "all"))
        scale = validate_scale(args.scale)
        if args.settle < 0 or args.settle > 60:
            raise ScenarioError(f"--settle {args.settle} is outside [0, 60]")
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.demo and names != ["demo"]:
        print("error: --demo records only the demo scenario; drop --scenarios", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else (DEMO_SEED if args.demo else 1)
    out: Path = (args.out or LAB_DIR / "out" / ("demo" if args.demo else f"seed-{seed}")).resolve()
    labels_path: Path = (args.labels or out / "labels.csv").resolve()
    if os.geteuid() != 0:
        print(
            "error: the lab needs root (network namespaces, raw sockets); run it with sudo", file=sys.stderr
        )
        return 2
    lab: Testbed | None = None
    old = {s: signal.signal(s, _raise_exit) for s in (signal.SIGTERM, signal.SIGHUP)}
    # Ctrl-C interrupts even when started in the background (where SIGINT is inherited as ignored).
    old[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        check_devnull()
        ensure_tools(install=not args.no_install)
        out.mkdir(parents=True, exist_ok=True)
        for stale in remove_stale_namespaces():
            log.warning("removed namespace %s left by a killed lab run", stale)
        work = out / "work"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        rng = scenario_rng(seed, "testbed")
        hosts = rng.sample(range(10, 250), 5)
        attacker, clients = f"198.51.100.{hosts[0]}", tuple(f"203.0.113.{h}" for h in hosts[1:])
        password = f"lab-{rng.randrange(16**8):08x}"
        lab = Testbed(work, out / "logs", VICTIM, attacker, clients, NEIGHBOURS)
        atexit.register(lab.close)
        lab.ensure_user(SSH_USER, password)
        web, uploads, downloads = _make_files(work, rng, Path(f"/home/{SSH_USER}"))
        wordlist = work / "wordlist.txt"
        wordlist.write_text("\n".join(make_wordlist(rng, max(10, round(60 * scale)), password)) + "\n")
        ctx = LabContext(
            victim=VICTIM, attacker=attacker, clients=clients, web_files=tuple(web), ssh_user=SSH_USER,
            ssh_password=password, upload_files=tuple(uploads), download_files=tuple(downloads),
            wordlist=str(wordlist), workdir=str(work), python=sys.executable,
            dnslike=str(LAB_DIR / "dnslike.py"), seed=seed, scale=scale, neighbours=NEIGHBOURS,
        )  # fmt: skip
        lab.up()
        wan = draw_wan(scenario_rng(seed, "wan")) if args.wan else None
        if wan is not None:
            lab.shape(wan)
        lab.start_servers(work / "www", LAB_DIR / "dnslike.py", sys.executable, SSH_USER, password)
        results: list[ScenarioResult] = []
        rows: list[LabelRow] = []
        t0 = time.monotonic()
        for name in names:
            print(f"[{time.monotonic() - t0:6.1f} s] scenario {name}", file=sys.stderr)
            check_devnull()
            result = run_scenario(lab, name, ctx, out, args.settle)
            check_devnull()
            rows += result.rows
            write_labels(labels_path, rows)
            results.append(result)
        for r in results:
            r.attacker_outside = check_labels(out / r.pcap, rows).outside if rows else 0
        lab.close()
        shutil.rmtree(work, ignore_errors=True)
        summary = {
            "seed": seed, "scale": scale, "victim": VICTIM, "attacker": attacker, "clients": list(clients),
            "labels": str(labels_path), "seconds": round(time.monotonic() - t0, 1),
            "wan": wan.to_dict() if wan is not None else None,
            "scenarios": [{k: v for k, v in vars(r).items() if k != "rows"} for r in results],
        }  # fmt: skip
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        _print_summary(results)
        print(f"labels: {labels_path} ({len(rows)} rows); total {summary['seconds']} s", file=sys.stderr)
        if args.demo:
            return _publish_demo(out, labels_path, rows)
        return 0
    except (LabError, ScenarioError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; testbed removed", file=sys.stderr)
        return 130
    finally:
        for s in old:
            signal.signal(s, signal.SIG_IGN)
        if lab is not None:
            lab.close()
        for s, handler in old.items():
            signal.signal(s, handler)


def _publish_demo(out: Path, labels_path: Path, rows: Sequence[LabelRow]) -> int:
    """Copy the demo capture and labels to lab/captures/ if small and consistent."""
    pcap = out / "demo.pcap"
    size = pcap.stat().st_size
    if size > DEMO_MAX_BYTES:
        print(
            f"error: {pcap} is {size} bytes, over the {DEMO_MAX_BYTES} byte limit; not published",
            file=sys.stderr,
        )
        return 1
    check = check_labels(pcap, rows)
    if not check.ok:
        print(f"error: {pcap}: labels inconsistent with packets ({check.outside} attacker packets outside "
              "windows or a window without packets); not published", file=sys.stderr)  # fmt: skip
        return 1
    dest = LAB_DIR / "captures"
    dest.mkdir(exist_ok=True)
    shutil.copyfile(pcap, dest / "demo.pcap")
    shutil.copyfile(labels_path, dest / "demo.labels.csv")
    print(f"published {dest / 'demo.pcap'} ({size} bytes) and {dest / 'demo.labels.csv'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
