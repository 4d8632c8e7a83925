"""Latency and throughput benchmarks: ``python -m reenact.benchmarks.latency`` (results in ``benchmarks/results/``)."""
