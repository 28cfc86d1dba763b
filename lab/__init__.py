"""The edge-nids traffic lab: real tools in network namespaces, recorded with tcpdump.

Run ``python -m lab.run_lab --help`` from the repository root (as root). The
pure-Python parts (labels, scenario definitions, pcap checks) import nothing
outside the standard library so the tests can use them anywhere.
"""
