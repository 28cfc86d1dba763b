"""Keras → TFLite conversion (float, float16, dynamic range, int8), pruning, verification.

Importing this package loads nothing heavy; TensorFlow is imported by the modules
that need it (``tflite``, ``prune``) when ``edge-nids convert`` runs.
"""

from __future__ import annotations

__all__: list[str] = []
