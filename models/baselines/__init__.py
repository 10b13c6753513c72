"""Non-neural baselines: popularity, EASE (closed form)."""
