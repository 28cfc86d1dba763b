"""Training and evaluation on a workstation: datasets, cleaning, splits, models, fit, reports.

This package module is light on purpose; the heavy parts (pandas, TensorFlow,
matplotlib) are imported only by the submodules that need them.
"""

from __future__ import annotations

__all__: list[str] = []
