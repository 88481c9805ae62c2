"""Spaceport: a self-hosted platform for ML demo apps (the control plane)."""

__version__ = "0.1.0"
