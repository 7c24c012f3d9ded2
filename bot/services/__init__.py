"""Use cases: each opens and commits its own unit of work and returns plain values."""
