"""interpgym: objective, cheap, trustworthy scores for interpretability techniques."""

__version__ = "0.1.0"
