"""Autoencoder models trained on sparse rating vectors: AutoRec (I-/U-), Mult-VAE (implicit feedback)."""
