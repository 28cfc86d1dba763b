"""Fixtures for the agent tests: the model bundle to run with."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def agent_bundle() -> Path:
    """The shipped default bundle; skips with the reason if it (or its loader) is missing."""
    try:
        from edge_nids.bundle import BundleError, default_bundle_path, load_bundle
    except ImportError as exc:
        pytest.skip(f"edge_nids.bundle is not available: {exc}")
    try:
        path = Path(default_bundle_path())
    except BundleError as exc:
        pytest.skip(f"no default model bundle yet: {exc}")
    load_bundle(path)  # a shipped bundle that does not load is a failure, not a skip
    return path
