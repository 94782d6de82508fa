"""Benchmarks that measure labchat against Redis pub/sub on the same machine, in the same run.

Run ``python -m benchmarks.fanout`` from the repository root; ``--smoke`` is the quick check CI runs.
"""
