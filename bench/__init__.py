"""Benchmarks that compare interventions on small problems in minutes on a CPU (`python -m bench.plasticity`)."""
