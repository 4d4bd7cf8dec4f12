"""Sparse autoencoders: architectures, trainer, evaluation metrics, SAELens-format export."""
