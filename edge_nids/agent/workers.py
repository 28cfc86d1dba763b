"""Capture workers: N processes share one interface through ``PACKET_FANOUT``.

``edge-nids run --iface IF --workers N`` (config ``capture.workers``) starts N worker
processes. Each opens its own AF_PACKET socket on IF and joins one fanout group in
``PACKET_FANOUT_HASH`` mode with ``PACKET_FANOUT_FLAG_DEFRAG``: the kernel reassembles
IP fragments first, then sends every packet to the worker its flow hash picks. That
hash is the kernel's symmetric flow hash, so both directions of a flow reach the same
worker (measured on a veth: 4,000 TCP and UDP flows sent both ways, none split). Each
worker has its own decoder, flow table and classifier and writes its flow events
itself (whole lines, one ``write`` per batch on an ``O_APPEND`` file: several
processes share the file without mixing lines).

The service process stays the one service: it keeps the signals, sd_notify (READY
once every worker has loaded its model, one STATUS), the alert outputs and the alert
aggregation. Workers send it their alerts (in batches, with their capture time) and
their counters (every second and at exit); its stats are the workers' sums. SIGHUP
reloads the config and model in the service (a broken one is refused there) and then
in every worker; SIGTERM stops the workers, which classify their open flows, send the
last alerts and counters, and exit; then the service writes the final stats line.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import select
import signal
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from edge_nids.agent.stats import AgentStats

__all__ = ["FANOUT_MODE", "default_workers", "join_fanout", "run_live_workers", "worker_count"]

log = logging.getLogger(__name__)

SOL_PACKET = 263
PACKET_FANOUT = 18
PACKET_FANOUT_HASH = 0
PACKET_FANOUT_FLAG_DEFRAG = 0x8000
#: Fanout mode: the symmetric flow hash, after IP defragmentation.
FANOUT_MODE = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG

#: Counters summed over the workers (the rest of AgentStats is the service's own).
_SUMMED = (
    "packets",
    "bytes",
    "filtered",
    "decoded",
    "flows",
    "flows_active_classified",
    "alerts",
    "suppressed",
    "escalated",
    "batches",
    "kernel_drops",
    "evicted",
    "dropped_single",
    "remnants",
    "capture_errors",
    "open_flows",
)
_STOP_WAIT_S = 60.0  # longest wait for the workers' last flows at exit, s


def default_workers(cpus: int | None = None) -> int:
    """Workers for a machine with ``cpus`` CPUs: one per CPU but one (left to the service,
    the kernel and the rest), at most 4; a single process on 1-2 CPUs."""
    n = cpus if cpus is not None else (os.cpu_count() or 1)
    return 1 if n <= 2 else min(4, n - 1)


def worker_count(configured: int | None) -> tuple[int, str]:
    """(workers to run, how that was chosen) for ``capture.workers``."""
    if configured:
        return configured, "configured"
    cpus = os.cpu_count() or 1
    return default_workers(cpus), f"auto for {cpus} CPUs"


def join_fanout(fd: int, group: int, mode: int = FANOUT_MODE) -> None:
    """Put the AF_PACKET socket ``fd`` (bound to its interface) in fanout ``group``."""
    s = socket.socket(fileno=os.dup(fd))
    try:
        s.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack("HH", group & 0xFFFF, mode))
    finally:
        s.close()


# -- worker side --------------------------------------------------------------------------


def _send(conn: Connection, msg: tuple[Any, ...]) -> bool:
    """Send to the service; False (logged once by the caller's exit) if it is gone."""
    try:
        conn.send(msg)
        return True
    except (BrokenPipeError, ConnectionResetError, EOFError):
        return False


class _Forwarder:
    """Stands in for the worker pipeline's Aggregator: alerts go to the service, which
    aggregates them (one aggregation for all workers)."""

    def __init__(self, conn: Connection, index: int) -> None:
        self.conn = conn
        self.index = index
        self.window_us = 0
        self.max_groups = 0
        self.emitted_lines = 0
        self._batch: list[tuple[int, dict[str, Any], Any]] = []

    def __len__(self) -> int:
        return 0

    def add(self, alert: Any, ts_us: int, key: Any = None) -> None:
        # with its group key: the service's aggregation merges as a single process would
        self._batch.append((ts_us, alert() if callable(alert) else alert, key))
        if len(self._batch) >= 256:
            self.flush()

    def tick(self, now_us: int) -> None:
        self.flush()

    def flush(self) -> None:
        if self._batch:
            _send(self.conn, ("alerts", self.index, self._batch))
            self._batch = []


def _send_stats(conn: Connection, index: int, st: AgentStats) -> bool:
    snap = {k: getattr(st, k) for k in _SUMMED}
    snap["malformed"] = dict(st.malformed)
    snap["sink_errors"] = st.sink_errors
    return _send(conn, ("stats", index, snap, list(st._lat_batch), list(st._lat_flow)))


def worker_main(
    index: int,
    group: int,
    iface: str,
    cfg: Any,
    config_path: str | None,
    overrides: dict[str, Any],
    bpf: list[tuple[int, int, int, int]] | None,
    conn: Connection,
) -> None:
    """One capture worker (a spawned process): capture, classify, write flow events."""
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s %(levelname)s %(name)s[worker {index}]: %(message)s"
    )
    from edge_nids.agent.capture import CaptureOpenError, LiveCapture
    from edge_nids.agent.config import ConfigError, load_config, with_overrides
    from edge_nids.agent.pipeline import Pipeline
    from edge_nids.agent.service import AgentError, load_model
    from edge_nids.agent.sinks import SinkError, open_path_sink

    stop = False

    def on_stop(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the service forwards reloads
    try:
        model = load_model(cfg)
        flows = open_path_sink(cfg.outputs.flows)
    except (AgentError, SinkError) as exc:
        _send(conn, ("error", index, str(exc)))
        return
    st = AgentStats()
    pipe = Pipeline(cfg, model, None, flows, st, iface)
    pipe.aggregator = _Forwarder(conn, index)  # type: ignore[assignment]
    _send(conn, ("ready", index))
    c = cfg.capture
    tick_s = c.tick_ms / 1000.0
    backoff = c.retry_initial_s
    cap: Any = None
    next_retry = next_stats = next_check = 0.0
    drops_base = 0
    wall_us: Callable[[], int] = lambda: time.time_ns() // 1000  # noqa: E731

    def reload() -> None:
        nonlocal cfg, model, flows
        try:
            new = with_overrides(load_config(config_path), overrides)
            m = load_model(new)
        except (ConfigError, AgentError) as exc:
            log.error("reload refused: %s", exc)
            return
        import dataclasses

        new = dataclasses.replace(new, capture=cfg.capture, flows=cfg.flows)  # need a restart
        if new.outputs.flows != cfg.outputs.flows:
            try:
                out = open_path_sink(new.outputs.flows)
            except SinkError as exc:
                log.error("reload refused: %s", exc)
                return
            if flows is not None:
                flows.close()
            flows = pipe.flows_out = out
        elif flows is not None:
            flows.reopen()
        cfg, model = new, m
        pipe.update(new, m)

    while not stop:
        now = time.monotonic()
        if cap is None and now >= next_retry:
            try:
                cap = LiveCapture.from_config(iface, c, bpf)
                join_fanout(cap.fileno(), group)
                cap.log_open()
                backoff = c.retry_initial_s
                _send(conn, ("capturing", index))
            except CaptureOpenError as exc:
                if cap is not None:
                    cap.close()
                    cap = None
                if exc.errno in (errno.EPERM, errno.EACCES):
                    _send(conn, ("error", index, str(exc.strerror or exc)))
                    return
                st.capture_errors += 1
                _send(conn, ("waiting", index, f"waiting for {iface}: {exc.strerror or exc}"))
                next_retry = now + backoff
                backoff = min(backoff * 2, c.retry_max_s)
            except OSError as exc:  # joining the fanout group failed
                if cap is not None:
                    cap.close()
                why = f"cannot join the fanout group on {iface}: {exc.strerror or exc}"
                _send(conn, ("error", index, why))
                return
        fds = [conn] + ([cap.fileno()] if cap is not None else [])
        try:
            ready, _, _ = select.select(fds, [], [], tick_s)
        except InterruptedError:
            ready = []
        if conn in ready:
            try:
                msg = conn.recv()
            except EOFError:
                break  # the service is gone
            if msg[0] == "stop":
                stop = True
            elif msg[0] == "reload":
                reload()
        lost = False
        if cap is not None and cap.fileno() in ready:
            try:
                for rec in cap.read(512):
                    pipe.packet(rec)
            except CaptureOpenError as exc:
                log.error("%s; reopening", exc.strerror or exc)
                lost = True
        now = time.monotonic()
        if cap is not None and now >= next_check:
            next_check = now + 1.0
            st.kernel_drops = drops_base + cap.read_drops()
            if not lost and not cap.still_there():
                log.error("interface %s went away; reopening", iface)
                lost = True
        if lost:
            st.capture_errors += 1
            drops_base += cap.read_drops()
            cap.close()
            cap = None
            next_retry = time.monotonic() + backoff
            backoff = min(backoff * 2, c.retry_max_s)
        pipe.tick(max(wall_us(), pipe.now_us))
        if now >= next_stats:
            next_stats = now + 1.0
            st.sink_errors = flows.errors if flows is not None else 0
            if not _send_stats(conn, index, st):
                break  # the service is gone
    if cap is not None:
        try:
            for rec in cap.drain():  # frames already queued belong to this run
                pipe.packet(rec)
        except CaptureOpenError as exc:
            log.error("%s", exc.strerror or exc)
        st.kernel_drops = drops_base + cap.read_drops()
        cap.close()
    pipe.finish()
    pipe.aggregator.flush()
    if flows is not None:
        flows.close()
        st.sink_errors = flows.errors
    _send_stats(conn, index, st)
    if not _send(conn, ("done", index)):
        log.error("the service is gone: this worker's last alerts and counters are lost")


# -- service side -------------------------------------------------------------------------


class _Sums:
    """The workers' latest counters, summed into the service's AgentStats."""

    def __init__(self, svc: Any, n: int) -> None:
        self.svc = svc
        self.snaps: dict[int, dict[str, Any]] = {}
        self.lat: dict[int, tuple[list[float], list[float]]] = {}
        self.n = n

    def apply(self, st: AgentStats) -> None:
        snaps = list(self.snaps.values())
        for k in _SUMMED:
            setattr(st, k, sum(s[k] for s in snaps))
        mal: dict[str, int] = {}
        for s in snaps:
            for reason, v in s["malformed"].items():
                mal[reason] = mal.get(reason, 0) + v
        st.malformed = mal
        svc = self.svc
        own = sum(s.errors for s in (svc._alerts, svc._flows) if s is not None)
        st.sink_errors = svc._closed_sink_errors + own + sum(s["sink_errors"] for s in snaps)
        lb = [v for b, _ in self.lat.values() for v in b]
        lf = [v for _, f in self.lat.values() for v in f]
        st._lat_batch = deque(lb[-st.window :])
        st._lat_flow = deque(lf[-st.window :])


def run_live_workers(svc: Any, iface: str, bpf: list[tuple[int, int, int, int]] | None, n: int) -> None:
    """The service side of ``--workers N``: start the workers, merge what they send, stop them."""
    from edge_nids.agent.service import AgentError

    ctx = multiprocessing.get_context("spawn")
    group = os.getpid() & 0xFFFF
    pipeline = svc.pipeline
    sums = _Sums(svc, n)
    pipeline.external_counters = sums.apply
    conns: dict[int, Connection] = {}
    procs: list[Any] = []
    for i in range(n):
        parent, child = ctx.Pipe(duplex=True)
        p = ctx.Process(
            target=worker_main,
            args=(i, group, iface, svc.cfg, svc.config_path, svc.overrides, bpf, child),
            name=f"edge-nids-worker-{i}",
        )
        p.start()
        child.close()
        conns[i] = parent
        procs.append(p)
    log.info("capturing on %s with %d workers (PACKET_FANOUT group %d, flow hash)", iface, n, group)
    ready: set[int] = set()
    capturing: set[int] = set()
    done: set[int] = set()
    stop_sent = False
    stop_deadline = float("inf")
    wall_us: Callable[[], int] = lambda: time.time_ns() // 1000  # noqa: E731
    tick_s = svc.cfg.capture.tick_ms / 1000.0
    failure: str | None = None

    def handle(i: int, msg: tuple[Any, ...]) -> None:
        nonlocal failure
        kind = msg[0]
        if kind == "alerts":
            agg = pipeline.aggregator
            for ts, rec, key in msg[2]:
                if ts > pipeline.now_us:
                    pipeline.now_us = ts
                agg.add(rec, ts, key)
        elif kind == "stats":
            sums.snaps[i] = msg[2]
            sums.lat[i] = (msg[3], msg[4])
        elif kind == "ready":
            ready.add(i)
            if len(ready) == n:
                svc.notifier.ready(f"{n} workers on {iface}")
        elif kind == "capturing":
            capturing.add(i)
            if len(capturing) == n:
                svc.notifier.status(f"capturing on {iface} with {n} workers")
        elif kind == "waiting":
            capturing.discard(i)
            svc.notifier.status(msg[2])
        elif kind == "done":
            done.add(i)
        elif kind == "error":
            failure = f"worker {i}: {msg[2]}"

    try:
        while len(done) < n:
            if svc.stop_requested and not stop_sent:
                for i, c in conns.items():
                    if i not in done:
                        try:
                            c.send(("stop",))
                        except OSError:
                            pass
                stop_sent = True
                stop_deadline = time.monotonic() + _STOP_WAIT_S
            if time.monotonic() > stop_deadline:
                log.error("workers did not stop within %.0f s; terminating them", _STOP_WAIT_S)
                break
            live = [c for i, c in conns.items() if i not in done]
            r, _, _ = select.select([*live, svc._wake_r], [], [], tick_s)
            if svc._wake_r in r:
                before = svc.cfg
                svc._drain_signals()
                if svc.cfg is not before:  # reloaded in the service: now in the workers
                    for i, c in conns.items():
                        if i not in done:
                            c.send(("reload",))
            for i, c in list(conns.items()):
                if c in r and i not in done:
                    try:
                        while c.poll():
                            handle(i, c.recv())
                    except EOFError:
                        done.add(i)
                        if not stop_sent:
                            failure = failure or f"worker {i} exited (status {procs[i].exitcode})"
            if failure:
                svc.stop_requested = True
                if not stop_sent:
                    continue  # stop the others first, then report
            pipeline.tick(max(wall_us(), pipeline.now_us))
            svc._periodic()
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        for c in conns.values():
            c.close()
    if failure:
        raise AgentError(failure)
