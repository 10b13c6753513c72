"""Mult-VAE (Liang et al. 2018, "Variational Autoencoders for Collaborative Filtering"): a user-based variational
autoencoder with a multinomial likelihood over the items.

    x̃_u = dropout(x_u / ‖x_u‖₂)                                  (x_u: the user's binary training row)
    [μ_u, log σ²_u] = W₂ tanh(W₁ x̃_u + b₁) + b₂                   (encoder [n_items → 600 → 2·200])
    z_u = μ_u + σ_u ⊙ ε,  ε ~ N(0, I) while training; z_u = μ_u at evaluation
    π(z_u) = softmax(W₄ tanh(W₃ z_u + b₃) + b₄)                    (decoder [200 → 600 → n_items])
    loss_u = −Σ_i x_ui log π_i(z_u) + β · KL(N(μ_u, σ²_u) ‖ N(0, I)),  β = min(β_cap, step / anneal_steps)

averaged over a batch of users, β growing linearly with the number of gradient steps taken (the paper's KL
annealing; the step counter is a buffer, so a resumed run continues the schedule exactly). The first layer is an
``embedding_bag`` over the user's observed items (O(observed)); the log-softmax is dense over all items for the
batch's users only. Scores (``score_users``) are the decoder logits at z = μ (no dropout, no sampling): the softmax is
monotone, so they rank like π. ``l2`` adds λ Σ‖W‖² over the weight matrices (the paper's official code; 0 by
default). Initialisation as the official code: Glorot-uniform weights, biases N(0, 0.001²) truncated at 2σ.

Defaults (the paper's): hidden [600], latent 200, tanh, input dropout 0.5, β_cap 0.2 over 200 000 annealing steps,
Adam lr 1e-3, batches of 500 users, no weight decay.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.common.base import GradientConfig, Recommender, StepLoss
from models.common.context import TrainContext
from models.common.registry import register_model
from models.common.sparse import SparseLinear, SparseRows
from tasks.common.errors import ConfigError


@dataclass(frozen=True)
class MultVAEConfig(GradientConfig):
    hidden: tuple[int, ...] = (600,)
    """Encoder hidden sizes (the decoder mirrors them), e.g. [600]."""
    latent: int = 200
    """Dimension of z (the encoder outputs μ and log σ² of this size)."""
    dropout: float = 0.5
    """Dropout probability on the L2-normalised input while training."""
    beta_cap: float = 0.2
    """Largest KL weight β."""
    anneal_steps: int = 200000
    """Gradient steps over which β grows linearly from 0 (0: β = beta_cap from the start)."""
    optimizer: str = "adam"
    """One of adam | rmsprop | sgd | adagrad."""
    lr: float = 1e-3
    """Learning rate."""
    l2: float = 0.0
    """λ of λ Σ‖W‖² over the weight matrices, added to every batch's loss."""
    batch_size: int = 500
    """Users per batch."""

    def check(self, model: str) -> None:
        super().check(model)
        if not self.hidden or any(not isinstance(h, int) or isinstance(h, bool) or h < 1 for h in self.hidden):
            raise ConfigError(f"models.{model}.hidden", "one or more positive integer layer sizes", list(self.hidden))
        for key, ok, what in (
            ("latent", self.latent >= 1, "an integer >= 1"),
            ("dropout", 0.0 <= self.dropout < 1.0, "a probability in [0, 1)"),
            ("beta_cap", self.beta_cap >= 0, "a number >= 0"),
            ("anneal_steps", self.anneal_steps >= 0, "an integer >= 0"),
        ):
            if not ok:
                raise ConfigError(f"models.{model}.{key}", what, getattr(self, key))


def _init(lin: nn.Module) -> None:
    nn.init.xavier_uniform_(lin.weight)
    nn.init.trunc_normal_(lin.bias, std=0.001, a=-0.002, b=0.002)


@register_model("multvae")
class MultVAE(Recommender):
    config_cls = MultVAEConfig
    task = "ranking"

    def __init__(self, cfg: MultVAEConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        dev = ctx.device
        self.rows = SparseRows(ctx.user_matrix, dev)  # binary: a ranking model's training interactions are all 1
        enc = [*cfg.hidden, 2 * cfg.latent]
        dec = [cfg.latent, *reversed(cfg.hidden), ctx.n_items]
        self.enc_in = SparseLinear(ctx.n_items, enc[0])
        self.enc = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(enc))
        self.dec = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dec))
        for lin in (self.enc_in, *self.enc, *self.dec):
            _init(lin)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self._active = np.flatnonzero(np.diff(ctx.user_matrix.indptr) > 0)
        self.to(dev)

    # --- the network ----------------------------------------------------------------------------------
    def normalized_input(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(columns, offsets, x_u / ‖x_u‖₂ values, position in ``users``) of the users' observed entries."""
        cols, offsets, vals, row_of = self.rows.gather_with_rows(users)
        sq = torch.zeros(len(users), device=vals.device).index_add_(0, row_of, vals * vals)
        return cols, offsets, vals / sq.clamp_min(1e-12).sqrt()[row_of], row_of

    def encode(self, cols: torch.Tensor, offsets: torch.Tensor, vals: torch.Tensor, training: bool
               ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """(μ, log σ²) from the normalised sparse input (dropout on its values while training)."""
        h = F.dropout(vals, self.cfg.dropout, training)
        h = self.enc_in(cols, offsets, h)
        for lin in self.enc:
            h = lin(torch.tanh(h))
        return h[:, : self.cfg.latent], h[:, self.cfg.latent :]

    def decode_hidden(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder up to (not including) its output layer."""
        for lin in self.dec[:-1]:
            z = torch.tanh(lin(z))
        return z

    def beta(self) -> torch.Tensor:
        """β of the next gradient step: min(β_cap, steps / anneal_steps)."""
        if self.cfg.anneal_steps == 0:
            return torch.tensor(self.cfg.beta_cap, device=self.steps.device)
        return torch.clamp(self.steps.double() / self.cfg.anneal_steps, max=self.cfg.beta_cap).float()

    # --- training -------------------------------------------------------------------------------------
    def train_batches(self, rng: np.random.Generator) -> Iterator[torch.Tensor]:
        order = rng.permutation(self._active)
        bs = self.cfg.batch_size
        for s in range(0, len(order), bs):
            yield torch.as_tensor(order[s : s + bs], dtype=torch.long, device=self.device)

    def batch_loss(self, users: torch.Tensor) -> StepLoss:
        cols, offsets, vals, row_of = self.normalized_input(users)
        mu, logvar = self.encode(cols, offsets, vals, self.training)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        logp = F.log_softmax(self.dec[-1](self.decode_hidden(z)), dim=-1)
        n = len(users)
        nll = -logp[row_of, cols].sum() / n  # the binary x_ui are 1 on the observed entries
        kl = 0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1.0).sum(-1).mean()
        beta = self.beta()
        objective = nll + beta * kl
        if self.cfg.l2 > 0:
            weights = [self.enc_in.weight, *(lin.weight for lin in (*self.enc, *self.dec))]
            objective = objective + self.cfg.l2 * sum(w.pow(2).sum() for w in weights)
        if self.training:
            self.steps += 1
        return StepLoss(objective, {"nll": nll.detach(), "kl": kl.detach(), "beta": beta}, weight=n)

    # --- scoring --------------------------------------------------------------------------------------
    def _hidden_of(self, users: torch.Tensor) -> torch.Tensor:
        cols, offsets, vals, _ = self.normalized_input(users)
        mu, _ = self.encode(cols, offsets, vals, training=False)
        return self.decode_hidden(mu)

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        uniq, inv = torch.unique(users, return_inverse=True)
        h = self._hidden_of(uniq)[inv]
        out = self.dec[-1]
        return (h * out.weight[items]).sum(-1) + out.bias[items]

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """Decoder logits of every item at z = μ (no dropout, no sampling)."""
        return self.dec[-1](self._hidden_of(users.to(self.device)))
