"""Agent statistics: latency percentiles against numpy, Prometheus text over real HTTP."""

from __future__ import annotations

import random
import urllib.request

import numpy as np

from edge_nids.agent.stats import AgentStats, PrometheusServer, percentile


def test_percentile_matches_numpy_nearest_rank() -> None:
    rng = random.Random(5)
    for n in (1, 2, 7, 100, 1001):
        xs = [rng.uniform(0, 1000) for _ in range(n)]
        for q in (50, 99):
            assert percentile(xs, q) == float(np.percentile(xs, q, method="inverted_cdf"))
    assert percentile([], 50) == 0.0


def test_latency_window_keeps_the_last_calls() -> None:
    st = AgentStats(window=10)
    for i in range(100):
        st.add_latency(float(i), 2)
    snap = st.snapshot()
    assert st.batches == 100
    assert snap["classify_batch_us_p50"] == 94.0  # of 90..99
    assert snap["classify_flow_us_p50"] == 47.0


def test_prometheus_endpoint_serves_counters() -> None:
    st = AgentStats()
    st.packets, st.alerts, st.malformed = 1234, 5, {"truncated_ip": 2}
    srv = PrometheusServer(lambda: st, "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/metrics", timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = r.read().decode()
    finally:
        srv.close()
    assert "edge_nids_packets_total 1234\n" in text
    assert "edge_nids_alerts_total 5\n" in text
    assert 'edge_nids_malformed_total{reason="truncated_ip"} 2\n' in text
