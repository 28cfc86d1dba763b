"""The flow meter and the agent must never pull in TensorFlow, Keras, pandas or sklearn."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("tensorflow", "keras", "tf_keras", "pandas", "sklearn")


@pytest.mark.parametrize(
    "module",
    ["edge_nids.cli", "edge_nids.flows", "edge_nids.flows.schema", "edge_nids.flows.packet"],
)
def test_module_imports_nothing_heavy(module: str) -> None:
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imported {out.stdout.strip()}"


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\nfrom edge_nids.cli import build_parser\nbuild_parser().format_help()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
