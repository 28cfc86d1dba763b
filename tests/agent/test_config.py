"""Config loading: the example file, unknown keys, bad values, CLI overrides."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from edge_nids.agent.config import AgentConfig, ConfigError, from_dict, load_config, with_overrides


def _leaf_keys(cls: type, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for f in dataclasses.fields(cls):
        tp = f.default_factory if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
        name = f"{prefix}{f.name}"
        if tp is not None and dataclasses.is_dataclass(tp):
            keys |= _leaf_keys(tp, name + ".")
        else:
            keys.add(name)
    return keys


def _yaml_leaf_keys(data: dict, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for k, v in data.items():
        if isinstance(v, dict):
            keys |= _yaml_leaf_keys(v, f"{prefix}{k}.")
        else:
            keys.add(f"{prefix}{k}")
    return keys


def test_example_config_loads_and_documents_every_key(repo_root: Path) -> None:
    import yaml

    path = repo_root / "systemd" / "config.example.yaml"
    cfg = load_config(path)
    assert cfg.capture.iface == "eth0"
    assert cfg.outputs.alerts == "/var/log/edge-nids/alerts.json"
    assert _yaml_leaf_keys(yaml.safe_load(path.read_text())) == _leaf_keys(AgentConfig)
    # every key has a comment line somewhere above it in its section
    text = path.read_text()
    assert text.count("#") >= len(_leaf_keys(AgentConfig)) // 2


def test_packaged_example_is_the_systemd_one(repo_root: Path) -> None:
    from edge_nids.agent.install import CONFIG_EXAMPLE, LOGROTATE_FILE, UNIT_FILE

    assert (repo_root / "systemd/config.example.yaml").read_bytes() == CONFIG_EXAMPLE.read_bytes()
    assert (repo_root / "systemd/edge-nids.service").read_bytes() == UNIT_FILE.read_bytes()
    assert (repo_root / "systemd/edge-nids.logrotate").read_bytes() == LOGROTATE_FILE.read_bytes()


def test_defaults_without_file() -> None:
    cfg = load_config(None)
    assert cfg == AgentConfig()
    assert cfg.batch.max_flows is None and cfg.batch.max_wait_ms == 100


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"flows": {"max_flows": -3}}, "config error: flows.max_flows: must be a positive integer, got -3"),
        ({"flows": {"max_flow": 3}}, "config error: flows.max_flow: unknown key"),
        ({"bogus": 1}, "config error: bogus: unknown key"),
        (
            {"capture": {"realtime": "yes"}},
            "config error: capture.realtime: must be true or false, got 'yes'",
        ),
        ({"capture": {"ring": 1}}, "config error: capture.ring: must be true or false, got 1"),
        (
            {"batch": {"max_wait_ms": 1.5}},
            "config error: batch.max_wait_ms: must be a positive integer, got 1.5",
        ),
        ({"model": {"threshold": 1.5}}, "config error: model.threshold: must be in [0, 1], got 1.5"),
        ({"model": {"threshold": "high"}}, "config error: model.threshold: must be a number, got 'high'"),
        ({"outputs": {"mqtt": {"qos": 3}}}, "config error: outputs.mqtt.qos: must be 0, 1 or 2, got 3"),
        (
            {"outputs": {"mqtt": {"port": 0}}},
            "config error: outputs.mqtt.port: must be a positive integer, got 0",
        ),
        ({"stats": []}, "config error: stats: must be a mapping"),
        ([1, 2], "config error: top level: must be a mapping"),
        ({"capture": {"iface": "eth0", "pcap": "x.pcap"}}, "config error: capture: set either iface or pcap"),
        (
            {"flows": {"classify_active_s": float("nan")}},
            "config error: flows.classify_active_s: must be a number",
        ),
        ({"alerts": {"severity": 0}}, "config error: alerts.severity"),
    ],
)
def test_bad_values_name_the_key(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(data)
    assert str(info.value).startswith(message)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("capture: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(empty) == AgentConfig()


def test_overrides_replace_and_are_checked(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("capture:\n  iface: eth0\nflows:\n  max_flows: 500\n")
    cfg = with_overrides(
        load_config(f), {"capture.iface": None, "capture.pcap": "a.pcap", "model.threshold": 0.7}
    )
    assert cfg.capture.pcap == "a.pcap" and cfg.capture.iface is None
    assert cfg.flows.max_flows == 500 and cfg.model.threshold == 0.7
    with pytest.raises(ConfigError, match=r"flows\.max_flows: must be a positive integer, got 0"):
        with_overrides(cfg, {"flows.max_flows": 0})
    with pytest.raises(ConfigError, match=r"flows\.nope: unknown key"):
        with_overrides(cfg, {"flows.nope": 1})


def test_cli_reports_config_error_without_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    f = tmp_path / "c.yaml"
    f.write_text("flows:\n  max_flows: -3\n")
    out = subprocess.run(
        [sys.executable, "-m", "edge_nids.cli", "run", "--pcap", "x.pcap", "--config", str(f)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert (
        out.stderr.strip()
        == "edge-nids run: config error: flows.max_flows: must be a positive integer, got -3"
    )


def _check_config(path: Path):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "edge_nids.cli", "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
    )


def test_check_config_accepts_a_good_config(tmp_path: Path, agent_bundle: Path) -> None:
    alerts = tmp_path / "logs" / "alerts.json"
    f = tmp_path / "good.yaml"
    f.write_text(
        f"capture:\n  iface: nosuch0\n  bpf: tcp port 80\nmodel:\n  path: {agent_bundle}\n"
        f"outputs:\n  alerts: {alerts}\n"
    )
    out = _check_config(f)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"config {f}: OK"
    assert "capture: live on nosuch0, filter 'tcp port 80'" in lines
    assert "capture buffer: TPACKET_V3 ring of 16 MiB per capture socket (one per worker)" in lines
    assert any(x.startswith("note: no interface nosuch0 here now") for x in lines)
    assert any(x.startswith("model: ") and "profile " in x for x in lines)
    # the shipped bundle's escalation rule, as its bundle.json has it
    import json

    rule = json.loads((agent_bundle / "bundle.json").read_text())["escalation"]
    want = f"escalation {rule['alerts']} alerts in {rule['window_s']:g} s between two hosts, then from"
    assert any(x.startswith("model: ") and want in x for x in lines), lines
    assert f"alerts: {alerts}" in lines
    assert not alerts.parent.exists()  # a check writes nothing


@pytest.mark.parametrize(
    ("body", "rc", "message"),
    [
        ("flows:\n  max_flows: -3\n", 2, "config error: flows.max_flows: must be a positive integer, got -3"),
        ("capture:\n  ifcae: eth0\n", 2, "config error: capture.ifcae: unknown key"),
        ("capture:\n  iface: lo\nmodel:\n  path: {missing}\n", 1, "model bundle {missing}"),
        ("capture:\n  iface: lo\n  bpf: 'tcp port'\n", 1, "bad BPF filter 'tcp port'"),
        ("capture:\n  iface: lo\noutputs:\n  alerts: {tmp}\n", 1, "outputs.alerts: {tmp} is a directory"),
        ("capture:\n  iface: null\n", 1, "nothing to capture"),
    ],
)
def test_check_config_refuses_with_one_line(tmp_path: Path, body: str, rc: int, message: str) -> None:
    missing = tmp_path / "no-bundle"
    if "bpf" in body and shutil.which("tcpdump") is None:
        pytest.skip("tcpdump compiles the filter (apt-get install -y tcpdump)")
    f = tmp_path / "bad.yaml"
    f.write_text(body.format(missing=missing, tmp=tmp_path))
    out = _check_config(f)
    assert out.returncode == rc, out.stderr
    assert out.stdout == ""
    err = [x for x in out.stderr.splitlines() if x.startswith("edge-nids check-config: ")]
    assert len(err) == 1 and message.format(missing=missing, tmp=tmp_path) in err[0], out.stderr
    assert "Traceback" not in out.stderr
