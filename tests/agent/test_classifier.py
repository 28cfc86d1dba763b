"""The shipped bundle's classifier: batches of any size, padded or not, score each flow alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .stage_helpers import demo_flows


def test_padded_calls_score_as_one_call_and_spare_resizes(agent_bundle: Path) -> None:
    """Calls of the sizes a timer-driven agent sends (a few flows, a few dozen, one) give each
    flow the score it gets in one big call, although most are padded into the resizable
    interpreter's current size instead of resizing it (about 70 µs each) at every call."""
    from edge_nids.agent.classifier import Classifier

    clf = Classifier(agent_bundle)
    assert clf.dynamic
    X = np.array([f.edge_features() for f, _ in demo_flows()[:1100]], dtype=np.float64)
    want = clf.scores(X)  # four full calls of 256 and the rest
    big = clf._runners[-1]
    resized: list[int] = []
    real_resize = big.resize

    def resize(n: int) -> None:
        resized.append(n)
        real_resize(n)

    big.resize = resize  # type: ignore[method-assign]
    sizes = [2, 3, 5, 4, 17, 9, 30, 31, 29, 2, 64, 60, 1, 7, 250, 256, 240]
    got, i = [], 0
    for n in sizes:
        got.append(clf.scores(X[i : i + n]))
        i += n
    assert i <= len(X)
    np.testing.assert_array_equal(np.concatenate(got), want[:i])
    # resizing to each call's size would resize 16 times; padding up to 16 rows spares 9
    assert resized == [8, 24, 32, 8, 64, 8, 256], resized
