"""Matrix-factorization models: BiasedMF / MF (explicit ratings), BPR-MF (pairwise), WMF (ALS)."""
