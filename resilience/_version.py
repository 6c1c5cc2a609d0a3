"""The package version, read by hatchling and ``python -m resilience``."""

__version__ = "0.1.0"
