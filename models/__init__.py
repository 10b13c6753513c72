"""Torch recommender models by family (``factorization/``, ``autoencoders/``, ``nrp/``, ``baselines/``), one
model per file, registered by name; the pieces they share (interface, config, samplers, losses, sparse layers,
registry) live in ``models/common/``."""
