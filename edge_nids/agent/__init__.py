"""What runs on the device: capture, the LiteRT classifier, alert sinks, the service loop.

Kept empty on purpose: importing ``edge_nids.agent`` loads nothing (never TensorFlow).
"""
