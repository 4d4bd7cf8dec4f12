"""Fact sets, causal tracing, ROME / MEMIT and editing metrics (not built yet)."""
