"""Agents propose solutions for trials; each reads the task and its own trial history."""
