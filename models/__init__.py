"""Torch recommender models, one per file, registered by name (see ``models.registry``)."""
