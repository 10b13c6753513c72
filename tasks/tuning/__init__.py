"""Validation-only hyperparameter search (Optuna TPE): search spaces, trials, the study's artifacts."""
