"""Non-neural baselines: popularity."""
