"""Latency and throughput benchmarks: ``python -m benchmarks.latency`` (results in ``benchmarks/results/``)."""
