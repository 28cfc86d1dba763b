"""The agent's service loop: capture (live or replay), signals, reload, statistics, sd_notify.

Signals arrive through a self-pipe (``signal.set_wakeup_fd``), so the loop
wakes from ``select`` at once and handles them between packets:

* SIGTERM / SIGINT: stop capturing, flush and classify every open flow, write
  the last alerts and statistics, exit 0.
* SIGHUP: reload the config file and the model; a broken config or model is
  refused with a logged error and the running one is kept. File outputs are
  reopened (log rotation).

READY=1 goes to systemd once the model and the outputs are loaded, not once
the capture opens: a missing or down interface is logged and retried with
exponential backoff while the process keeps running, and STATUS= names it
until the capture opens (the service starts on a box without that interface).
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import select
import signal
import time
from collections.abc import Callable
from typing import Any

from edge_nids.agent.bpf import BpfProgram
from edge_nids.agent.capture import CaptureOpenError, LiveCapture, compile_bpf, interface_state
from edge_nids.agent.config import AgentConfig, ConfigError, load_config, with_overrides
from edge_nids.agent.pipeline import REPLAY_DEFER_US, Model, Pipeline
from edge_nids.agent.sdnotify import Notifier
from edge_nids.agent.sinks import AlertSink, MqttSink, MultiSink, SinkError, SyslogSink, open_path_sink
from edge_nids.agent.stats import AgentStats, PrometheusServer

__all__ = ["AgentError", "ReplayFilter", "Service", "build_outputs", "load_model"]

log = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class AgentError(RuntimeError):
    """A fatal, user-facing problem at start (bad model, bad capture file, output not writable)."""


def load_model(cfg: AgentConfig) -> Model:
    """Load the configured (or default) bundle and its classifier; AgentError on any problem."""
    from edge_nids.agent.classifier import Classifier
    from edge_nids.bundle import BundleError, default_bundle_path, load_bundle

    path: Any = cfg.model.path
    try:
        if path is None:
            path = default_bundle_path()
        bundle = load_bundle(path)
        classifier = Classifier(bundle)
    except BundleError as exc:
        raise AgentError(str(exc)) from None
    except ImportError as exc:  # the LiteRT runtime (agent extra) is missing
        raise AgentError(str(exc)) from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise AgentError(f"model {path}: cannot load: {exc}") from None
    threshold = cfg.model.threshold if cfg.model.threshold is not None else float(bundle.threshold)
    meta = bundle.meta
    name = bundle.name
    # version: the bundle's own, else the first 12 hex digits of its model's sha256
    digest = (meta.get("sha256") or {}).get(meta.get("model_file", ""), "")
    version = str(meta.get("version") or digest[:12])
    profile = bundle.profile or "cicids2017"
    labels = [str(x) for x in bundle.labels]
    escalation = bundle.escalation if cfg.model.escalate else None  # load_bundle checked it
    model = Model(bundle, classifier, threshold, name, version, profile, labels, escalation=escalation)
    from edge_nids.agent.stages import StageError, load_stages

    try:  # family trees, explanations, the site file (checked against this bundle)
        model.stages = load_stages(model, cfg.model.site)
    except StageError as exc:
        raise AgentError(str(exc)) from None
    return model


def build_outputs(cfg: AgentConfig) -> tuple[AlertSink | None, AlertSink | None]:
    """Open the alert sinks and the flow-event sink; AgentError naming the one that failed."""
    opened: list[AlertSink] = []
    try:
        main = open_path_sink(cfg.outputs.alerts)
        if main is not None:
            opened.append(main)
        sc = cfg.outputs.syslog
        if sc.enabled:
            opened.append(SyslogSink(sc.address, sc.facility, sc.ident))
        mc = cfg.outputs.mqtt
        if mc.enabled:
            opened.append(
                MqttSink(
                    mc.host, mc.port, mc.topic, mc.qos, mc.client_id, mc.username, mc.password, mc.keepalive_s
                )
            )
        flows = open_path_sink(cfg.outputs.flows)
    except SinkError as exc:
        for s in opened:
            s.close()
        raise AgentError(str(exc)) from None
    alerts: AlertSink | None = None
    if len(opened) == 1:
        alerts = opened[0]
    elif opened:
        alerts = MultiSink(opened)
    return alerts, flows


class ReplayFilter:
    """``capture.bpf`` for a capture file: one BPF program per link type in the file.

    The file's first link type is compiled at once (``tcpdump -r FILE``, exact for
    that file), so a bad expression stops the agent before it starts; a pcapng
    interface of another link type gets its program when its first frame comes.
    AgentError names the expression (and the link type) when it does not compile.
    """

    def __init__(self, expr: str, path: str) -> None:
        self.expr = expr
        self.path = path
        self.programs: dict[int, BpfProgram] = {}
        first = _first_linktype(path)
        try:
            if first is None:  # no frames to filter: still refuse a bad expression, as live capture does
                compile_bpf(expr)
                return
            try:
                insns = compile_bpf(expr, pcap=path, linktype=first)
            except ValueError:
                # libpcap may refuse a file this reader accepts: compile for its link type instead (a
                # bad expression fails again, with tcpdump's message about it)
                insns = compile_bpf(expr, linktype=first)
        except ValueError as exc:
            raise AgentError(str(exc)) from None
        self.programs[first] = self._program(insns, first)

    def _compile(self, linktype: int) -> list[tuple[int, int, int, int]]:
        """Instructions for a link type met after the first (another pcapng interface)."""
        try:
            return compile_bpf(self.expr, linktype=linktype)
        except ValueError as exc:
            raise AgentError(f"{self.path}: an interface of link type {linktype}: {exc}") from None

    def _program(self, insns: list[tuple[int, int, int, int]], linktype: int) -> BpfProgram:
        try:
            return BpfProgram(insns)
        except ValueError as exc:
            raise AgentError(f"BPF filter {self.expr!r} for link type {linktype}: {exc}") from None

    def matches(self, rec: tuple[int, int, bytes, int]) -> bool:
        """True if the filter accepts this record (ts_us, linktype, frame, wire_len)."""
        prog = self.programs.get(rec[1])
        if prog is None:
            prog = self.programs[rec[1]] = self._program(self._compile(rec[1]), rec[1])
        return prog.matches(rec[2], rec[3])


def _first_linktype(path: str) -> int | None:
    """The link type ``tcpdump -r`` compiles for: the pcap header's, or the first pcapng interface's.

    None for a pcapng file without frames (nothing to filter).
    """
    from edge_nids.flows.pcap import CaptureError, open_capture

    try:
        with open_capture(path) as cap:
            if cap.format == "pcap":
                return cap.linktype
            for _ in cap:
                return cap.linktype  # set once the first interface is read, before any frame
    except CaptureError as exc:
        raise AgentError(str(exc)) from None
    return None


class Service:
    """One agent run. ``run()`` returns the exit status."""

    def __init__(
        self, cfg: AgentConfig, config_path: str | None = None, overrides: dict[str, Any] | None = None
    ):
        self.cfg = cfg
        self.config_path = config_path
        self.overrides = dict(overrides or {})
        self.stats = AgentStats()
        self.notifier = Notifier()
        self.stop_requested = False
        self._wake_r = -1
        self._wake_w = -1
        self._old_handlers: dict[int, Any] = {}
        self._old_wakeup = -1
        self.pipeline: Pipeline | None = None
        self._alerts: AlertSink | None = None
        self._flows: AlertSink | None = None
        self._prom: PrometheusServer | None = None
        self._next_stats = 0.0
        self._next_status = 0.0
        self._closed_sink_errors = 0
        #: why live capture is not running (missing or down interface), for STATUS=; None while it runs
        self._waiting: str | None = None

    # -- signals ------------------------------------------------------------------------

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        for sig in (*_STOP_SIGNALS, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, lambda s, f: None)
        self._old_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)

    def _restore_signals(self) -> None:
        signal.set_wakeup_fd(self._old_wakeup)
        for sig, h in self._old_handlers.items():
            signal.signal(sig, h)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def _drain_signals(self) -> None:
        """Read the self-pipe and act on the signals in it."""
        try:
            data = os.read(self._wake_r, 512)
        except BlockingIOError:
            return
        for signum in data:
            if signum in _STOP_SIGNALS:
                if not self.stop_requested:
                    log.info("signal %s: stopping", signal.Signals(signum).name)
                self.stop_requested = True
            elif signum == signal.SIGHUP:
                self.reload()

    # -- reload -------------------------------------------------------------------------

    def reload(self) -> bool:
        """SIGHUP: reload config and model; keep the running ones if either is broken.

        The file outputs are reopened either way (logrotate's SIGHUP must not leave the agent
        writing to a rotated file because the config on disk is broken).
        """
        assert self.pipeline is not None
        self.notifier.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        reopened = False
        try:
            try:
                new = load_config(self.config_path)
                new = with_overrides(new, self.overrides)
            except ConfigError as exc:
                log.error("reload refused, keeping the running config and model: %s", exc)
                return False
            try:
                model = load_model(new)
            except AgentError as exc:
                log.error("reload refused, keeping the running config and model: %s", exc)
                return False
            if model.profile != self.pipeline.model.profile:
                log.error(
                    "reload refused, keeping the running model: new model needs flow profile %r, "
                    "running with %r (restart the agent to switch)",
                    model.profile,
                    self.pipeline.model.profile,
                )
                return False
            if new.capture != self.cfg.capture or new.flows != self.cfg.flows:
                log.warning("capture and flows settings changed: they take effect at the next restart")
                new = dataclasses.replace(new, capture=self.cfg.capture, flows=self.cfg.flows)
            if new.outputs != self.cfg.outputs:
                try:
                    alerts, flows = build_outputs(new)
                except AgentError as exc:
                    log.error("reload refused, keeping the running config and model: %s", exc)
                    return False
                self.pipeline.finish_aggregation()
                self._close_outputs()
                self._alerts, self._flows = alerts, flows
                self.pipeline.alerts, self.pipeline.flows_out = alerts, flows
            else:
                for s in (self._alerts, self._flows):
                    if s is not None:
                        s.reopen()
            reopened = True
            self.cfg = new
            self.pipeline.update(new, model)
            log.info("reloaded: model %s %s (threshold %.4f)", model.name, model.version, model.threshold)
            return True
        finally:
            if not reopened:
                for s in (self._alerts, self._flows):
                    if s is not None:
                        s.reopen()
            self.notifier.notify("READY=1", f"STATUS={self._status_text()}")

    # -- main ---------------------------------------------------------------------------

    def run(self) -> int:
        """Run until the capture ends or a stop signal; returns 0, or raises AgentError at start."""
        cfg = self.cfg
        if not cfg.capture.iface and not cfg.capture.pcap:
            raise AgentError(
                "nothing to capture: give --iface IF or --pcap FILE (or capture.iface in the config)"
            )
        # the filter first: a bad expression is reported before the model is loaded
        bpf = None
        replay_filter = None
        if cfg.capture.bpf and cfg.capture.pcap:
            replay_filter = ReplayFilter(cfg.capture.bpf, cfg.capture.pcap)
        elif cfg.capture.bpf:
            try:
                bpf = compile_bpf(cfg.capture.bpf, cfg.capture.iface)
            except ValueError as exc:
                raise AgentError(str(exc)) from None
        model = load_model(cfg)
        self._alerts, self._flows = build_outputs(cfg)
        self.pipeline = Pipeline(cfg, model, self._alerts, self._flows, self.stats, cfg.capture.iface)
        log.info(
            "model %s %s, profile %s, threshold %.4f, %s, batches of up to %d flows, "
            "flow table bound %d flows",
            model.name,
            model.version,
            model.profile,
            model.threshold,
            f"escalation {model.escalation.describe()}" if model.escalation else "no escalation",
            self.pipeline.batch_size,
            self.pipeline.table.config.max_flows,
        )
        if cfg.stats.prometheus_port:
            try:
                self._prom = PrometheusServer(
                    lambda: self.stats, cfg.stats.prometheus_address, cfg.stats.prometheus_port
                )
            except OSError as exc:
                self._close_outputs()
                raise AgentError(
                    f"cannot serve metrics on port {cfg.stats.prometheus_port}: {exc.strerror}"
                ) from None
        self._install_signals()
        try:
            self._schedule_stats()
            if cfg.capture.pcap:
                self._run_pcap(cfg.capture.pcap, cfg.capture.realtime, replay_filter)
            else:
                from edge_nids.agent.workers import run_live_workers, worker_count

                workers, how = worker_count(cfg.capture.workers)
                log.info("capture workers: %d (%s)", workers, how)
                if workers > 1:
                    run_live_workers(self, cfg.capture.iface or "", bpf, workers)
                else:
                    self._run_live(cfg.capture.iface or "", bpf)
            self.notifier.stopping()
            self.pipeline.finish()
            self._emit_stats(final=True)
        finally:
            self._restore_signals()
            self._close_outputs()
            if self._prom is not None:
                self._prom.close()
            self.notifier.close()
        return 0

    def _close_outputs(self) -> None:
        for s in (self._alerts, self._flows):
            if s is not None:
                s.close()
                self._closed_sink_errors += s.errors
        self._alerts = self._flows = None
        self._count_sink_errors()

    def _count_sink_errors(self) -> None:
        live = sum(s.errors for s in (self._alerts, self._flows) if s is not None)
        self.stats.sink_errors = self._closed_sink_errors + live

    # -- statistics -----------------------------------------------------------------------

    def _schedule_stats(self) -> None:
        now = time.monotonic()
        iv = self.cfg.stats.interval_s
        self._next_stats = now + iv if iv > 0 else float("inf")
        self._next_status = now + 2.0

    def _status_text(self) -> str:
        """STATUS= text: what the capture waits for while it waits, else the counters."""
        return self._waiting or self.stats.status_line()

    def _periodic(self) -> None:
        now = time.monotonic()
        if now >= self._next_status:
            self._next_status = now + 2.0
            self.notifier.status(self._status_text())
        if now >= self._next_stats:
            self._next_stats = now + self.cfg.stats.interval_s
            self._emit_stats(final=False)

    def _emit_stats(self, final: bool) -> None:
        assert self.pipeline is not None
        self._count_sink_errors()
        self.pipeline.tick(self.pipeline.now_us)
        log.info("%s: %s", "final stats" if final else "stats", self.stats.log_line())
        if self.cfg.stats.eve and self._alerts is not None:
            self._alerts.emit(self.pipeline.stats_event())

    # -- replay ---------------------------------------------------------------------------

    def _run_pcap(self, path: str, realtime: bool, bpf: ReplayFilter | None = None) -> None:
        """Replay ``path`` through the pipeline; frames ``bpf`` rejects are counted, not decoded."""
        from edge_nids.flows.pcap import CaptureError, open_capture

        assert self.pipeline is not None
        try:
            cap = open_capture(path)
        except CaptureError as exc:
            raise AgentError(str(exc)) from None
        packet = self.pipeline.packet
        if not realtime:
            # nobody waits on capture time here: ended flows share model calls (same records)
            self.pipeline.defer_us = REPLAY_DEFER_US
        self.notifier.ready(f"replaying {path}")
        t0_wall = time.monotonic()
        t0_cap = -1
        with cap:
            try:
                for i, rec in enumerate(cap):
                    if realtime:
                        if t0_cap < 0:
                            t0_cap = rec[0]
                        self._sleep_until(t0_wall + (rec[0] - t0_cap) / 1e6)
                    elif i & 1023 == 0:
                        self._drain_signals()
                        self._periodic()
                    if self.stop_requested:
                        break
                    if bpf is not None and not bpf.matches(rec):
                        self.stats.filtered += 1
                        continue
                    packet(rec)
            except CaptureError as exc:
                log.error("%s", exc)
        self.stats.capture_errors += sum(cap.counts.values())

    def _sleep_until(self, due: float) -> None:
        while not self.stop_requested:
            delay = due - time.monotonic()
            if delay <= 0:
                return
            r, _, _ = select.select([self._wake_r], [], [], min(delay, 0.2))
            if r:
                self._drain_signals()
            self._periodic()

    # -- live -----------------------------------------------------------------------------

    def _run_live(self, iface: str, bpf: list[tuple[int, int, int, int]] | None) -> None:
        """Capture on ``iface`` until stopped; READY=1 after the first open attempt, whatever it gave.

        The model and outputs are loaded by now, so the service is ready even while the interface
        is missing or down: STATUS then says so (and the periodic counters do not overwrite it)
        until the capture opens, retried with exponential backoff, and at once (within a tick)
        when the interface appears or comes up.
        """
        assert self.pipeline is not None
        c = self.cfg.capture
        tick_s = c.tick_ms / 1000.0
        backoff = c.retry_initial_s
        cap: LiveCapture | None = None
        ready_sent = False
        next_retry = 0.0
        next_check = 0.0
        drops_base = 0
        # the interface's state ("missing", "down", "up") when capture last failed: a change is
        # noticed within a tick and retried at once, not after the backoff
        failed_state = ""
        pipeline = self.pipeline
        wall_us: Callable[[], int] = lambda: time.time_ns() // 1000  # noqa: E731
        while not self.stop_requested:
            now = time.monotonic()
            if cap is None:
                if now < next_retry and interface_state(iface) != failed_state:
                    next_retry = now  # it appeared, went or came up: try now, not after the backoff
                if now >= next_retry:
                    try:
                        cap = LiveCapture.from_config(iface, c, bpf)
                        cap.log_open()
                        backoff = c.retry_initial_s
                        self._waiting = None
                        if ready_sent:
                            self.notifier.status(f"capturing on {iface}")
                    except CaptureOpenError as exc:
                        if exc.errno in (errno.EPERM, errno.EACCES):
                            raise AgentError(str(exc.strerror or exc)) from None  # retrying cannot help
                        self.stats.capture_errors += 1
                        failed_state = interface_state(iface)
                        log.error("%s; retrying in %.1f s", exc.strerror or exc, backoff)
                        self._waiting = f"waiting for interface {iface}: {exc.strerror or exc}"
                        if ready_sent:
                            self.notifier.status(self._waiting)
                        next_retry = now + backoff
                        backoff = min(backoff * 2, c.retry_max_s)
                    if not ready_sent:
                        self.notifier.ready(self._waiting or f"capturing on {iface}")
                        ready_sent = True
                if cap is None:
                    r, _, _ = select.select([self._wake_r], [], [], max(0.0, min(tick_s, next_retry - now)))
                    if r:
                        self._drain_signals()
                    pipeline.tick(max(wall_us(), pipeline.now_us))
                    self._periodic()
                    continue
            r, _, _ = select.select([cap.fileno(), self._wake_r], [], [], tick_s)
            if self._wake_r in r:
                self._drain_signals()
            lost: str | None = None  # why the capture stopped, if it did
            if cap.fileno() in r:
                try:
                    for rec in cap.read(512):
                        pipeline.packet(rec)
                except CaptureOpenError as exc:
                    lost = str(exc.strerror or exc)
                    log.error("%s; reopening", lost)
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 1.0
                self.stats.kernel_drops = drops_base + cap.read_drops()
                gone = None if lost else cap.gone()
                if gone:
                    lost = gone
                    log.error("%s; reopening", lost)
            pipeline.tick(max(wall_us(), pipeline.now_us))
            self._periodic()
            if lost:
                self.stats.capture_errors += 1
                drops_base += cap.read_drops()
                cap.close()
                cap = None
                failed_state = interface_state(iface)
                self._waiting = f"waiting for interface {iface}: {lost}"
                self.notifier.status(self._waiting)
                next_retry = time.monotonic() + backoff
                backoff = min(backoff * 2, c.retry_max_s)
        if cap is not None:
            # frames already queued in the socket belong to this run: read them before stopping
            try:
                for rec in cap.drain():
                    pipeline.packet(rec)
            except CaptureOpenError as exc:
                log.error("%s", exc.strerror or exc)
            self.stats.kernel_drops = drops_base + cap.read_drops()
            cap.close()
