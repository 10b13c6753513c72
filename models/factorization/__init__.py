"""Matrix-factorization models: BiasedMF (explicit ratings), BPR-MF (implicit, pairwise)."""
