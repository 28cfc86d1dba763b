"""Shared pytest fixtures: repository paths and the shared real-data folder.

Other parts add their fixtures here with small edits; keep each fixture short and
documented.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__: list[str] = []

#: The repository root (the folder holding pyproject.toml).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: The tiny scenario captures written by tests/data/make_scenarios.py.
TEST_DATA = REPO_ROOT / "tests" / "data"


def shared_data_dir() -> Path:
    """Where the shared real data lives: $EDGE_NIDS_DATA, else ../shared/datasets."""
    env = os.environ.get("EDGE_NIDS_DATA")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def test_data() -> Path:
    """tests/data: the committed scenario captures and their README."""
    return TEST_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder; skips the test with the reason when it is absent."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(
            f"shared data not found at {path} (set EDGE_NIDS_DATA to the datasets folder "
            "or place it at ../shared/datasets next to the repository)"
        )
    return path


@pytest.fixture(scope="session")
def gold_sqlinj_pcap(shared_data: Path) -> Path:
    """The CIC-IDS2017 SQL-injection slice (94 packets) with its official rows beside it."""
    path = shared_data / "pcaps" / "gold_cicids2017_sqlinj" / "WebattackSQLinj.pcap"
    if not path.is_file():
        pytest.skip(f"gold capture missing: {path}")
    return path


@pytest.fixture(scope="session")
def gold_slowloris_pcap(shared_data: Path) -> Path:
    """The CICFlowMeter-4.0 slowloris lab capture (3,754 packets) with its flow CSV beside it."""
    path = shared_data / "pcaps" / "gold_cicflowmeter4_slowloris" / "slowloris.pcap"
    if not path.is_file():
        pytest.skip(f"gold capture missing: {path}")
    return path
