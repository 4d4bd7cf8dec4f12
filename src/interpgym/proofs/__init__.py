"""Compact proofs of model performance: theorem statements, proof strategies, cost accounting."""
