"""A classic-BPF interpreter in pure Python, so pcap replay sees the packets live capture would.

Live capture hands the compiled filter to the kernel (``SO_ATTACH_FILTER``);
replay runs the same ``(code, jt, jf, k)`` instructions here. Semantics are
libpcap's ``bpf_filter()``, which ``tcpdump -r FILE EXPR`` uses: loads read the
captured bytes (a load past their end rejects the packet, as the kernel does),
``BPF_LEN`` is the wire length, division or modulo by a zero X rejects, shifts by
X >= 32 give 0, and ``ret`` accepts when its value is not 0 (the snapshot length
it asks for is ignored: the frame is passed on whole).

The program is validated once, as the kernel's ``bpf_check_classic`` does
(known opcodes, forward jumps inside the program, a ``ret`` at the end, scratch
index < 16, no division by a constant 0, no constant shift >= 32), and decoded
into a list of small tuples so that ``matches`` does no decoding per packet.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

__all__ = ["BPF_MAXINSNS", "BPF_MEMWORDS", "BpfProgram"]

BPF_MAXINSNS = 4096  #: the most instructions a program may have (as the kernel)
BPF_MEMWORDS = 16  #: scratch memory words M[0..15]

_MASK = 0xFFFFFFFF
_U32 = struct.Struct("!I").unpack_from

# Instruction classes, sizes, modes, ALU/JMP operations and sources (linux/filter.h, pcap/bpf.h).
_LD, _LDX, _ST, _STX, _ALU, _JMP, _RET, _MISC = range(8)
_W, _H, _B = 0x00, 0x08, 0x10
_IMM, _ABS, _IND, _MEM, _LEN, _MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
_K, _X = 0x00, 0x08
_RET_A = 0x10
_TAX, _TXA = 0x00, 0x80

# Decoded operations: small ints, roughly in the order tcpdump's programs use them (the dispatch
# in ``matches`` tests them in this order).
(
    _OP_LDH_ABS,
    _OP_JEQ_K,
    _OP_LDB_ABS,
    _OP_RET_K,
    _OP_LDX_MSH,
    _OP_LDH_IND,
    _OP_JSET_K,
    _OP_LDB_IND,
    _OP_JGT_K,
    _OP_JGE_K,
    _OP_AND_K,
    _OP_LDW_ABS,
    _OP_LD_LEN,
    _OP_LDW_IND,
    _OP_JA,
    _OP_LD_IMM,
    _OP_LDX_IMM,
    _OP_LDX_LEN,
    _OP_LD_MEM,
    _OP_LDX_MEM,
    _OP_ST,
    _OP_STX,
    _OP_TAX,
    _OP_TXA,
    _OP_RET_A,
    _OP_JEQ_X,
    _OP_JGT_X,
    _OP_JGE_X,
    _OP_JSET_X,
    _OP_ALU_K,
    _OP_ALU_X,
    _OP_NEG,
) = range(32)

# ALU operation code -> name; the K and X forms share one decoded op and carry the operation.
_ALU_OPS = {
    0x00: "add",
    0x10: "sub",
    0x20: "mul",
    0x30: "div",
    0x40: "or",
    0x50: "and",
    0x60: "lsh",
    0x70: "rsh",
    0x90: "mod",
    0xA0: "xor",
}
_ADD, _SUB, _MUL, _DIV, _OR, _AND, _LSH, _RSH, _MOD, _XOR = (
    0x00,
    0x10,
    0x20,
    0x30,
    0x40,
    0x50,
    0x60,
    0x70,
    0x90,
    0xA0,
)

# Every valid non-jump, non-ALU opcode -> decoded op.
_SIMPLE: dict[int, int] = {
    _LD | _W | _ABS: _OP_LDW_ABS,
    _LD | _H | _ABS: _OP_LDH_ABS,
    _LD | _B | _ABS: _OP_LDB_ABS,
    _LD | _W | _IND: _OP_LDW_IND,
    _LD | _H | _IND: _OP_LDH_IND,
    _LD | _B | _IND: _OP_LDB_IND,
    _LD | _W | _LEN: _OP_LD_LEN,
    _LD | _W | _IMM: _OP_LD_IMM,
    _LD | _W | _MEM: _OP_LD_MEM,
    _LDX | _W | _IMM: _OP_LDX_IMM,
    _LDX | _W | _MEM: _OP_LDX_MEM,
    _LDX | _W | _LEN: _OP_LDX_LEN,
    _LDX | _B | _MSH: _OP_LDX_MSH,
    _ST: _OP_ST,
    _STX: _OP_STX,
    _RET | _K: _OP_RET_K,
    _RET | _RET_A: _OP_RET_A,
    _MISC | _TAX: _OP_TAX,
    _MISC | _TXA: _OP_TXA,
    _ALU | 0x80: _OP_NEG,
}
_JUMPS: dict[int, int] = {
    _JMP | 0x10 | _K: _OP_JEQ_K,
    _JMP | 0x20 | _K: _OP_JGT_K,
    _JMP | 0x30 | _K: _OP_JGE_K,
    _JMP | 0x40 | _K: _OP_JSET_K,
    _JMP | 0x10 | _X: _OP_JEQ_X,
    _JMP | 0x20 | _X: _OP_JGT_X,
    _JMP | 0x30 | _X: _OP_JGE_X,
    _JMP | 0x40 | _X: _OP_JSET_X,
}
_LOAD_SIZE = {_OP_LDW_ABS: 4, _OP_LDH_ABS: 2, _OP_LDB_ABS: 1, _OP_LDX_MSH: 1}
_MEM_OPS = frozenset((_OP_LD_MEM, _OP_LDX_MEM, _OP_ST, _OP_STX))


def _describe(pc: int, insn: tuple[int, int, int, int]) -> str:
    code, jt, jf, k = insn
    return f"instruction {pc} (code 0x{code:02x} jt {jt} jf {jf} k {k:#x})"


class BpfProgram:
    """A validated classic-BPF program; ``matches(frame, wirelen)`` runs it on one frame.

    ``insns``: the ``(code, jt, jf, k)`` instructions, as ``tcpdump -ddd`` prints them.
    Raises ValueError naming the first bad instruction.
    """

    __slots__ = ("_insns", "_mem", "_uses_mem", "_zero", "insns")

    def __init__(self, insns: Sequence[tuple[int, int, int, int]]) -> None:
        self.insns = [tuple(int(v) for v in i) for i in insns]
        n = len(self.insns)
        if not 0 < n <= BPF_MAXINSNS:
            raise ValueError(f"a BPF program has 1 to {BPF_MAXINSNS} instructions, not {n}")
        decoded: list[tuple[int, int, int, int]] = []
        uses_mem = False
        for pc, insn in enumerate(self.insns):
            if len(insn) != 4:
                raise ValueError(f"instruction {pc}: {insn!r} is not (code, jt, jf, k)")
            decoded.append(self._decode(pc, insn, n))
            uses_mem = uses_mem or decoded[-1][0] in _MEM_OPS
        last = decoded[-1][0]
        if last not in (_OP_RET_K, _OP_RET_A):
            raise ValueError(f"{_describe(n - 1, self.insns[-1])}: a BPF program must end with ret")
        self._insns = decoded
        # one scratch memory per program, zeroed per packet only when the program uses it
        self._mem = [0] * BPF_MEMWORDS
        self._uses_mem = uses_mem
        self._zero = (0,) * BPF_MEMWORDS

    @staticmethod
    def _decode(pc: int, insn: tuple[int, int, int, int], n: int) -> tuple[int, int, int, int]:
        """One instruction -> (op, k, a, b): a/b are absolute jump targets, or a = k + load size."""
        code, jt, jf, k = insn
        where = _describe(pc, insn)
        if not (0 <= code <= 0xFFFF and 0 <= jt <= 0xFF and 0 <= jf <= 0xFF and 0 <= k <= _MASK):
            raise ValueError(f"{where}: field out of range")
        cls = code & 0x07
        if cls == _JMP:
            if code == _JMP:  # ja: the offset is k
                target = pc + 1 + k
                if target >= n:
                    raise ValueError(f"{where}: jump to {target} past the end ({n} instructions)")
                return (_OP_JA, k, target, target)
            op = _JUMPS.get(code)
            if op is None:
                raise ValueError(f"{where}: unknown opcode")
            t, f = pc + 1 + jt, pc + 1 + jf
            if max(t, f) >= n:
                raise ValueError(f"{where}: jump to {max(t, f)} past the end ({n} instructions)")
            return (op, k, t, f)
        if cls == _ALU and code != _ALU | 0x80:
            alu = code & 0xF0
            if alu not in _ALU_OPS or code not in (_ALU | alu | _K, _ALU | alu | _X):
                raise ValueError(f"{where}: unknown opcode")
            if code & _X:
                return (_OP_ALU_X, k, alu, 0)
            if alu in (_DIV, _MOD) and k == 0:
                raise ValueError(f"{where}: {_ALU_OPS[alu]} by constant 0")
            if alu in (_LSH, _RSH) and k >= 32:
                raise ValueError(f"{where}: {_ALU_OPS[alu]} by {k} (>= 32)")
            # "and #k" (header-field masks) is common enough to get its own branch in ``matches``
            return (_OP_AND_K, k, 0, 0) if alu == _AND else (_OP_ALU_K, k, alu, 0)
        op = _SIMPLE.get(code)
        if op is None:
            raise ValueError(f"{where}: unknown opcode")
        if op in _MEM_OPS and k >= BPF_MEMWORDS:
            raise ValueError(f"{where}: scratch memory index {k} (must be < {BPF_MEMWORDS})")
        return (op, k, k + _LOAD_SIZE.get(op, 0), 0)

    def __len__(self) -> int:
        return len(self._insns)

    def matches(self, frame: bytes, wirelen: int) -> bool:
        """True if the program accepts this frame (captured bytes; ``wirelen``: length on the wire, bytes)."""
        insns = self._insns
        buflen = len(frame)
        mem = self._mem
        if self._uses_mem:
            mem[:] = self._zero
        a = x = 0
        pc = 0
        while True:
            op, k, t, f = insns[pc]
            pc += 1
            if op == _OP_LDH_ABS:
                if t > buflen:
                    return False
                a = (frame[k] << 8) | frame[k + 1]
            elif op == _OP_JEQ_K:
                pc = t if a == k else f
            elif op == _OP_LDB_ABS:
                if t > buflen:
                    return False
                a = frame[k]
            elif op == _OP_RET_K:
                return k != 0
            elif op == _OP_LDX_MSH:
                if t > buflen:
                    return False
                x = (frame[k] & 0x0F) << 2
            elif op == _OP_LDH_IND:
                i = x + k
                if i + 2 > buflen:
                    return False
                a = (frame[i] << 8) | frame[i + 1]
            elif op == _OP_JSET_K:
                pc = t if a & k else f
            elif op == _OP_LDB_IND:
                i = x + k
                if i >= buflen:
                    return False
                a = frame[i]
            elif op == _OP_JGT_K:
                pc = t if a > k else f
            elif op == _OP_JGE_K:
                pc = t if a >= k else f
            elif op == _OP_AND_K:
                a &= k
            elif op == _OP_LDW_ABS:
                if t > buflen:
                    return False
                a = _U32(frame, k)[0]
            elif op == _OP_LD_LEN:
                a = wirelen & _MASK
            elif op == _OP_LDW_IND:
                i = x + k
                if i + 4 > buflen:
                    return False
                a = _U32(frame, i)[0]
            elif op == _OP_JA:
                pc = t
            elif op == _OP_LD_IMM:
                a = k
            elif op == _OP_LDX_IMM:
                x = k
            elif op == _OP_LDX_LEN:
                x = wirelen & _MASK
            elif op == _OP_LD_MEM:
                a = mem[k]
            elif op == _OP_LDX_MEM:
                x = mem[k]
            elif op == _OP_ST:
                mem[k] = a
            elif op == _OP_STX:
                mem[k] = x
            elif op == _OP_TAX:
                x = a
            elif op == _OP_TXA:
                a = x
            elif op == _OP_RET_A:
                return a != 0
            elif op == _OP_JEQ_X:
                pc = t if a == x else f
            elif op == _OP_JGT_X:
                pc = t if a > x else f
            elif op == _OP_JGE_X:
                pc = t if a >= x else f
            elif op == _OP_JSET_X:
                pc = t if a & x else f
            elif op == _OP_NEG:
                a = -a & _MASK
            else:  # _OP_ALU_K or _OP_ALU_X; t holds the operation
                v = k if op == _OP_ALU_K else x
                if t == _AND:
                    a &= v
                elif t == _ADD:
                    a = (a + v) & _MASK
                elif t == _SUB:
                    a = (a - v) & _MASK
                elif t == _MUL:
                    a = (a * v) & _MASK
                elif t == _OR:
                    a |= v
                elif t == _XOR:
                    a ^= v
                elif t == _LSH:
                    a = (a << v) & _MASK if v < 32 else 0
                elif t == _RSH:
                    a = a >> v if v < 32 else 0
                elif v == 0:  # div or mod by X = 0
                    return False
                elif t == _DIV:
                    a //= v
                else:  # _MOD
                    a %= v
