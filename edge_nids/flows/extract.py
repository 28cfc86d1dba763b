"""``edge-nids extract``: capture files -> CIC-IDS2017 TrafficLabelling CSV.

Reads each capture in turn through one flow table (flows may span files), writes
one row per ended flow with the 85 columns of ``schema.TRAFFIC_LABELLING_HEADER``,
shows a progress line on stderr for long inputs and returns a summary.

``Timestamp`` is the flow's first packet time as ``d/m/yyyy H:MM:SS`` (24-hour,
day first, like the CIC files but with seconds) at a fixed UTC offset (default
0, i.e. UTC; the CIC-IDS2017 files hold lab local time, UTC-3, to the minute).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import io
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TextIO

from edge_nids.flows.decode import Decoder
from edge_nids.flows.labels import BENIGN, Labeller
from edge_nids.flows.packet import format_ip
from edge_nids.flows.pcap import open_capture
from edge_nids.flows.schema import EDGE_EXTRA_HEADER, TRAFFIC_LABELLING_HEADER
from edge_nids.flows.table import Flow, FlowConfig, FlowTable

__all__ = ["ExtractSummary", "extract", "format_timestamp", "format_value", "header"]

_PROGRESS_AFTER_S = 2.0  # show the progress line only for inputs slower than this
_PROGRESS_EVERY = 1 << 13  # records between progress checks


@dataclass
class ExtractSummary:
    """What one extract run saw; times in s."""

    packets: int = 0
    decoded: int = 0
    flows: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    evicted: int = 0
    dropped_single: int = 0
    remnants: int = 0
    continued: int = 0
    end_reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def packets_per_s(self) -> float:
        """Records read per second of wall time."""
        return self.packets / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        """Human-readable summary lines (for stderr)."""
        bad = ", ".join(f"{k} {v}" for k, v in sorted(self.malformed.items())) or "none"
        ends = ", ".join(f"{k} {v}" for k, v in self.end_reasons.items() if v) or "none"
        return [
            f"packets {self.packets}, decoded {self.decoded}, flows {self.flows} "
            f"in {self.seconds:.2f} s ({self.packets_per_s:,.0f} packets/s)",
            f"malformed/skipped: {bad}",
            f"flows ended by: {ends}; evicted {self.evicted}; "
            f"one-packet flows dropped {self.dropped_single}; "
            f"packets after a close absorbed {self.remnants}; continued flows {self.continued}",
        ]


def format_value(v: float) -> str:
    """A feature cell as the CIC files write it (``NaN``, ``Infinity``)."""
    if type(v) is int:
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(float(v))


def format_timestamp(ts_us: int, utc_offset_h: float = 0.0) -> str:
    """``d/m/yyyy H:MM:SS`` of an epoch time in µs, at a fixed offset from UTC (hours)."""
    tz = timezone(timedelta(hours=utc_offset_h))
    d = datetime.fromtimestamp(ts_us // 1_000_000, tz)
    return f"{d.day}/{d.month}/{d.year} {d.hour}:{d.minute:02d}:{d.second:02d}"


def header(profile: str) -> list[str]:
    """The CSV header: TrafficLabelling's 85 cells; ``corrected`` adds the state and context
    columns of ``schema.EDGE_FLOWS`` before the label."""
    if profile == "cicids2017":
        return TRAFFIC_LABELLING_HEADER
    return [*TRAFFIC_LABELLING_HEADER[:-1], *EDGE_EXTRA_HEADER, TRAFFIC_LABELLING_HEADER[-1]]


#: One CSV line of 85 cells. Every cell is written with ``str`` (for a float that is
#: ``repr``, as ``csv`` writes it); the text cells other than the label never hold
#: a character that ``csv`` would quote, and the label is quoted by ``csv`` itself.
_LINE = ",".join(["%s"] * len(TRAFFIC_LABELLING_HEADER)) + "\n"
_CACHE_MAX = 1 << 16  # entries per text cache (IP text, labels): bounded memory


def _csv_cell(text: str) -> str:
    """``text`` as ``csv`` writes it in a row of several cells (quoted only if needed)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([text, ""])
    return buf.getvalue()[:-2]  # drop the empty cell's "," and the line end


class _Rows:
    """Formats flows as TrafficLabelling rows, caching timestamps per second.

    ``line`` is the fast path of ``extract`` (writing rows costs more CPU than
    metering the packets of a scan or flood): one ``%`` format of a prepared
    85-cell template instead of ``csv.writer``'s per-cell work, address text
    cached per packed address (scans and floods repeat their addresses), and
    labels encoded once. It writes exactly what ``csv.writer`` writes for ``row``.
    """

    def __init__(self, utc_offset_h: float, edge: bool = False) -> None:
        self.utc_offset_h = utc_offset_h
        self.edge = edge
        self._line = _LINE if not edge else ",".join(["%s"] * len(header("corrected"))) + "\n"
        self._ts_s = -1
        self._ts_text = ""
        self._ip: dict[bytes, str] = {}
        self._labels: dict[str, str] = {}

    def _ip_text(self, addr: bytes) -> str:
        text = self._ip.get(addr)
        if text is None:
            if len(self._ip) >= _CACHE_MAX:
                self._ip.clear()
            text = self._ip[addr] = format_ip(addr)
        return text

    def line(self, flow: Flow, label: str) -> str:
        """The CSV line (with its line end) that ``csv.writer`` would write for ``row``."""
        values = flow.features()
        first = flow.first_us
        if first // 1_000_000 != self._ts_s:
            self._ts_s = first // 1_000_000
            self._ts_text = format_timestamp(first, self.utc_offset_h)
        cell = self._labels.get(label)
        if cell is None:
            if len(self._labels) >= _CACHE_MAX:
                self._labels.clear()
            cell = self._labels[label] = _csv_cell(label)
        # Flow Bytes/s and Flow Packets/s (values 14, 15) are NaN/Infinity for a
        # zero-duration flow in cicids2017; write them as the CIC files do
        v = values[14]
        if v != v or v == math.inf:
            values[14] = format_value(v)
        v = values[15]
        if v != v or v == math.inf:
            values[15] = format_value(v)
        # a float costs far more to format than an int: format each mean that the
        # schema repeats (Fwd/Bwd Packet Length Mean = Avg Fwd/Bwd Segment Size) once
        v = values[8]
        if type(v) is float:
            values[8] = values[53] = repr(v)
        v = values[12]
        if type(v) is float:
            values[12] = values[54] = repr(v)
        src = self._ip_text(flow.src)
        dst = self._ip_text(flow.dst)
        sport, dport, proto = flow.sport, flow.dport, flow.proto
        values[0] = self._ts_text  # the Destination Port cell is written from dport below
        if self.edge:
            values.extend(flow.state())
            values.extend(flow.context)
        return self._line % (
            f"{src}-{dst}-{sport}-{dport}-{proto}",
            src,
            sport,
            dst,
            dport,
            proto,
            *values,
            cell,
        )


class _Progress:
    """A ``\\r`` progress line on stderr, shown once the input takes more than ~2 s."""

    def __init__(self, total_bytes: int, stream: TextIO, enabled: bool) -> None:
        self.total = max(total_bytes, 1)
        self.stream = stream
        self.enabled = enabled
        self.start = time.perf_counter()
        self.shown = False

    def update(self, done_bytes: int, packets: int) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        if elapsed < _PROGRESS_AFTER_S:
            return
        pct = min(100.0, 100.0 * done_bytes / self.total)
        self.stream.write(
            f"\r{pct:5.1f}% {done_bytes / 1e6:,.1f}/{self.total / 1e6:,.1f} MB "
            f"{packets:,} packets {packets / elapsed:,.0f} packets/s"
        )
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def extract(
    paths: Sequence[str | os.PathLike[str]],
    out: TextIO,
    config: FlowConfig | None = None,
    label: str | Callable[[Flow], str] = BENIGN,
    utc_offset_h: float = 0.0,
    progress: bool = False,
    progress_stream: TextIO | None = None,
    padding: bool = True,
) -> ExtractSummary:
    """Extract flows from ``paths`` into ``out`` (CSV text); returns the summary.

    ``label``: a fixed text for every flow, or a function of the flow (see
    ``labels.Labeller``). Raises ``pcap.CaptureError`` for a file that is not a
    readable capture (before or while reading it). ``padding``: count Ethernet
    padding as payload (the 2017 build, default) or not (CICFlowMeter-4.0).
    """
    table = FlowTable(config)
    decoder = Decoder(padding=padding)
    decode = decoder.decode
    add = table.add
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header(table.config.profile))
    summary = ExtractSummary()
    if isinstance(label, str):
        fixed = label

        def label_of(flow: Flow) -> str:
            return fixed
    else:
        label_of = label

    line = _Rows(utc_offset_h, edge=table.config.profile != "cicids2017").line
    write_text = out.write

    def write(flows: list[Flow]) -> None:
        # one line at a time (exactly what csv.writer would write): the end-of-input
        # batch can hold every open flow, and joining it would double peak memory
        for flow in flows:
            write_text(line(flow, label_of(flow)))
        summary.flows += len(flows)

    sizes = []
    for p in paths:
        try:
            sizes.append(os.path.getsize(p))
        except OSError:
            sizes.append(0)
    bar = _Progress(sum(sizes), progress_stream or sys.stderr, progress)
    started = time.perf_counter()
    # flows hold no reference cycles: the cyclic GC only re-scans the growing table
    # (it doubled the per-packet cost of a SYN flood), so pause it while reading
    capture_counts: dict[str, int] = {}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        packets = _run_captures(paths, sizes, decode, add, write, bar, capture_counts)
        write(table.flush())
    finally:
        if gc_was_enabled:
            gc.enable()
    bar.done()
    summary.seconds = time.perf_counter() - started
    summary.packets = packets
    summary.decoded = decoder.decoded
    malformed = dict(decoder.counts)
    for k, v in capture_counts.items():
        malformed[k] = malformed.get(k, 0) + v
    summary.malformed = malformed
    summary.evicted = table.evicted
    summary.dropped_single = table.dropped_single
    summary.remnants = table.remnants
    summary.continued = table.continued
    summary.end_reasons = dict(table.ended)
    return summary


def _run_captures(
    paths: Sequence[str | os.PathLike[str]],
    sizes: Sequence[int],
    decode: Callable,
    add: Callable,
    write: Callable[[list[Flow]], None],
    bar: _Progress,
    capture_counts: dict[str, int],
) -> int:
    """The per-packet loop over every capture (``sizes``: their bytes, for progress);
    returns the records read."""
    done_before = 0
    packets = 0
    for path, size in zip(paths, sizes, strict=True):
        with open_capture(path) as cap:
            fh = getattr(cap, "_file", None)
            every = _PROGRESS_EVERY
            for ts, linktype, frame, wire_len in cap:
                packets += 1
                pkt = decode(linktype, frame, ts, wire_len)
                if pkt is not None:
                    ended = add(pkt)
                    if ended:
                        write(ended)
                every -= 1
                if not every:
                    every = _PROGRESS_EVERY
                    pos = fh.tell() if fh is not None and not fh.closed else 0
                    bar.update(done_before + pos, packets)
            for k, v in cap.counts.items():
                capture_counts[k] = capture_counts.get(k, 0) + v
        done_before += size
    return packets


def labeller_function(labeller: Labeller) -> Callable[[Flow], str]:
    """Adapt a ``Labeller`` to ``extract``'s ``label`` argument."""

    def label_of(flow: Flow) -> str:
        return labeller.label(flow.src, flow.dst, flow.first_us)

    return label_of


def _fail(message: str) -> int:
    print(f"edge-nids extract: error: {message}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    """Run ``edge-nids extract`` from parsed arguments; returns the exit status."""
    from edge_nids.flows.labels import LabelError, load_labels
    from edge_nids.flows.pcap import CaptureError

    try:
        config = FlowConfig(
            profile=args.profile,
            active_timeout_s=args.active_timeout,
            idle_timeout_s=args.idle_timeout,
            max_flows=args.max_flows,
        )
    except ValueError as exc:
        return _fail(str(exc))
    label: str | Callable[[Flow], str] = args.label or BENIGN
    if args.labels:
        try:
            label = labeller_function(load_labels(args.labels))
        except LabelError as exc:
            return _fail(str(exc))
    if not -24 < args.utc_offset < 24:
        return _fail(f"--utc-offset must be between -24 and 24 hours, got {args.utc_offset}")
    # open every input once first, so a bad file fails before any output is written
    for path in args.pcaps:
        try:
            open_capture(path).close()
        except CaptureError as exc:
            return _fail(str(exc))
    out_path = args.output
    if out_path == "-":  # standard output, as `run --alerts -` (not a file named "-")
        out = contextlib.nullcontext(sys.stdout)
    else:
        try:
            out = open(out_path, "w", newline="", encoding="utf-8")
        except OSError as exc:
            return _fail(f"{out_path}: cannot write: {exc.strerror or exc}")
    quiet = args.quiet
    try:
        with out as out:
            summary = extract(
                args.pcaps,
                out,
                config,
                label=label,
                utc_offset_h=args.utc_offset,
                progress=not quiet and sys.stderr.isatty(),
                padding=not args.no_padding,
            )
    except CaptureError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{out_path}: write failed: {exc.strerror or exc}")
    if not quiet:
        for line in summary.lines():
            print(line, file=sys.stderr)
    return 0
