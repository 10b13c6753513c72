"""Experiments as files: the papers' tables (experiments/*.yaml) — spec, runner and table."""
