"""Matrix-factorization models: BiasedMF / MF and ALS-WR (explicit ratings), BPR-MF (pairwise), WMF and eALS (ALS on
implicit feedback)."""
