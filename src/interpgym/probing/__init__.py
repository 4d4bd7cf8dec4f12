"""Concept datasets, detection and steering methods, and their metrics (not built yet)."""
