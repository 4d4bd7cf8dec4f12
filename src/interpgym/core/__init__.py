"""Shared plumbing: config hashing, the subject cache, seeding, devices, errors, FLOP counting."""
