"""Per-flow feature accumulation and the 78 CIC-IDS2017 feature values.

``FlowFeatures`` holds constant-size running state that is updated as each packet
arrives (streaming statistics, bulk, subflow and active/idle state machines); no
packet is stored. ``vector()`` turns that state into the 78 values of
``schema.CIC_IDS2017``, in order, at any time (a live flow is not changed).

Two behaviours (see docs/features.md):

* ``cicids2017`` reproduces what the 2017 CICFlowMeter build wrote into the
  published CSVs: flag columns look at the first packet only and are written in
  Java ``HashMap`` order; the first packet's payload counts twice in the
  packet-length columns; integer Down/Up ratio; bulk columns 0; subflow columns
  equal the totals; ``Init_Win_bytes_backward`` is the last backward window;
  ``act_data_pkt_fwd`` skips the first packet; Active/Idle follow that build's
  (buggy) bookkeeping; rates are NaN/Infinity for zero duration.
* ``corrected`` computes the intended meaning of every column.

All times are integer µs, lengths are transport payload bytes, header lengths
transport header bytes, rates per second.
"""

from __future__ import annotations

import math

from edge_nids.flows.packet import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, Packet
from edge_nids.flows.stats import RunningStats

__all__ = [
    "ACTIVITY_TIMEOUT_US",
    "BULK_MIN_PACKETS",
    "CIC_FLAG_ORDER",
    "HEADER_FLAG_ORDER",
    "SUBFLOW_GAP_US",
    "FlowFeatures",
]

#: Gap that separates active periods (Active/Idle columns), µs.
ACTIVITY_TIMEOUT_US = 5_000_000
#: Gap that starts a new subflow / a new bulk, µs.
SUBFLOW_GAP_US = 1_000_000
#: Consecutive one-way payload packets that make a bulk.
BULK_MIN_PACKETS = 4

#: Flags in the order of the CSV header (FIN, SYN, RST, PSH, ACK, URG, CWE=CWR, ECE).
HEADER_FLAG_ORDER: tuple[int, ...] = (FIN, SYN, RST, PSH, ACK, URG, CWR, ECE)
#: What the 2017 build actually wrote in those eight columns: Java HashMap
#: iteration order of the keys FIN..ECE (buckets 2, 4, 6, 9, 9, 10, 11, 15).
CIC_FLAG_ORDER: tuple[int, ...] = (RST, PSH, ECE, SYN, ACK, FIN, URG, CWR)

_FLAG_INDEX = {FIN: 0, SYN: 1, RST: 2, PSH: 3, ACK: 4, URG: 5, CWR: 6, ECE: 7}
_CIC_FLAG_INDEX = tuple(_FLAG_INDEX[f] for f in CIC_FLAG_ORDER)
_HEADER_FLAG_INDEX = tuple(_FLAG_INDEX[f] for f in HEADER_FLAG_ORDER)
_NO_FLAGS = (0,) * 8
_NO_BULK = (0,) * 6
_INF = math.inf
_NAN = math.nan


def _stats4(s: RunningStats | None) -> tuple[float, float, float, float]:
    """(mean, sample std, max, min) with zeros for an empty statistic."""
    if s is None:
        return 0, 0, 0, 0
    return _inline4(s.n, s.mean, s.m2, s.max, s.min)


def _inline4(n: int, mean: float, m2: float, mx: float, mn: float) -> tuple[float, float, float, float]:
    """``_stats4`` of an inlined statistic (same values, same types as ``RunningStats``)."""
    if n == 0:
        return 0, 0, 0, 0
    if n == 1:
        return mean, 0, mx, mn
    return mean, math.sqrt(max(m2, 0.0) / (n - 1)), mx, mn


class FlowFeatures:
    """Running per-flow state; ``vector()`` gives the 78 feature values.

    The orientation (forward = the first packet's source, or the orientation of the
    flow this one continues after an active timeout) is decided by the caller and
    passed as ``fwd`` to ``first_packet`` and ``update``.

    Performance: ``update`` runs for every packet, so the six per-packet streaming
    statistics (packet length forward/backward/all, inter-arrival time
    flow/forward/backward) are not ``RunningStats`` objects but plain slots of
    the flow (``fl_`` forward length, ``bl_`` backward length, ``al_`` all lengths,
    ``it_`` flow IAT, ``fi_``/``bi_`` forward/backward IAT), updated in line with
    exactly the arithmetic of ``RunningStats.add`` (Welford; same operations in
    the same order, so the values are bit-identical). That saves a method call
    and an object per statistic. Their counts are derived where they equal a
    counter already kept: forward length n = ``fwd_pkts``, forward IAT n =
    ``fwd_pkts - 1``, flow IAT n = ``fwd_pkts + bwd_pkts - 1``; their sums likewise
    (``fwd_bytes``...). Active/Idle change rarely and stay ``RunningStats``.
    """

    __slots__ = (
        "act_data_fwd",
        "active",
        "active_end",
        "active_start",
        "al_m2",
        "al_max",
        "al_mean",
        "al_min",
        "al_n",
        "al_sum",
        "b_bulk",
        "bi_m2",
        "bi_max",
        "bi_mean",
        "bi_min",
        "bi_sum",
        "bl_m2",
        "bl_max",
        "bl_mean",
        "bl_min",
        "bwd_bytes",
        "bwd_hdr",
        "bwd_last",
        "bwd_pkts",
        "bwd_psh",
        "bwd_urg",
        "cic",
        "f_bulk",
        "fi_m2",
        "fi_max",
        "fi_mean",
        "fi_min",
        "fi_sum",
        "fin_bwd",
        "fin_fwd",
        "first_us",
        "fl_m2",
        "fl_max",
        "fl_mean",
        "fl_min",
        "flag_counts",
        "fwd_bytes",
        "fwd_hdr",
        "fwd_last",
        "fwd_pkts",
        "fwd_psh",
        "fwd_urg",
        "idle",
        "init_win_bwd",
        "init_win_fwd",
        "it_m2",
        "it_max",
        "it_mean",
        "it_min",
        "last_us",
        "min_seg_fwd",
        "sf_count",
        "sf_last",
    )

    def __init__(self, cic: bool) -> None:
        self.cic = cic
        self.first_us = self.last_us = 0
        self.fwd_pkts = self.bwd_pkts = 0
        self.fwd_bytes = self.bwd_bytes = 0
        self.fwd_hdr = self.bwd_hdr = 0
        # inlined streaming statistics (see the class docstring): min/max hold the
        # values' type (int), mean and m2 are float as in RunningStats
        self.fl_min = self.fl_max = 0
        self.fl_mean = self.fl_m2 = 0.0
        self.bl_min = self.bl_max = 0
        self.bl_mean = self.bl_m2 = 0.0
        self.al_n = self.al_sum = self.al_min = self.al_max = 0
        self.al_mean = self.al_m2 = 0.0
        self.it_min = self.it_max = 0
        self.it_mean = self.it_m2 = 0.0
        self.fi_sum = self.fi_min = self.fi_max = 0
        self.fi_mean = self.fi_m2 = 0.0
        self.bi_sum = self.bi_min = self.bi_max = 0
        self.bi_mean = self.bi_m2 = 0.0
        self.fwd_last = self.bwd_last = 0
        self.fwd_psh = self.bwd_psh = 0
        self.fwd_urg = self.bwd_urg = 0
        self.flag_counts: list[int] | None = None  # FIN, SYN, RST, PSH, ACK, URG, CWR, ECE
        self.init_win_fwd = self.init_win_bwd = -1
        self.act_data_fwd = 0
        self.min_seg_fwd = 0
        # created when first needed (cheap new flows: SYN floods, scans)
        self.active: RunningStats | None = None
        self.idle: RunningStats | None = None
        self.active_start = self.active_end = 0
        self.sf_count = 1
        self.sf_last = 0
        self.fin_fwd = self.fin_bwd = False
        # bulk state per direction: [start (-1: none), last payload ts, helper_pkts,
        #   helper_bytes, bulks, bulk_pkts, bulk_bytes, bulk_duration_us]; None until used
        self.f_bulk: list[int] | None = None
        self.b_bulk: list[int] | None = None

    # -- per packet ---------------------------------------------------------------

    def _count_flags(self, flags: int, fwd: bool) -> None:
        fc = self.flag_counts
        if fc is None:
            fc = self.flag_counts = [0] * 8
        if flags & FIN:
            fc[0] += 1
        if flags & SYN:
            fc[1] += 1
        if flags & RST:
            fc[2] += 1
        if flags & PSH:
            fc[3] += 1
            if fwd:
                self.fwd_psh += 1
            else:
                self.bwd_psh += 1
        if flags & ACK:
            fc[4] += 1
        if flags & URG:
            fc[5] += 1
            if fwd:
                self.fwd_urg += 1
            else:
                self.bwd_urg += 1
        if flags & CWR:
            fc[6] += 1
        if flags & ECE:
            fc[7] += 1

    def first_packet(self, pkt: Packet, fwd: bool) -> None:
        """Start the flow with its first packet (``fwd``: in the forward direction)."""
        ts = pkt.ts_us
        pl = pkt.payload_len
        cic = self.cic
        self.first_us = self.last_us = ts
        self.active_start = self.active_end = ts
        self.sf_last = ts
        flags = pkt.flags
        if flags:
            # the 2017 build counted flags on this packet only, and Bwd PSH/URG never
            self._count_flags(flags, fwd)
            if cic:
                self.bwd_psh = self.bwd_urg = 0
        # all lengths: one value (two in cicids2017: the 2017 build added the first
        # payload twice; the second add leaves mean and m2 unchanged, as in RunningStats)
        self.al_min = self.al_max = pl
        self.al_mean = float(pl)
        if cic:
            self.al_n = 2
            self.al_sum = pl + pl
        else:
            self.al_n = 1
            self.al_sum = pl
        if fwd:
            self.min_seg_fwd = pkt.header_len
            self.init_win_fwd = pkt.window
            self.fl_min = self.fl_max = pl
            self.fl_mean = float(pl)
            self.fwd_hdr = pkt.header_len
            self.fwd_last = ts
            self.fwd_bytes = pl
            self.fwd_pkts = 1
            if pl > 0 and not cic:
                self.act_data_fwd = 1
            if flags & FIN:
                self.fin_fwd = True
        else:
            self.init_win_bwd = pkt.window
            self.bl_min = self.bl_max = pl
            self.bl_mean = float(pl)
            self.bwd_hdr = pkt.header_len
            self.bwd_last = ts
            self.bwd_bytes = pl
            self.bwd_pkts = 1
            if flags & FIN:
                self.fin_bwd = True
        if not cic and pl > 0:
            self._bulk(ts, pl, fwd)

    def cic_activity(self, ts: int) -> None:
        """The 2017 build's ``updateActiveIdleTime(ts, 5 s)``; ``ts`` may be a gap (its bug)."""
        if ts - self.active_end > ACTIVITY_TIMEOUT_US:
            span = self.active_end - self.active_start
            if span > 0:
                if self.active is None:
                    self.active = RunningStats()
                self.active.add(span)
            if self.idle is None:
                self.idle = RunningStats()
            self.idle.add(ts - self.active_end)
            self.active_start = ts
            self.active_end = ts
        else:
            self.active_end = ts

    def update(self, pkt: Packet, fwd: bool, activity: bool = False) -> None:
        """Add a packet after the first one.

        ``activity`` (``cicids2017``): first run the 2017 build's active/idle update,
        which it did for every packet but the first and those carrying FIN.
        """
        # Hot path (every packet): the Welford updates below are RunningStats.add
        # written out in line, operation for operation (bit-identical results);
        # n == 1 sets min = max = x, mean = float(x), m2 = 0.0.
        ts = pkt.ts_us
        pl = pkt.payload_len
        hl = pkt.header_len
        flags = pkt.flags
        gap = ts - self.last_us
        if self.cic:
            if activity:
                if ts - self.active_end > ACTIVITY_TIMEOUT_US:
                    self.cic_activity(ts)
                else:
                    self.active_end = ts
            if ts - self.sf_last > SUBFLOW_GAP_US:
                self.cic_activity(ts - self.sf_last)  # the 2017 build passed the gap as a time
            self.sf_last = ts
        else:
            if flags == ACK:
                # most TCP packets carry ACK alone: skip the call and its eight tests
                fc = self.flag_counts
                if fc is None:
                    fc = self.flag_counts = [0] * 8
                fc[4] += 1
            elif flags:
                self._count_flags(flags, fwd)
            if gap > SUBFLOW_GAP_US:
                self.sf_count += 1
            if gap > ACTIVITY_TIMEOUT_US:
                if self.active is None:
                    self.active = RunningStats()
                    self.idle = RunningStats()
                self.active.add(self.last_us - self.active_start)
                self.idle.add(gap)  # type: ignore[union-attr]
                self.active_start = ts
            if pl > 0:
                self._bulk(ts, pl, fwd)
        # all packet lengths (al_n >= 1 here)
        n = self.al_n + 1
        self.al_n = n
        self.al_sum += pl
        if pl < self.al_min:
            self.al_min = pl
        elif pl > self.al_max:
            self.al_max = pl
        mean = self.al_mean
        d = pl - mean
        mean += d / n
        self.al_mean = mean
        self.al_m2 += d * (pl - mean)
        if fwd:
            if pl > 0:
                self.act_data_fwd += 1
            self.fwd_hdr += hl
            self.fwd_bytes += pl
            n = self.fwd_pkts + 1
            self.fwd_pkts = n
            if n > 1:
                # forward length (n values)
                if pl < self.fl_min:
                    self.fl_min = pl
                elif pl > self.fl_max:
                    self.fl_max = pl
                mean = self.fl_mean
                d = pl - mean
                mean += d / n
                self.fl_mean = mean
                self.fl_m2 += d * (pl - mean)
                # forward IAT (n - 1 values)
                x = ts - self.fwd_last
                self.fi_sum += x
                n -= 1
                if n == 1:
                    self.fi_min = self.fi_max = x
                    self.fi_mean = float(x)
                else:
                    if x < self.fi_min:
                        self.fi_min = x
                    elif x > self.fi_max:
                        self.fi_max = x
                    mean = self.fi_mean
                    d = x - mean
                    mean += d / n
                    self.fi_mean = mean
                    self.fi_m2 += d * (x - mean)
            else:  # first forward packet of a flow that began backward
                self.fl_min = self.fl_max = pl
                self.fl_mean = float(pl)
                self.init_win_fwd = pkt.window
                self.min_seg_fwd = hl
            self.fwd_last = ts
            if hl < self.min_seg_fwd:
                self.min_seg_fwd = hl
            if flags & FIN:
                self.fin_fwd = True
        else:
            if self.cic or self.bwd_pkts == 0:
                self.init_win_bwd = pkt.window
            self.bwd_hdr += hl
            self.bwd_bytes += pl
            n = self.bwd_pkts + 1
            self.bwd_pkts = n
            if n > 1:
                # backward length (n values)
                if pl < self.bl_min:
                    self.bl_min = pl
                elif pl > self.bl_max:
                    self.bl_max = pl
                mean = self.bl_mean
                d = pl - mean
                mean += d / n
                self.bl_mean = mean
                self.bl_m2 += d * (pl - mean)
                # backward IAT (n - 1 values)
                x = ts - self.bwd_last
                self.bi_sum += x
                n -= 1
                if n == 1:
                    self.bi_min = self.bi_max = x
                    self.bi_mean = float(x)
                else:
                    if x < self.bi_min:
                        self.bi_min = x
                    elif x > self.bi_max:
                        self.bi_max = x
                    mean = self.bi_mean
                    d = x - mean
                    mean += d / n
                    self.bi_mean = mean
                    self.bi_m2 += d * (x - mean)
            else:
                self.bl_min = self.bl_max = pl
                self.bl_mean = float(pl)
            self.bwd_last = ts
            if flags & FIN:
                self.fin_bwd = True
        # flow IAT (packets - 1 values)
        n = self.fwd_pkts + self.bwd_pkts - 1
        if n == 1:
            self.it_min = self.it_max = gap
            self.it_mean = float(gap)
        else:
            if gap < self.it_min:
                self.it_min = gap
            elif gap > self.it_max:
                self.it_max = gap
            mean = self.it_mean
            d = gap - mean
            mean += d / n
            self.it_mean = mean
            self.it_m2 += d * (gap - mean)
        self.last_us = ts

    def _bulk(self, ts: int, pl: int, fwd: bool) -> None:
        """CICFlowMeter's intended bulk logic: >= 4 one-way payload packets, gaps <= 1 s.

        Called for payload packets only; a payload packet in the other direction
        since the current run started breaks the run.
        """
        if fwd:
            me, other = self.f_bulk, self.b_bulk
        else:
            me, other = self.b_bulk, self.f_bulk
        if me is None:
            me = [-1, -1, 0, 0, 0, 0, 0, 0]
            if fwd:
                self.f_bulk = me
            else:
                self.b_bulk = me
        # a payload packet in the other direction after our bulk start breaks it
        if other is not None and other[1] > me[0]:
            me[0] = -1
        if me[0] < 0 or ts - me[1] > SUBFLOW_GAP_US:
            me[0] = ts
            me[1] = ts
            me[2] = 1
            me[3] = pl
            return
        me[2] += 1
        me[3] += pl
        if me[2] == BULK_MIN_PACKETS:
            me[4] += 1
            me[5] += me[2]
            me[6] += me[3]
            me[7] += ts - me[0]
        elif me[2] > BULK_MIN_PACKETS:
            me[5] += 1
            me[6] += pl
            me[7] += ts - me[1]
        me[1] = ts

    # -- output ------------------------------------------------------------------

    @staticmethod
    def _bulk_values(b: list[int] | None) -> tuple[float, float, float]:
        if b is None or b[4] == 0:
            return 0, 0, 0
        rate = b[6] / (b[7] / 1e6) if b[7] > 0 else 0
        return b[6] / b[4], b[5] / b[4], rate

    def vector(self, dst_port: int) -> list[float]:
        """The 78 feature values in ``schema.CIC_IDS2017`` order.

        Counts, µs, bytes and ports are ``int``; means, std and rates are ``float``,
        except that values that are 0 by definition (empty statistics, a std of
        one value, zero-duration rates in ``corrected``, bulk in ``cicids2017``)
        are the ``int`` 0, which the CSV writes as ``0`` (as the CIC files do)
        and much faster than ``0.0``.
        """
        cic = self.cic
        dur = self.last_us - self.first_us
        fp, bp = self.fwd_pkts, self.bwd_pkts
        n = fp + bp
        fb, bb = self.fwd_bytes, self.bwd_bytes
        secs = dur / 1e6
        if dur > 0:
            flow_bps = (fb + bb) / secs
            flow_pps = n / secs
            fwd_pps = fp / secs
            bwd_pps = bp / secs
        else:
            fwd_pps = bwd_pps = 0
            if cic:
                flow_bps = _NAN if fb + bb == 0 else _INF
                flow_pps = _INF if n else _NAN
            else:
                flow_bps = flow_pps = 0
        fmean, fstd, fmax, fmin = _inline4(fp, self.fl_mean, self.fl_m2, self.fl_max, self.fl_min)
        bmean, bstd, bmax, bmin = _inline4(bp, self.bl_mean, self.bl_m2, self.bl_max, self.bl_min)
        imean, istd, imax, imin = _inline4(
            n - 1 if n else 0, self.it_mean, self.it_m2, self.it_max, self.it_min
        )
        fimean, fistd, fimax, fimin = _inline4(
            fp - 1 if fp else 0, self.fi_mean, self.fi_m2, self.fi_max, self.fi_min
        )
        bimean, bistd, bimax, bimin = _inline4(
            bp - 1 if bp else 0, self.bi_mean, self.bi_m2, self.bi_max, self.bi_min
        )
        an = self.al_n
        if an:
            # RunningStats.var/std(1): 0.0 (float) for one value
            avar = max(self.al_m2, 0.0) / (an - 1) if an > 1 else 0.0
            amin, amax, amean, astd = self.al_min, self.al_max, self.al_mean, math.sqrt(avar)
        else:
            amin = amax = 0
            amean = astd = avar = 0
        fc = self.flag_counts
        if fc is None:
            flags: tuple[int, ...] | list[int] = _NO_FLAGS
        else:
            flags = [fc[i] for i in (_CIC_FLAG_INDEX if cic else _HEADER_FLAG_INDEX)]
        if cic:
            down_up = bp // fp if fp else 0
            sub = (fp, fb, bp, bb)
            bulk = _NO_BULK
            amn, asd, amx, ami = _stats4(self.active)
        else:
            down_up = bp / fp if fp else 0
            k = self.sf_count
            sub = (fp / k, fb / k, bp / k, bb / k)
            if self.f_bulk is None and self.b_bulk is None:
                bulk = _NO_BULK
            else:
                bulk = self._bulk_values(self.f_bulk) + self._bulk_values(self.b_bulk)
            span = self.last_us - self.active_start  # the current active period
            if self.active is None:
                # what _stats4 gives for a RunningStats holding only ``span``
                amn, asd, amx, ami = float(span), 0, span, span
            else:
                active = self.active.copy()
                active.add(span)
                amn, asd, amx, ami = _stats4(active)
        imn, isd, imx, imi = _stats4(self.idle)
        return [
            dst_port,
            dur,
            fp,
            bp,
            fb,
            bb,
            fmax,
            fmin,
            fmean,
            fstd,
            bmax,
            bmin,
            bmean,
            bstd,
            flow_bps,
            flow_pps,
            imean,
            istd,
            imax,
            imin,
            self.fi_sum,
            fimean,
            fistd,
            fimax,
            fimin,
            self.bi_sum,
            bimean,
            bistd,
            bimax,
            bimin,
            self.fwd_psh,
            self.bwd_psh,
            self.fwd_urg,
            self.bwd_urg,
            self.fwd_hdr,
            self.bwd_hdr,
            fwd_pps,
            bwd_pps,
            amin,
            amax,
            amean,
            astd,
            avar,
            *flags,
            down_up,
            self.al_sum / n if n else 0,
            fmean,
            bmean,
            self.fwd_hdr,
            *bulk,
            *sub,
            self.init_win_fwd,
            self.init_win_bwd,
            self.act_data_fwd,
            self.min_seg_fwd,
            amn,
            asd,
            amx,
            ami,
            imn,
            isd,
            imx,
            imi,
        ]
