"""Sampling as pure functions: text decoding with a KV cache; flow-matching ODE solvers."""
