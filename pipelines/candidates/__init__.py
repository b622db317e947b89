"""Candidate generation: sources (one module each in `sources/`), their registry, recency
weights, and the fusion of their per-user lists into one ranked list per user.

A source is a function of its input tables and its own config section; `registry.py` is the
one place that says what a source reads and how it is configured. `build.py` composes them
(the candidates stage only reads and writes tables): in one pass over users when every source
has a kernel form (`one_pass.py`), else by a shuffle of every source's rows (`fusion.py`).
"""
