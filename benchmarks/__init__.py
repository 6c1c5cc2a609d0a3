"""Benchmarks: ``nox -s bench`` or ``python -m benchmarks [suite ...]``; never part of the tests."""
