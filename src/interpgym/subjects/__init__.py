"""Models under study and their data: deterministic toy-model recipes (cached by config hash), pretrained LM loaders, corpora."""
