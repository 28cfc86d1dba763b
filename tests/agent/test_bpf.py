"""The classic-BPF interpreter (edge_nids/agent/bpf.py) and ``--bpf`` on pcap replay.

The interpreter is checked against tcpdump itself on the repository's real captures
(the packets it accepts must be exactly those ``tcpdump -r FILE -w OUT EXPR`` writes),
on hand-written programs for the edge cases tcpdump never emits, and end to end
through ``edge-nids run --pcap --bpf``.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest

from edge_nids.agent.bpf import BpfProgram
from edge_nids.agent.capture import compile_bpf
from edge_nids.agent.service import ReplayFilter
from edge_nids.flows.pcap import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, open_capture

from .helpers import agent_cmd
from .make_golden import run_agent
from .scenarios import write_scenarios

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
DEMO = REPO / "lab" / "captures" / "demo.pcap"
DEMO_PACKETS = 11_930

TCPDUMP = shutil.which("tcpdump")
needs_tcpdump = pytest.mark.skipif(
    TCPDUMP is None, reason="tcpdump is not installed (apt install tcpdump): the oracle and the compiler"
)

#: Files tcpdump cannot read to the end, so they are no oracle: why.
NOT_ORACLE = {
    "tcp_fin_close_multi.pcapng": "interfaces of 3 link types; libpcap stops at the second (tested below)",
}

#: The expressions of the brief, then some that make libpcap emit scratch memory, ALU and X-register ops.
EXPRESSIONS = [
    "tcp",
    "udp port 53",
    "host 192.0.2.10 and tcp[tcpflags] & tcp-syn != 0",
    "ip6",
    "vlan",
    "vlan and tcp",
    "not port 22",
    "tcp[13] & 2 != 0 and len > 60",
    "icmp",
    "portrange 1-1024",
    "ip[6:2] & 0x1fff != 0",
    "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",  # an HTTP GET: a load at a computed offset
    "ip[2:2] - ((ip[0] & 0xf) << 2) > 100",  # st/ld M[], lsh, sub x
    "udp[8:2] % 7 = 3 or ip[8] / 2 > 30",  # mod, div
]

Insn = tuple[int, int, int, int]


def _read_frames(path: Path) -> list[tuple[bytes, int]]:
    """(captured bytes, wire length) of every record, as the agent's reader yields them."""
    with open_capture(path) as cap:
        return [(bytes(frame), wire) for _ts, _lt, frame, wire in cap]


_frames = functools.cache(_read_frames)  # each capture is read once for all the expressions


def _tcpdump_accepts(path: Path, expr: str, tmp: Path) -> set[int] | None:
    """Indices of the records that ``tcpdump -r path -w out expr`` writes out; None if it refuses ``expr``."""
    out = tmp / "tcpdump.pcap"
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        [str(TCPDUMP), "-r", str(path), "-w", str(out), "--", expr], capture_output=True, text=True
    )
    if proc.returncode != 0 and not out.exists():
        return None
    # a file cut short: tcpdump writes the records before the cut, then says so and exits 1
    assert proc.returncode == 0 or "truncated" in proc.stderr, proc.stderr
    written = _read_frames(out)
    # the written records are an in-order subsequence of the file's: match them up in order
    # (identical frames get identical verdicts, so taking the first match is exact)
    frames = _frames(path)
    got: set[int] = set()
    i = 0
    for rec in written:
        while i < len(frames) and frames[i] != rec:
            i += 1
        assert i < len(frames), f"tcpdump wrote a frame that is not in {path.name}"
        got.add(i)
        i += 1
    return got


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The repository's real captures that tcpdump reads: tests/data, the lab demo, the agent scenarios."""
    found = [p for p in sorted(DATA.glob("*.pcap*")) if p.name not in NOT_ORACLE]
    found.append(DEMO)
    found += write_scenarios(tmp_path_factory.mktemp("scenarios"))
    return found


@needs_tcpdump
@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_interpreter_accepts_exactly_what_tcpdump_accepts(
    expr: str, captures: list[Path], tmp_path: Path
) -> None:
    accepted = rejected = 0
    for path in captures:
        try:
            prog = BpfProgram(compile_bpf(expr, pcap=str(path)))
        except ValueError as exc:  # e.g. "vlan" on a BSD loopback capture: tcpdump must refuse it too
            assert f"bad BPF filter {expr!r}: " in str(exc)
            assert _tcpdump_accepts(path, expr, tmp_path) is None, f"{expr!r} on {path.name}"
            continue
        ours = {i for i, (frame, wire) in enumerate(_frames(path)) if prog.matches(frame, wire)}
        assert ours == _tcpdump_accepts(path, expr, tmp_path), f"{expr!r} on {path.name}"
        accepted += len(ours)
        rejected += len(_frames(path)) - len(ours)
    assert rejected > 0  # every expression rejects something in this corpus
    if expr != "vlan and tcp":  # the one VLAN capture carries UDP only
        assert accepted > 0


@needs_tcpdump
@pytest.mark.parametrize("expr", ["src host 192.0.2.10", "tcp[tcpflags] & tcp-fin != 0", "tcp port 80"])
def test_pcapng_with_three_link_types_gets_a_program_per_link_type(expr: str, tmp_path: Path) -> None:
    """tcp_fin_close_multi.pcapng holds tcp_fin_close.pcap's packets on Ethernet, SLL2 and raw-IP
    interfaces: the filter must pick the same packets tcpdump picks from the Ethernet original."""
    multi = DATA / "tcp_fin_close_multi.pcapng"
    flt = ReplayFilter(expr, str(multi))
    with open_capture(multi) as cap:
        recs = list(cap)
    ours = {i for i, rec in enumerate(recs) if flt.matches(rec)}
    linktypes = {LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW}
    assert {rec[1] for rec in recs} == set(flt.programs) == linktypes
    want = _tcpdump_accepts(DATA / "tcp_fin_close.pcap", expr, tmp_path)
    assert len(recs) == len(_frames(DATA / "tcp_fin_close.pcap"))
    assert ours == want and 0 < len(ours) <= len(recs)


# -- hand-written programs ------------------------------------------------------------------------

RET_0: Insn = (0x06, 0, 0, 0)
RET_1: Insn = (0x06, 0, 0, 1)
RET_A: Insn = (0x16, 0, 0, 0)
TAX: Insn = (0x07, 0, 0, 0)
TXA: Insn = (0x87, 0, 0, 0)


def ld_imm(k: int) -> Insn:
    return (0x00, 0, 0, k)


def ldx_imm(k: int) -> Insn:
    return (0x01, 0, 0, k)


def a_is(insns: list[Insn], value: int, frame: bytes = b"", wirelen: int = 0) -> bool:
    """Run ``insns`` then accept iff the accumulator equals ``value`` (jeq #value)."""
    return BpfProgram([*insns, (0x15, 0, 1, value), RET_1, RET_0]).matches(frame, wirelen)


FRAME = bytes(range(64))  # byte i holds i


def test_loads_read_big_endian_and_reject_past_the_captured_bytes() -> None:
    assert a_is([(0x20, 0, 0, 60)], 0x3C3D3E3F, FRAME)  # ld [60]: the last 4 bytes
    assert a_is([(0x28, 0, 0, 62)], 0x3E3F, FRAME)  # ldh [62]
    assert a_is([(0x30, 0, 0, 63)], 0x3F, FRAME)  # ldb [63]
    for code, k in ((0x20, 61), (0x28, 63), (0x30, 64), (0x30, 0xFFFFFFFF)):
        assert not BpfProgram([(code, 0, 0, k), RET_1]).matches(FRAME, 1500), (hex(code), k)
    # indirect loads: X + k, bounds checked on the sum
    assert a_is([ldx_imm(50), (0x40, 0, 0, 10)], 0x3C3D3E3F, FRAME)  # ld [x + 10]
    assert a_is([ldx_imm(50), (0x48, 0, 0, 12)], 0x3E3F, FRAME)  # ldh [x + 12]
    assert a_is([ldx_imm(50), (0x50, 0, 0, 13)], 0x3F, FRAME)  # ldb [x + 13]
    for code, k in ((0x40, 11), (0x48, 13), (0x50, 14)):
        assert not BpfProgram([ldx_imm(50), (code, 0, 0, k), RET_1]).matches(FRAME, 1500)
    assert not BpfProgram([ldx_imm(0xFFFFFFFF), (0x50, 0, 0, 1), RET_1]).matches(FRAME, 1500)
    # ldx 4*([k]&0xf): the IPv4 header length idiom; byte 14 of FRAME is 0x0e -> 56
    assert a_is([(0xB1, 0, 0, 14), TXA], 56, FRAME)
    assert not BpfProgram([(0xB1, 0, 0, 64), RET_1]).matches(FRAME, 64)
    # an empty frame: every packet load rejects, immediate loads still work
    assert not BpfProgram([(0x30, 0, 0, 0), RET_1]).matches(b"", 0)
    assert a_is([ld_imm(7)], 7)


def test_len_is_the_wire_length_not_the_captured_length() -> None:
    assert a_is([(0x80, 0, 0, 0)], 1514, FRAME, 1514)  # ld len
    assert a_is([(0x81, 0, 0, 0), TXA], 1514, FRAME, 1514)  # ldx len


@pytest.mark.parametrize(
    ("op", "a", "v", "want"),
    [
        (0x00, 0xFFFFFFFF, 2, 1),  # add wraps at 32 bits
        (0x10, 1, 2, 0xFFFFFFFF),  # sub wraps
        (0x20, 0x10000, 0x10001, 0x10000),  # mul keeps the low 32 bits
        (0x30, 100, 7, 14),  # div
        (0x90, 100, 7, 2),  # mod
        (0x40, 0xF0, 0x0F, 0xFF),  # or
        (0x50, 0xFF, 0x3C, 0x3C),  # and
        (0xA0, 0xFF, 0x0F, 0xF0),  # xor
        (0x60, 0xFFFFFFFF, 4, 0xFFFFFFF0),  # lsh drops the high bits
        (0x70, 0x80000000, 31, 1),  # rsh is logical
    ],
)
def test_alu_ops_with_k_and_with_x(op: int, a: int, v: int, want: int) -> None:
    assert a_is([ld_imm(a), (0x04 | op, 0, 0, v)], want)  # op #k
    assert a_is([ldx_imm(v), ld_imm(a), (0x0C | op, 0, 0, 0)], want)  # op x
    assert not a_is([ld_imm(a), (0x04 | op, 0, 0, v)], want ^ 1)


def test_neg_and_shifts_by_x_of_32_or_more() -> None:
    assert a_is([ld_imm(1), (0x84, 0, 0, 0)], 0xFFFFFFFF)  # neg
    assert a_is([ld_imm(0), (0x84, 0, 0, 0)], 0)
    assert a_is([ldx_imm(32), ld_imm(1), (0x6C, 0, 0, 0)], 0)  # lsh x, x = 32: 0 (as libpcap)
    assert a_is([ldx_imm(40), ld_imm(0xFFFFFFFF), (0x7C, 0, 0, 0)], 0)  # rsh x


def test_division_by_zero_x_rejects_the_packet() -> None:
    for op in (0x3C, 0x9C):  # div x, mod x
        prog = BpfProgram([ldx_imm(0), ld_imm(10), (op, 0, 0, 0), RET_1])
        assert not prog.matches(FRAME, 64)
        assert BpfProgram([ldx_imm(3), ld_imm(10), (op, 0, 0, 0), RET_1]).matches(FRAME, 64)


def test_scratch_memory_round_trip_and_no_state_between_packets() -> None:
    # ld #7; st M[15]; ld #0; ldx M[15]; txa -> 7; stx M[3]; ld M[3] -> 7
    assert a_is([ld_imm(7), (0x02, 0, 0, 15), ld_imm(0), (0x61, 0, 0, 15), TXA], 7)
    assert a_is([ldx_imm(9), (0x03, 0, 0, 3), ld_imm(0), (0x60, 0, 0, 3)], 9)
    # reads M[0] (must be 0 at every packet's start), then writes it
    prog = BpfProgram([(0x60, 0, 0, 0), (0x15, 0, 3, 0), ld_imm(5), (0x02, 0, 0, 0), RET_1, RET_0])
    assert [prog.matches(FRAME, 64) for _ in range(3)] == [True, True, True]


def test_ret_a_ret_k_and_jumps() -> None:
    assert BpfProgram([ld_imm(5), RET_A]).matches(b"", 0)
    assert not BpfProgram([ld_imm(0), RET_A]).matches(b"", 0)
    assert BpfProgram([(0x06, 0, 0, 65535)]).matches(b"", 0)
    assert not BpfProgram([RET_0]).matches(FRAME, 64)
    assert BpfProgram([(0x05, 0, 0, 1), RET_0, RET_1]).matches(b"", 0)  # ja +1 skips ret #0
    # jgt/jge/jset with k and with x (x = 5): accept iff the jump is taken
    cases = [(0x25, 6, 5, True), (0x25, 5, 5, False), (0x35, 5, 5, True), (0x35, 4, 5, False)]
    cases += [(0x45, 0b110, 0b100, True), (0x45, 0b011, 0b100, False)]
    cases += [(0x15, 5, 5, True), (0x15, 4, 5, False)]
    for code, a, v, taken in cases:
        k_form = BpfProgram([ld_imm(a), (code, 0, 1, v), RET_1, RET_0])
        x_form = BpfProgram([ldx_imm(v), ld_imm(a), (code | 0x08, 0, 1, 0), RET_1, RET_0])
        assert k_form.matches(b"", 0) is taken and x_form.matches(b"", 0) is taken, (hex(code), a, v)
    assert a_is([ld_imm(4), TAX, ld_imm(0), TXA], 4)


@pytest.mark.parametrize(
    ("insns", "message"),
    [
        ([ld_imm(1), (0x15, 5, 0, 1), RET_1], r"instruction 1 \(code 0x15 jt 5 jf 0 k 0x1\): jump to 7 past"),
        ([(0x05, 0, 0, 1), RET_1], r"instruction 0 \(code 0x05 .*\): jump to 2 past the end"),
        ([ld_imm(1), (0x15, 0, 1, 1)], r"instruction 1 .*jump to 3 past the end"),
        ([ld_imm(1), TAX], r"instruction 1 \(code 0x07 .*\): a BPF program must end with ret"),
        ([(0xFF, 0, 0, 0), RET_1], r"instruction 0 \(code 0xff .*\): unknown opcode"),
        ([ld_imm(1), (0x0E, 0, 0, 0)], r"instruction 1 \(code 0x0e .*\): unknown opcode"),  # ret x
        ([(0x0D, 0, 0, 0), RET_1], r"instruction 0 \(code 0x0d .*\): unknown opcode"),  # ja x
        ([ld_imm(1), (0x8C, 0, 0, 0), RET_1], r"instruction 1 \(code 0x8c .*\): unknown opcode"),  # neg x
        ([(0x02, 0, 0, 16), RET_1], r"instruction 0 .*scratch memory index 16"),
        ([(0x60, 0, 0, 99), RET_1], r"instruction 0 .*scratch memory index 99"),
        ([ld_imm(1), (0x34, 0, 0, 0), RET_1], r"instruction 1 .*div by constant 0"),
        ([ld_imm(1), (0x64, 0, 0, 32), RET_1], r"instruction 1 .*lsh by 32"),
        ([(0x06, 0, 0, -1)], r"instruction 0 .*field out of range"),
        ([], r"1 to 4096 instructions, not 0"),
    ],
)
def test_invalid_programs_are_refused_naming_the_instruction(insns: list[Insn], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BpfProgram(insns)


# -- end to end: edge-nids run --pcap --bpf -------------------------------------------------------


@needs_tcpdump
def test_replay_with_bpf_sees_only_what_the_filter_accepts(agent_bundle: Path, tmp_path: Path) -> None:
    want = len(_tcpdump_accepts(DEMO, "tcp port 80", tmp_path))
    assert 0 < want < DEMO_PACKETS
    _, flows, err = run_agent(DEMO, agent_bundle, ["--bpf", "tcp port 80"])
    assert flows and all(f["proto"] == "TCP" and 80 in (f["src_port"], f["dest_port"]) for f in flows)
    final = next(line for line in err.splitlines() if "final stats" in line)
    assert f"packets={want} " in final and f"filtered={DEMO_PACKETS - want} " in final
    assert "unfiltered" not in err

    _, all_flows, err = run_agent(DEMO, agent_bundle)
    assert any(80 not in (f.get("src_port"), f.get("dest_port")) for f in all_flows)
    assert len(all_flows) > len(flows)
    assert f"packets={DEMO_PACKETS} " in err and "filtered=0 " in err


@needs_tcpdump
def test_replay_with_a_bad_expression_is_one_line_naming_it(tmp_path: Path) -> None:
    alerts = tmp_path / "alerts.json"
    proc = subprocess.run(
        agent_cmd("run", "--pcap", str(DEMO), "--bpf", "tcp port port", "--alerts", str(alerts)),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("edge-nids run: bad BPF filter 'tcp port port': ")
    assert not alerts.exists()  # refused before any output was opened
