"""Chaos tests: real processes killed under load (see tests/chaos/report.py)."""
