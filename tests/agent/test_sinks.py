"""One contract test over every alert sink, each delivering to a real receiver.

stdout (captured), a file, syslog (a UDP syslog receiver the test runs) and MQTT (a
real mosquitto broker the test starts; skipped with the reason if mosquitto is not
installed: ``apt-get install -y mosquitto``).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_nids.agent.records import alert_count
from edge_nids.agent.sinks import FileSink, MqttSink, MultiSink, SinkError, StdoutSink, SyslogSink

RECORDS: list[dict[str, Any]] = [
    {
        "timestamp": "2017-07-06T13:40:12.123456+0000",
        "event_type": "alert",
        "src_ip": "192.0.2.1",
        "alert": {
            "signature": "edge-nids anomalous flow",
            "score": 0.97,
            "model": {"name": "m", "version": "1"},
        },
    },
    {"event_type": "flow", "verdict": "benign", "score": 0.01, "note": "ünïcödé ✓", "n": [1, 2, 3]},
    {"event_type": "stats", "stats": {"packets": 123456789012, "malformed": {}}},
]


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _SyslogReceiver:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.raw: list[bytes] = []

    def collect(self, n: int, timeout: float = 5.0) -> list[bytes]:
        end = time.monotonic() + timeout
        while len(self.raw) < n and time.monotonic() < end:
            try:
                self.raw.append(self.sock.recv(65536))
            except TimeoutError:
                pass
        return self.raw


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    exe = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).exists()), None
    )
    if exe is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto); MQTT sink not tested")
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt (the mqtt extra) is not installed")
    port = _free_port()
    conf = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"mosquitto exited: {proc.stderr.read().decode() if proc.stderr else ''}")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


class _MqttSubscriber:
    def __init__(self, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[bytes] = []
        self._sub = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda c, u, m: self.messages.append(m.payload)
        self.client.on_subscribe = lambda *a: self._sub.set()
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._sub.wait(5), "subscription not acknowledged"

    def collect(self, n: int, timeout: float = 5.0) -> list[bytes]:
        end = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < end:
            time.sleep(0.02)
        return self.messages

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


Harness = tuple[Callable[[], Any], Callable[[int], list[dict[str, Any]]], Callable[[], None]]


@pytest.fixture(params=["stdout", "file", "syslog", "mqtt", "multi"])
def harness(
    request: pytest.FixtureRequest, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> Iterator[Harness]:
    kind = request.param
    cleanup: list[Callable[[], None]] = []
    if kind == "stdout":

        def make() -> Any:
            return StdoutSink()

        def read(n: int) -> list[dict[str, Any]]:
            return [json.loads(x) for x in capfd.readouterr().out.splitlines()]
    elif kind == "file":
        path = tmp_path / "logs" / "alerts.json"

        def make() -> Any:
            return FileSink(path)

        def read(n: int) -> list[dict[str, Any]]:
            return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    elif kind == "syslog":
        rx = _SyslogReceiver()
        cleanup.append(rx.sock.close)

        def make() -> Any:
            return SyslogSink(f"127.0.0.1:{rx.port}", "local5", "edge-nids")

        def read(n: int) -> list[dict[str, Any]]:
            out = []
            for raw in rx.collect(n):
                m = re.fullmatch(rb"<(\d+)>edge-nids: (.*?)\x00?", raw, re.S)
                assert m, raw
                assert int(m.group(1)) == 21 * 8 + 4  # local5.warning
                out.append(json.loads(m.group(2)))
            return out
    elif kind == "mqtt":
        port = request.getfixturevalue("mosquitto")
        sub = _MqttSubscriber(port, "edge-nids/test")
        cleanup.append(sub.close)

        def make() -> Any:
            return MqttSink("127.0.0.1", port, "edge-nids/test", qos=1)

        def read(n: int) -> list[dict[str, Any]]:
            return [json.loads(m) for m in sub.collect(n)]
    else:
        a, b = tmp_path / "a.json", tmp_path / "b.json"

        def make() -> Any:
            return MultiSink([FileSink(a), FileSink(b)])

        def read(n: int) -> list[dict[str, Any]]:
            ra = [json.loads(x) for x in a.read_text().splitlines()]
            assert ra == [json.loads(x) for x in b.read_text().splitlines()]
            return ra

    yield make, read, lambda: [c() for c in cleanup]
    for c in cleanup:
        c()


def test_sink_contract(harness: Harness) -> None:
    """Every record arrives once, unchanged and in order, across a reopen; no errors counted."""
    make, read, _ = harness
    sink = make()
    sink.emit(RECORDS[0])
    sink.reopen()
    for r in RECORDS[1:]:
        sink.emit(r)
    sink.close()
    got = read(len(RECORDS))
    assert got == RECORDS
    assert sink.errors == 0


def test_file_sink_reopens_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "alerts.json"
    sink = FileSink(path)
    sink.emit({"n": 1})
    path.rename(tmp_path / "alerts.json.1")  # what logrotate does
    sink.emit({"n": 2})  # still goes to the renamed file
    sink.reopen()
    sink.emit({"n": 3})
    sink.close()
    assert [json.loads(x)["n"] for x in (tmp_path / "alerts.json.1").read_text().splitlines()] == [1, 2]
    assert [json.loads(x)["n"] for x in path.read_text().splitlines()] == [3]


def test_sinks_refuse_bad_targets(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SinkError, match="cannot open output file"):
        FileSink(tmp_path / "file" / "alerts.json")
    with pytest.raises(SinkError, match="unknown syslog facility"):
        SyslogSink("/dev/log", "nope")
    with pytest.raises(SinkError, match="host:port"):
        SyslogSink("localhost", "local5")
    pytest.importorskip("paho.mqtt.client")
    with pytest.raises(SinkError, match=r"MQTT broker 127\.0\.0\.1"):
        MqttSink("127.0.0.1", _free_port(), "t", connect_timeout_s=1.0)


def test_agent_publishes_alerts_to_mqtt(mosquitto: int, agent_bundle: Path, tmp_path: Path) -> None:
    """`edge-nids run` with outputs.mqtt enabled: the port scan's alerts reach a subscriber."""
    from .helpers import agent_cmd
    from .scenarios import write_scenarios

    pcap = next(p for p in write_scenarios(tmp_path) if p.stem == "port_scan")
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        f"outputs:\n  alerts: {tmp_path / 'alerts.json'}\n"
        f"  mqtt:\n    enabled: true\n    port: {mosquitto}\n    topic: edge-nids/run-test\n"
    )
    sub = _MqttSubscriber(mosquitto, "edge-nids/run-test")
    try:
        proc = subprocess.run(
            agent_cmd("run", "--pcap", str(pcap), "--model", str(agent_bundle), "--config", str(cfg)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        file_lines = [json.loads(x) for x in (tmp_path / "alerts.json").read_text().splitlines()]
        got = [json.loads(m) for m in sub.collect(len(file_lines))]
    finally:
        sub.close()
    assert file_lines and got == file_lines  # the same alerts, in order, on both outputs
    assert sum(alert_count(a) for a in got) >= 140
