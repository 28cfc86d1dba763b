"""edge-nids: a lightweight CNN-LSTM network anomaly detector for edge devices."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
