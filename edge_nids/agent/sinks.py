"""Alert sinks: where EVE records go (stdout, a file, syslog, MQTT).

Every sink has ``emit(record)``, ``flush()`` (the pipeline calls it after each
classifier batch and tick), ``reopen()`` (SIGHUP, for log rotation) and ``close()``,
and passes the same contract test. A sink that fails to deliver
counts the failure in ``errors`` and logs it once in a while; it never raises on
the alert path after it was opened.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import socket
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Protocol

from edge_nids.agent.eve import to_json

__all__ = [
    "AlertSink",
    "FileSink",
    "MqttSink",
    "MultiSink",
    "SinkError",
    "StdoutSink",
    "SyslogSink",
    "open_path_sink",
]

log = logging.getLogger(__name__)


class SinkError(RuntimeError):
    """A sink could not be opened (bad path, broker unreachable, missing extra)."""


class AlertSink(Protocol):
    """Interface of every sink."""

    errors: int

    def emit(self, record: Mapping[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def reopen(self) -> None: ...

    def close(self) -> None: ...


class _Base:
    errors: int = 0

    def _fail(self, what: str, exc: BaseException) -> None:
        self.errors += 1
        if self.errors in (1, 10, 100, 1000) or self.errors % 10_000 == 0:
            log.error("%s: %s (%d failures so far)", what, exc, self.errors)

    def flush(self) -> None:
        """Nothing held back by default."""

    def reopen(self) -> None:
        """Nothing to reopen by default."""

    def close(self) -> None:
        """Nothing to close by default."""


class StdoutSink(_Base):
    """One JSON line per record on a text stream (standard output by default), flushed per line."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.errors = 0
        self._stream = stream

    def emit(self, record: Mapping[str, Any]) -> None:
        stream = self._stream or sys.stdout
        try:
            stream.write(to_json(record) + "\n")
            stream.flush()
        except (OSError, ValueError) as exc:
            self._fail("stdout sink", exc)

    def close(self) -> None:
        stream = self._stream or sys.stdout
        try:
            stream.flush()
        except (OSError, ValueError) as exc:
            self._fail("stdout sink", exc)


class FileSink(_Base):
    """JSON lines appended to a file; ``reopen()`` reopens the path (after logrotate moved it).

    Lines are held until ``flush()`` (or ``max_lines`` of them) and then written with one
    ``write`` system call on an ``O_APPEND`` descriptor, so a reader never sees part of a
    line, several processes can append to one file (capture workers) without mixing
    lines, and a flood costs one system call per batch instead of one per line.
    """

    def __init__(self, path: str | os.PathLike[str], max_lines: int = 512) -> None:
        self.errors = 0
        self.path = Path(path)
        self.max_lines = max_lines
        self._fd = -1
        self._lines: list[str] = []
        self._open()

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise SinkError(f"cannot open output file {self.path}: {exc.strerror or exc}") from None

    def emit(self, record: Mapping[str, Any]) -> None:
        if self._fd < 0:
            self.errors += 1
            return
        lines = self._lines
        lines.append(to_json(record))
        if len(lines) >= self.max_lines:
            self.flush()

    def flush(self) -> None:
        """Write the held lines (whole lines, one ``write``)."""
        if not self._lines or self._fd < 0:
            return
        data = ("\n".join(self._lines) + "\n").encode("utf-8")
        n = len(self._lines)
        self._lines = []
        try:
            done = os.write(self._fd, data)
            while done < len(data):  # a regular file takes it all unless the disk is full
                done += os.write(self._fd, data[done:])
        except OSError as exc:
            self.errors += n - 1
            self._fail(f"file sink {self.path}", exc)

    def reopen(self) -> None:
        self.flush()
        old = self._fd
        try:
            self._open()
        except SinkError as exc:
            self._fail(f"file sink {self.path}", exc)
            return
        if old >= 0:
            try:
                os.close(old)
            except OSError as exc:
                self._fail(f"file sink {self.path}", exc)

    def close(self) -> None:
        self.flush()
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError as exc:
                self._fail(f"file sink {self.path}", exc)
            self._fd = -1


_FACILITIES = logging.handlers.SysLogHandler.facility_names


class SyslogSink(_Base):
    """One EVE line per syslog message (``ident: {json}``), to /dev/log or host:port over UDP."""

    def __init__(self, address: str = "/dev/log", facility: str = "local5", ident: str = "edge-nids") -> None:
        self.errors = 0
        if facility not in _FACILITIES:
            raise SinkError(f"unknown syslog facility {facility!r}")
        addr: str | tuple[str, int]
        if address.startswith("/"):
            addr = address
        else:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise SinkError(f"syslog address must be a socket path or host:port, got {address!r}")
            addr = (host, int(port))
        try:
            self._handler = logging.handlers.SysLogHandler(
                address=addr, facility=_FACILITIES[facility], socktype=socket.SOCK_DGRAM
            )
        except OSError as exc:
            raise SinkError(f"cannot open syslog at {address}: {exc.strerror or exc}") from None
        self._handler.ident = f"{ident}: "
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._handler.handleError = self._handle_error  # type: ignore[method-assign]

    def _handle_error(self, record: logging.LogRecord) -> None:
        self._fail("syslog sink", sys.exc_info()[1] or RuntimeError("send failed"))

    def emit(self, record: Mapping[str, Any]) -> None:
        rec = logging.LogRecord("edge_nids.alerts", logging.WARNING, "", 0, to_json(record), None, None)
        self._handler.emit(rec)

    def close(self) -> None:
        self._handler.close()


class MqttSink(_Base):
    """Publishes each record as one JSON message to an MQTT topic (paho-mqtt, the ``mqtt`` extra)."""

    def __init__(
        self,
        host: str,
        port: int,
        topic: str,
        qos: int = 1,
        client_id: str = "",
        username: str | None = None,
        password: str | None = None,
        keepalive_s: int = 60,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.errors = 0
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise SinkError("MQTT output needs paho-mqtt: pip install 'edge-nids[mqtt]'") from None
        self.topic = topic
        self.qos = qos
        self._connected = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if username:
            self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.reconnect_delay_set(1, 30)
        try:
            self._client.connect(host, port, keepalive_s)
        except OSError as exc:
            raise SinkError(f"cannot connect to MQTT broker {host}:{port}: {exc.strerror or exc}") from None
        self._client.loop_start()
        if not self._connected.wait(connect_timeout_s):
            self._client.loop_stop()
            raise SinkError(f"MQTT broker {host}:{port} did not accept the connection")
        self._pending: list[Any] = []

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any = None) -> None:
        if not getattr(reason, "is_failure", False):
            self._connected.set()
        else:
            log.error("MQTT connection refused: %s", reason)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any = None) -> None:
        self._connected.clear()
        if getattr(reason, "is_failure", False):
            log.warning("MQTT disconnected: %s (reconnecting)", reason)

    def emit(self, record: Mapping[str, Any]) -> None:
        info = self._client.publish(self.topic, to_json(record), qos=self.qos)
        if info.rc != 0:
            self._fail("mqtt sink", RuntimeError(f"publish failed with rc {info.rc}"))
            return
        if self.qos > 0:
            self._pending.append(info)
            if len(self._pending) > 1000:
                self._pending = [i for i in self._pending if not i.is_published()]

    def close(self, timeout_s: float = 5.0) -> None:
        """Wait (bounded) until queued QoS>0 messages are acknowledged, then disconnect."""
        for info in self._pending:
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError) as exc:
                self._fail("mqtt sink", exc)
        self._pending = []
        self._client.disconnect()
        self._client.loop_stop()


class MultiSink(_Base):
    """Fans each record out to several sinks."""

    def __init__(self, sinks: list[AlertSink]) -> None:
        self.sinks = sinks

    @property
    def errors(self) -> int:  # type: ignore[override]
        return sum(s.errors for s in self.sinks)

    def emit(self, record: Mapping[str, Any]) -> None:
        for s in self.sinks:
            s.emit(record)

    def flush(self) -> None:
        for s in self.sinks:
            s.flush()

    def reopen(self) -> None:
        for s in self.sinks:
            s.reopen()

    def close(self) -> None:
        for s in self.sinks:
            s.close()


def open_path_sink(target: str | None) -> AlertSink | None:
    """``"-"`` → stdout, a path → file, ``None``/empty → no sink."""
    if not target:
        return None
    if target == "-":
        return StdoutSink()
    return FileSink(target)
