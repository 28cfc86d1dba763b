"""Scenario definitions: selection, validation, bounded commands, seeds and scale."""

from __future__ import annotations

import ipaddress
import random

import pytest

from lab import dnslike
from lab.run_lab import main as run_lab_main
from lab.scenarios import (
    COMPOSITES,
    LAB_NETS,
    SCENARIOS,
    LabContext,
    ScenarioError,
    Step,
    build_steps,
    check_addresses,
    make_wordlist,
    select_scenarios,
    validate_scale,
)

TOOLS = {
    "curl", "sshpass", "iperf3", "nmap", "hping3", "slowhttptest", "hydra", "ab", "wrk", "/usr/bin/python3",
}  # fmt: skip


def ctx(seed: int = 1, scale: float = 1.0) -> LabContext:
    return LabContext(
        victim="192.0.2.10",
        attacker="198.51.100.66",
        clients=("203.0.113.20", "203.0.113.21"),
        web_files=(("/page-512.html", 512), ("/page-4096.html", 4096), ("/blob-4194304.bin", 4194304)),
        ssh_user="enlab",
        ssh_password="pw",
        upload_files=("/tmp/up.bin",),
        download_files=("files/dl.bin",),
        wordlist="/tmp/words.txt",
        workdir="/tmp/work",
        python="/usr/bin/python3",
        dnslike="/repo/lab/dnslike.py",
        seed=seed,
        scale=scale,
    )


def _count_arg(steps: list[Step], flag: str) -> int:
    argv = steps[0].argv
    return int(argv[argv.index(flag) + 1])


def test_groups_expand_in_order() -> None:
    assert select_scenarios("all") == list(SCENARIOS)
    assert select_scenarios("benign") == ["web", "browse", "poll", "ssh", "scp", "dns", "iperf", "mqtt"]
    attacks = select_scenarios("attacks")
    assert all(SCENARIOS[n].label for n in attacks) and len(attacks) == 13
    assert select_scenarios("dns, nmap_syn,demo") == ["dns", "nmap_syn", "demo"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [("nmap_xmas", "unknown scenario 'nmap_xmas'"), ("web,web", "selected twice"), ("benign,ssh", "twice"),
     ("", "empty"), ("web,,dns", "empty")],
)  # fmt: skip
def test_bad_selection_is_rejected(spec: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        select_scenarios(spec)


def test_scale_bounds() -> None:
    assert validate_scale(0.05) == 0.05
    for bad in (0.0, -1.0, 10.5):
        with pytest.raises(ScenarioError, match="--scale"):
            validate_scale(bad)


@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest.mark.parametrize("scale", [0.05, 1.0, 10.0])
def test_every_scenario_is_bounded_and_stays_in_the_lab(name: str, scale: float) -> None:
    steps = build_steps(name, ctx(seed=3, scale=scale))
    assert steps
    attack = SCENARIOS[name].label is not None
    for step in steps:
        assert step.host == ("attacker" if attack else "client")
        assert step.argv[0] in TOOLS
        assert 0 < step.timeout_s <= 1800 and step.pause_s >= 0
        for token in step.argv:
            host = token.split("://")[-1].split("@")[-1].split("/")[0].split(":")[0].split("=")[-1]
            try:
                addr = ipaddress.ip_address(host)
            except ValueError:
                continue
            assert any(addr in net for net in LAB_NETS), (name, token)
    if attack:
        # Each attack tool also gets its own count or time limit.
        limits = {"hping3": "-c", "slowhttptest": "-l", "ab": "-t", "wrk": "-d", "nmap": "--host-timeout"}
        limits["/usr/bin/python3"] = "--max-seconds"  # lab/mqttlike.py guess
        for step in steps:
            assert limits.get(step.argv[0], "-P") in step.argv, step.argv


def test_same_seed_same_steps_other_seed_other_options() -> None:
    for name in SCENARIOS:
        assert build_steps(name, ctx(seed=5)) == build_steps(name, ctx(seed=5))
    differ = [n for n in SCENARIOS if build_steps(n, ctx(seed=1)) != build_steps(n, ctx(seed=2))]
    assert len(differ) >= len(SCENARIOS) - 2, differ


def test_scale_changes_counts_and_durations() -> None:
    assert len(build_steps("web", ctx(scale=2.0))) == 120
    assert len(build_steps("web", ctx(scale=0.5))) == 30
    assert _count_arg(build_steps("syn_flood", ctx(scale=0.5)), "-c") == 5000
    assert _count_arg(build_steps("udp_flood", ctx(scale=2.0)), "-c") == 10000
    assert _count_arg(build_steps("slowloris", ctx(scale=0.5)), "-l") == 15
    durations = set()
    for seed in range(1, 9):
        for step in build_steps("http_flood", ctx(seed=seed, scale=2.0)):
            flag = "-t" if step.argv[0] == "ab" else "-d"
            durations.add((step.argv[0], step.argv[step.argv.index(flag) + 1]))
    assert durations == {("ab", "20"), ("wrk", "6s")}


def test_attacks_vary_within_a_run() -> None:
    """Training captures hold several setups of an attack, not one: options differ between its steps."""
    files = (("/index.html", 70), ("/page-512.html", 512), ("/page-2048.html", 2048),
             ("/page-16384.html", 16384), ("/page-65536.html", 65536))  # fmt: skip
    from dataclasses import replace

    c = replace(ctx(), web_files=files)
    for name in ("nmap_syn", "nmap_connect", "syn_flood", "udp_flood", "http_flood"):
        steps = build_steps(name, c)
        assert len(steps) >= 2 and len({s.argv for s in steps}) == len(steps), name
    tools, pages, keepalive = set(), set(), set()
    for seed in range(1, 9):
        for step in build_steps("http_flood", replace(c, seed=seed)):
            tools.add(step.argv[0])
            pages.add(step.argv[-1].rsplit("/", 1)[-1])
            reuse = "-k" in step.argv or (step.argv[0] == "wrk" and "Connection: close" not in step.argv)
            keepalive.add(reuse)
    assert tools == {"ab", "wrk"} and len(pages) == 4 and keepalive == {True, False}


def test_light_context_fetches_small_files_only() -> None:
    from dataclasses import replace

    steps = build_steps("web", replace(ctx(scale=3.0), light=True))
    assert not any("blob-4194304" in t for s in steps for t in s.argv)
    assert any("blob-4194304" in t for s in build_steps("web", ctx(scale=3.0)) for t in s.argv)


def test_check_addresses_rejects_outside_targets() -> None:
    check_addresses([Step("attacker", ("nmap", "198.51.100.1", "http://192.0.2.9:80/x"), 1.0)])
    for target in ("8.8.8.8", "http://10.0.0.1/", "root@172.16.0.1", "BindAddress=192.168.1.2"):
        with pytest.raises(ScenarioError, match="outside the lab"):
            check_addresses([Step("attacker", ("curl", target), 1.0)])


def test_composites_refer_to_real_scenarios() -> None:
    for comp in COMPOSITES.values():
        assert comp.background and comp.attacks
        assert all(SCENARIOS[b].label is None for b in comp.background)
        assert all(SCENARIOS[a].label is not None and 0 < f <= 1 for a, f in comp.attacks)


def test_wordlist_ends_with_the_password() -> None:
    words = make_wordlist(random.Random(4), 50, "lab-1234")
    assert len(words) == 51 and len(set(words)) == 51
    assert words[-1] == "lab-1234" and "lab-1234" not in words[:-1]


def test_dnslike_answers_lab_names_and_drops_garbage() -> None:
    query = dnslike.build_query(0x1234, "www.lab.test")
    assert dnslike.parse_question(query)[:3] == (0x1234, "www.lab.test", 1)
    reply = dnslike.build_response(query)
    assert reply is not None and reply[:2] == b"\x12\x34" and reply[3] & 0x0F == 0  # NOERROR
    assert reply[6:8] == b"\x00\x01" and reply[-4:-1] == bytes([192, 0, 2])  # one A record in 192.0.2.0/24
    nx = dnslike.build_response(dnslike.build_query(7, "mail.example.org"))
    assert nx is not None and nx[3] & 0x0F == 3  # NXDOMAIN
    assert dnslike.build_response(bytes(64)) is None  # hping3 UDP flood payload
    assert dnslike.build_response(reply) is None  # a response is not a query


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--scenarios", "bogus"], "unknown scenario"), (["--scale", "50"], "--scale"),
     (["--demo", "--scenarios", "web"], "--demo")],
)  # fmt: skip
def test_run_lab_rejects_bad_options_before_doing_anything(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_lab_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and "Traceback" not in err
