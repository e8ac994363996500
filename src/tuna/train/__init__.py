"""Training: stage freezing plans, loop, parallelism and checkpoints."""
