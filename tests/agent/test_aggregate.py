"""Alert aggregation: first alert at once, one summary per window, nothing lost."""

from __future__ import annotations

from typing import Any

from edge_nids.agent.aggregate import Aggregator
from edge_nids.agent.records import alert_aggregate, alert_count

S = 1_000_000


def _alert(src: str, dst: str = "192.0.2.1", sid: int = 9000001, n: int = 0) -> dict[str, Any]:
    return {"src_ip": src, "dest_ip": dst, "alert": {"signature_id": sid}, "n": n}


def test_flood_of_100k_alerts_gives_a_handful_of_lines_and_loses_none() -> None:
    out: list[dict[str, Any]] = []
    agg = Aggregator(out.append, window_s=60)
    # 100,000 alerts from one source to one target over 150 s of capture time
    for i in range(100_000):
        agg.add(_alert("198.51.100.7", n=i), i * 1500)
    agg.flush()
    assert len(out) == 4  # first alert, summaries for [0,60), [60,120), and the rest at flush
    assert alert_count(out[0]) == 1 and out[0]["n"] == 0 and alert_aggregate(out[0]) is None
    assert sum(alert_count(r) for r in out) == 100_000
    assert alert_aggregate(out[1])["window_s"] == 60.0
    assert out[-1]["n"] == 99_999  # summaries carry the latest alert's fields
    assert agg.received == 100_000 and agg.emitted_lines == 4


def test_groups_are_per_src_dest_signature() -> None:
    out: list[dict[str, Any]] = []
    agg = Aggregator(out.append, window_s=60)
    for src in ("198.51.100.1", "198.51.100.2"):
        for sid in (1, 2):
            agg.add(_alert(src, sid=sid), 0)
            agg.add(_alert(src, sid=sid), 1)
    assert [alert_count(r) for r in out] == [1, 1, 1, 1]
    agg.flush()
    assert len(out) == 8 and sum(alert_count(r) for r in out) == 8


def test_a_group_without_source_merges_every_source_against_its_destination() -> None:
    """The pipeline's key for a destination flooded from many sources: (None, dest, sid)."""
    out: list[dict[str, Any]] = []
    agg = Aggregator(out.append, window_s=60)
    for i in range(1000):  # 1,000 spoofed sources, one alert each, over 10 s
        src = f"10.{i // 256}.{i % 256}.1"
        agg.add(_alert(src, n=i), i * 10_000, (None, "192.0.2.1", 9000001))
    agg.add(_alert("198.51.100.9", sid=2), 5 * S, (None, "192.0.2.1", 2))  # another signature
    agg.add(_alert("198.51.100.9"), 6 * S, ("198.51.100.9", "192.0.2.1", 9000001))  # per source
    agg.flush()
    assert [(r["src_ip"], alert_count(r)) for r in out] == [
        ("10.0.0.1", 1),  # the group's first alert, at once
        ("198.51.100.9", 1),
        ("198.51.100.9", 1),
        ("10.3.231.1", 999),  # the summary carries the latest merged alert
    ]
    assert alert_aggregate(out[-1])["by"] == "destination"
    assert all("by" not in (alert_aggregate(r) or {}) for r in out[:3])


def test_a_group_without_destination_merges_a_sources_alerts_against_every_host() -> None:
    """The pipeline's key for the sweep rule's alerts: (src, None, sid)."""
    out: list[dict[str, Any]] = []
    agg = Aggregator(out.append, window_s=60)
    for i in range(1, 101):  # one source sweeping 192.0.2.1-100 in 10 s
        agg.add(_alert("198.51.100.7", f"192.0.2.{i}", n=i), i * 100_000, ("198.51.100.7", None, 9000001))
    agg.add(_alert("198.51.100.7", "192.0.2.5"), 5 * S, ("198.51.100.7", "192.0.2.5", 9000001))  # per pair
    agg.flush()
    assert [(r["dest_ip"], alert_count(r)) for r in out] == [
        ("192.0.2.1", 1),  # the group's first alert, at once
        ("192.0.2.5", 1),
        ("192.0.2.100", 99),  # the summary carries the latest merged alert
    ]
    assert alert_aggregate(out[-1])["by"] == "source"
    assert all("by" not in (alert_aggregate(r) or {}) for r in out[:2])


def test_quiet_group_is_forgotten_after_its_window() -> None:
    out: list[dict[str, Any]] = []
    agg = Aggregator(out.append, window_s=10)
    agg.add(_alert("198.51.100.1"), 0)
    agg.tick(11 * S)
    assert len(agg) == 0
    agg.add(_alert("198.51.100.1"), 12 * S)  # a new first alert, written at once
    assert [alert_count(r) for r in out] == [1, 1]


def test_window_zero_passes_everything_and_bound_flushes_oldest() -> None:
    out: list[dict[str, Any]] = []
    agg = Aggregator(out.append, window_s=0)
    for i in range(5):
        agg.add(_alert("198.51.100.1"), i)
    assert len(out) == 5
    out.clear()
    agg = Aggregator(out.append, window_s=60, max_groups=2)
    for src in ("a", "b", "c"):
        agg.add(_alert(src), 0)
        agg.add(_alert(src), 1)
    assert len(agg) == 2
    # group "a" was pushed out with its summary: still nothing lost
    assert sum(alert_count(r) for r in out) == 4
    agg.flush()
    assert sum(alert_count(r) for r in out) == 6


def test_lazy_alerts_are_built_only_when_written() -> None:
    """A flood's merged alerts are never built: one build per written line, same output."""
    built: list[int] = []

    def lazy(i: int) -> Any:
        def build() -> dict[str, Any]:
            built.append(i)
            return _alert("198.51.100.7", n=i)

        return build

    eager: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    a, b = Aggregator(eager.append, window_s=60), Aggregator(out.append, window_s=60)
    for i in range(10_000):
        a.add(_alert("198.51.100.7", n=i), i * 15_000)
        b.add(lazy(i), i * 15_000, ("198.51.100.7", "192.0.2.1", 9000001))
    a.flush()
    b.flush()
    assert out == eager and len(out) == 4
    assert built == [r["n"] for r in out]  # the first alert and each summary's latest one


def test_groups_keep_only_the_alerts_they_will_summarise() -> None:
    """A spoofed flood makes a group per alert: each first alert is written at once and none
    is kept (a group holds a record only once an alert is merged into it, for its summary),
    neither by live groups nor by groups evicted beyond max_groups (30,000 records were held
    by a 10,000-group flood before: 53 MiB)."""
    import gc
    import weakref

    class Rec(dict):  # a record that can be watched
        pass

    out: list[int] = []
    agg = Aggregator(lambda r: out.append(alert_count(r)), window_s=60, max_groups=100)
    alive: list[weakref.ref] = []
    for i in range(1_000):
        rec = Rec(_alert(f"10.0.{i // 250}.{i % 250}", n=i))
        alive.append(weakref.ref(rec))
        agg.add(rec, i)
    merged = Rec(_alert("10.0.3.249", n=-1))  # merged into the last group: kept for its summary
    agg.add(merged, 1_000)
    del rec, merged
    gc.collect()
    held = [r() for r in alive if r() is not None]
    assert [r["n"] for r in held] == []
    assert len(agg) == 100 and out == [1] * 1_000
    agg.flush()
    assert out == [1] * 1_000 + [1] and agg.emitted_lines == 1_001


def test_a_summary_spans_its_alerts_in_whatever_order_they_came() -> None:
    """Flows are judged when they end or time out, not in the order of their last packets: a
    DNS lookup that ended at 2 s may be judged after a probe that ended at 3 s. The summary's
    first and last are the earliest and latest of the merged alerts' times."""
    out: list[dict[str, Any]] = []
    agg = Aggregator(out.append, window_s=60)
    for i, t in enumerate((1 * S, 3 * S, 2 * S, 5 * S, 4 * S)):
        agg.add(_alert("198.51.100.7", n=i), t)
    agg.flush()
    assert [alert_count(r) for r in out] == [1, 4]
    span = alert_aggregate(out[1])
    assert (span["first"], span["last"]) == (
        "1970-01-01T00:00:02.000000+0000",
        "1970-01-01T00:00:05.000000+0000",
    )
    assert out[1]["n"] == 4  # still the latest merged alert's fields
