"""Packets to bidirectional flows to feature vectors (numpy only)."""
