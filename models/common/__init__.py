"""What every model shares: the interface (``base``), the training context, samplers, losses, sparse layers,
dense layers and the registry."""
