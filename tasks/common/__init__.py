"""Plumbing every stage shares: typed params (``config``), errors, atomic io, paths, device and threads,
the name registry, the dataset manifest, and the safe YAML reader."""
