"""The max-of-K proof language: programs as JSON data, checked by a small trusted kernel.

`kernel.check_program(raw, weights)` is the entry point; `export.strategy_program` writes
registered strategies as programs. See `docs/proof_language.md`.
"""
