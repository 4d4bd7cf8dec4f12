"""Knowledge editing: fact sets, causal tracing, ROME / MEMIT / AlphaEdit / fine-tuning, CounterFact metrics."""
