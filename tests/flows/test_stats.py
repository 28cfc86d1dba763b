"""RunningStats against numpy on every prefix of random and real sequences."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest

from edge_nids.flows.pcap import open_capture
from edge_nids.flows.stats import RunningStats


def _check_prefixes(values: list[float]) -> None:
    s = RunningStats()
    for i, x in enumerate(values, 1):
        s.add(x)
        a = np.asarray(values[:i], dtype=np.float64)
        assert s.n == i
        assert s.total == pytest.approx(a.sum(), rel=1e-12, abs=1e-9)
        assert s.min == a.min()
        assert s.max == a.max()
        assert s.mean == pytest.approx(a.mean(), rel=1e-12, abs=1e-9)
        assert s.var(0) == pytest.approx(a.var(ddof=0), rel=1e-9, abs=1e-6)
        assert s.std(0) == pytest.approx(a.std(ddof=0), rel=1e-9, abs=1e-6)
        if i > 1:
            assert s.var(1) == pytest.approx(a.var(ddof=1), rel=1e-9, abs=1e-6)
            assert s.std(1) == pytest.approx(a.std(ddof=1), rel=1e-9, abs=1e-6)
        else:
            assert s.var(1) == 0.0 and s.std(1) == 0.0  # undefined sample std reads 0


@pytest.mark.parametrize("seed", [0, 1])
def test_random_sequences_match_numpy(seed: int) -> None:
    rng = random.Random(seed)
    ints = [rng.randrange(0, 1500) for _ in range(150)]
    _check_prefixes(ints)
    floats = [rng.gauss(1e6, 3e5) for _ in range(150)]
    _check_prefixes(floats)


def test_large_offset_is_stable() -> None:
    # 1000 s in µs with a small spread: a naive float sum of squares loses most digits here
    base = 1_000_000_000_000
    values = [base + d for d in (3, 7, 1, 9, 4, 4, 8)]
    s = RunningStats()
    for v in values:
        s.add(v)
    # within the resolution of a float64 mean near 1e12 (~1e-4)
    assert s.std(1) == pytest.approx(np.std(np.array([3, 7, 1, 9, 4, 4, 8], float), ddof=1), rel=1e-4)


def test_empty_statistic() -> None:
    s = RunningStats()
    assert (s.n, s.total, s.mean, s.var(), s.std(), s.var(0)) == (0, 0, 0.0, 0.0, 0.0, 0.0)


def test_copy_is_independent() -> None:
    s = RunningStats()
    for v in (1, 2, 3):
        s.add(v)
    c = s.copy()
    c.add(100)
    assert s.n == 3 and s.max == 3 and c.n == 4 and c.max == 100


def test_real_gaps_and_sizes_from_gold_capture(gold_sqlinj_pcap: Path) -> None:
    """Inter-arrival gaps (µs) and frame sizes of the real CIC-IDS2017 slice."""
    with open_capture(gold_sqlinj_pcap) as cap:
        records = list(cap)
    times = [r[0] for r in records]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    sizes = [r[3] for r in records]
    assert len(gaps) == 93
    _check_prefixes(gaps)
    _check_prefixes(sizes)
