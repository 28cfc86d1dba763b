"""The flow meter and the agent must never pull in TensorFlow, Keras, pandas or sklearn."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("tensorflow", "keras", "tf_keras", "pandas", "sklearn")

#: Agent modules (the classifier too: it must use LiteRT, never TensorFlow); scapy.all is
#: checked for them as well (2.5 s and 74 MB to import).
AGENT_MODULES = ("commands", "config", "service", "pipeline", "capture", "sinks", "eve", "classifier")
AGENT_HEAVY = (*HEAVY, "scapy.all")


@pytest.mark.parametrize(
    "module",
    ["edge_nids.cli", "edge_nids.flows", "edge_nids.flows.schema", "edge_nids.flows.packet"]
    + [f"edge_nids.agent.{m}" for m in AGENT_MODULES],
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


def test_agent_run_imports_nothing_heavy() -> None:
    """`edge-nids run --help` and the agent's whole run path (service + classifier) stay light."""
    code = (
        "import sys, contextlib, io\nfrom edge_nids.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['run', '--help'])\n    except SystemExit:\n        pass\n"
        "import edge_nids.agent.service, edge_nids.agent.pipeline, edge_nids.agent.classifier\n"
        "import edge_nids.flows.table, edge_nids.bundle\n"
        f"print(','.join(m for m in {AGENT_HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"the agent imported {out.stdout.strip()}"
