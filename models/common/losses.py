"""Losses shared by the model files: each returns a scalar to minimise (mean over the batch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    err = (pred - target).pow(2)
    return (err * weight).sum() / weight.sum() if weight is not None else err.mean()


def bpr(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking (Rendle et al. 2009): −mean log σ(x̂_ui − x̂_uj)."""
    return -F.logsigmoid(pos_scores - neg_scores).mean()


def bce_with_logits(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, labels, weight=weight)


def l2(*tensors: torch.Tensor) -> torch.Tensor:
    """Σ ‖t‖² over the given tensors (callers scale it by their λ and batch share)."""
    return sum((t.pow(2).sum() for t in tensors), torch.zeros((), device=tensors[0].device))


def weight_norm(module: torch.nn.Module) -> torch.Tensor:
    """Σ ‖θ‖² over a module's parameters except biases (the λ‖θ‖² of NRP-style models)."""
    return sum(p.pow(2).sum() for n, p in module.named_parameters() if "bias" not in n)  # type: ignore[return-value]
