"""ACCM (Shi et al. 2018, "Attention-based Adaptive Model to Unify Warm and Cold Starts Recommendation"), the
direct-structure baseline of the NRP paper (Raziperchikolaei et al. 2020, Table 2: ACCM and ACCM-MLP).

Per side (user j; item k the same way):

* CF part: an ID embedding cf_j ∈ R^d, d = the encoder's last size;
* content part: cb_j = g(x_j), NRP-direct's encoder (``Encoder``) over the side source (BoW by default);
* attention (one network shared by every vector, as in the authors' code): s(v) = wᵀ tanh(W v + b),
  a_j = exp s(cf_j) / (exp s(cf_j) + exp s(cb_j)) = σ(s(cf_j) − s(cb_j)) ∈ (0, 1), and
  z_j = a_j · cf_j + (1 − a_j) · cb_j. A side without side features is CF only: z_j = cf_j (a_j = 1).

Prediction (``prediction``): ``dot`` (ACCM) r̂_jk = z_j · z_k + b_j + b_k + μ (μ learned, initialised at the
training mean); ``mlp`` (ACCM-MLP, the NRP paper's variant; params variant ``accm-mlp``) r̂_jk = h([z_j, z_k]),
NRP-direct's prediction MLP with a linear output.

Loss: MSE on observed ratings; with ``aux_loss`` (the authors' code) plus the MSE of the CF-only prediction
(cf_j, cf_k in place of z) and of the content-only one (cb, where a side has content); + λ‖θ‖² over the weights
(not biases). ``cold_sampling`` (the authors' cold sampling): while training, each pair's user and item CF
vector (and bias) is zeroed with this probability, so the content part learns to stand alone for cold users and
items (the authors draw N(0, 0.01²) noise instead of zeros).

Defaults (NRP Table 6, ml100k: RMSprop lr 1e-3, λ 0, tanh; encoder [500, 200, 100] and prediction MLP
[500, 200, 100, 50, 1] as NRP-direct's; the authors' attention size 16, cold-sampling ratio 0.1). ID embeddings
N(0, ``init_std``²), biases 0; with a non-selu activation every dense layer (encoders, attention, prediction MLP)
starts from Keras' Dense defaults (Glorot-uniform, zero bias), which lets the tanh MLP train. Each batch
encodes every distinct user / item once; BoW first layers cost O(nonzeros). Full ranking: with ``dot`` one
matmul per user chunk over cached representations ([z_j, b_j + μ, 1] · [z_k, 1, b_k]); with ``mlp`` the first
prediction layer is split (``split_scores``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.common import losses
from models.common.base import GradientConfig, Recommender, StepLoss
from models.common.context import TrainContext
from models.common.layers import ACTIVATIONS, mlp
from models.common.registry import register_model
from models.common.samplers import PairBatch
from models.common.sparse import SparseLinear, SparseRows
from models.nrp.nrp_direct import Encoder, check_choices, check_sizes, side_encoder, split_scores
from tasks.common.errors import ConfigError


@dataclass(frozen=True)
class ACCMConfig(GradientConfig):
    encoder: tuple[int, ...] = (500, 200, 100)
    """Layer sizes of the content encoders; the last is d, the size of every ID embedding and of z."""
    activation: str = "tanh"
    """Activation of the content encoders and of the prediction MLP."""
    side: str = "bow"
    """bow | svd | none: the side source of the content part (none: CF only, a biased MF)."""
    prediction: str = "dot"
    """dot (ACCM: z_j · z_k + biases) | mlp (ACCM-MLP: prediction MLP over [z_j, z_k])."""
    predictor: tuple[int, ...] = (500, 200, 100, 50)
    """Hidden sizes of the mlp prediction (a linear output follows)."""
    attention: int = 16
    """Hidden size of the attention network."""
    aux_loss: bool = True
    """Add the MSE of the CF-only and of the content-only predictions to the loss (the authors' code)."""
    cold_sampling: float = 0.1
    """Probability of zeroing a pair's user / item CF vector (and bias) while training."""
    init_std: float = 0.01
    """Standard deviation of the normal initialisation of the ID embeddings."""
    optimizer: str = "rmsprop"
    lr: float = 1e-3
    l2: float = 0.0
    batch_size: int = 512

    def check(self, model: str) -> None:
        super().check(model)
        p = f"models.{model}"
        check_choices(p, self, (
            ("side", ("bow", "svd", "none")),
            ("prediction", ("dot", "mlp")),
            ("activation", tuple(ACTIVATIONS)),
        ))
        if not self.encoder:
            raise ConfigError(f"{p}.encoder", "at least one layer size", [])
        if self.prediction == "mlp" and not self.predictor:
            raise ConfigError(f"{p}.predictor", "at least one hidden size for an mlp prediction", [])
        check_sizes(p, self, "encoder", "predictor")
        if self.attention < 1:
            raise ConfigError(f"{p}.attention", "an integer >= 1", self.attention)
        if not 0.0 <= self.cold_sampling < 1.0:
            raise ConfigError(f"{p}.cold_sampling", "a probability in [0, 1)", self.cold_sampling)
        if self.init_std <= 0:
            raise ConfigError(f"{p}.init_std", "a number > 0", self.init_std)


@register_model("accm")
class ACCM(Recommender):
    config_cls = ACCMConfig
    task = "rating"

    def __init__(self, cfg: ACCMConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        p = f"models.{self.name}"
        d = cfg.encoder[-1]
        self.user_cf = nn.Embedding(ctx.n_users, d)
        self.item_cf = nn.Embedding(ctx.n_items, d)
        for emb in (self.user_cf, self.item_cf):
            nn.init.normal_(emb.weight, 0.0, cfg.init_std)
        self.user_source: SparseRows | torch.Tensor | None = None
        self.item_source: SparseRows | torch.Tensor | None = None
        self.user_content: Encoder | None = None
        self.item_content: Encoder | None = None
        if cfg.side != "none":
            found = side_encoder(ctx.user_side, cfg.side, ctx.n_users, cfg.encoder, cfg.activation, p, ctx.device)
            if found is not None:
                self.user_source, self.user_content = found
            found = side_encoder(ctx.item_side, cfg.side, ctx.n_items, cfg.encoder, cfg.activation, p, ctx.device)
            if found is not None:
                self.item_source, self.item_content = found
        self.att_hidden = nn.Linear(d, cfg.attention)
        self.att_out = nn.Linear(cfg.attention, 1, bias=False)  # a bias would cancel in the softmax
        self.predictor: nn.Module | None = None
        self.out: nn.Linear | None = None
        self.user_bias: nn.Embedding | None = None
        self.item_bias: nn.Embedding | None = None
        self.global_bias: nn.Parameter | None = None
        if cfg.prediction == "mlp":
            self.predictor = mlp([2 * d, *cfg.predictor], cfg.activation, f"{p}.activation")
            self.out = nn.Linear(cfg.predictor[-1], 1)
            nn.init.normal_(self.out.weight, 0.0, 1.0 / cfg.predictor[-1] ** 0.5)
            nn.init.constant_(self.out.bias, float(ctx.global_mean))
        else:
            self.user_bias = nn.Embedding(ctx.n_users, 1)
            self.item_bias = nn.Embedding(ctx.n_items, 1)
            nn.init.zeros_(self.user_bias.weight)
            nn.init.zeros_(self.item_bias.weight)
            self.global_bias = nn.Parameter(torch.tensor(float(ctx.global_mean)))
        if cfg.activation != "selu":  # selu layers keep LeCun-normal init
            for part in (self.user_content, self.item_content, self.att_hidden, self.att_out, self.predictor):
                if part is not None:
                    _glorot_(part)

    # --- parts ----------------------------------------------------------------------------------------
    def gate(self, cf: torch.Tensor, cb: torch.Tensor) -> torch.Tensor:
        """a = exp s(cf) / (exp s(cf) + exp s(cb)) ∈ (0, 1), one per row (shape rows × 1)."""
        s_cf = self.att_out(torch.tanh(self.att_hidden(cf)))
        s_cb = self.att_out(torch.tanh(self.att_hidden(cb)))
        return torch.sigmoid(s_cf - s_cb)

    def side_vectors(
        self, which: str, ids: torch.Tensor, drop: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z, a, cf, cb) of ``ids`` on side ``which`` (user | item); ``drop`` (0/1 per row) zeroes cf.
        A side without content has cb = cf and a = 1."""
        emb, enc, src = (
            (self.user_cf, self.user_content, self.user_source)
            if which == "user"
            else (self.item_cf, self.item_content, self.item_source)
        )
        cf = emb(ids)
        if drop is not None:
            cf = cf * (1.0 - drop)[:, None]
        if enc is None or src is None:
            return cf, torch.ones(len(ids), 1, device=cf.device), cf, cf
        uniq, inv = torch.unique(ids, return_inverse=True)
        cb = enc(src, uniq).index_select(0, inv)
        a = self.gate(cf, cb)
        return a * cf + (1.0 - a) * cb, a, cf, cb

    def _bias(self, users: torch.Tensor, items: torch.Tensor, drop_u: torch.Tensor | None,
              drop_i: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        assert self.user_bias is not None and self.item_bias is not None and self.global_bias is not None
        b_u = self.user_bias(users).squeeze(-1)
        b_i = self.item_bias(items).squeeze(-1)
        if drop_u is not None and drop_i is not None:
            b_u, b_i = b_u * (1.0 - drop_u), b_i * (1.0 - drop_i)
        return b_u + b_i + self.global_bias

    def _head(self, p: torch.Tensor, q: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.cfg.prediction == "dot":
            assert bias is not None
            return (p * q).sum(-1) + bias
        assert self.predictor is not None and self.out is not None
        return self.out(self.predictor(torch.cat([p, q], -1))).squeeze(-1)

    def _predict(self, users: torch.Tensor, items: torch.Tensor, aux: bool) -> list[torch.Tensor]:
        """[prediction] or, with ``aux``, [prediction, CF-only, content-only (where any side has content)];
        cold sampling while training."""
        q = self.cfg.cold_sampling if self.training else 0.0
        drop_u = drop_i = None
        if q > 0:
            drop_u = (torch.rand(len(users), device=users.device) < q).float()
            drop_i = (torch.rand(len(items), device=items.device) < q).float()
        z_u, _, cf_u, cb_u = self.side_vectors("user", users, drop_u)
        z_i, _, cf_i, cb_i = self.side_vectors("item", items, drop_i)
        bias = self._bias(users, items, drop_u, drop_i) if self.cfg.prediction == "dot" else None
        preds = [self._head(z_u, z_i, bias)]
        if aux:
            preds.append(self._head(cf_u, cf_i, bias))
            if self.user_content is not None or self.item_content is not None:
                preds.append(self._head(cb_u, cb_i, bias))
        return preds

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self._predict(users, items, aux=False)[0]

    # --- training / scoring ---------------------------------------------------------------------------
    def batch_loss(self, batch: PairBatch) -> StepLoss:
        preds = self._predict(batch.users, batch.items, aux=self.cfg.aux_loss)
        mses = [(pr - batch.ratings).pow(2).mean() for pr in preds]
        loss = sum(mses[1:], mses[0])
        logs: dict[str, torch.Tensor | float] = {"mse": mses[0].detach()}
        for name, value in zip(("mse_cf", "mse_content"), mses[1:], strict=False):
            logs[name] = value.detach()
        if self.cfg.l2 > 0:
            reg = losses.weight_norm(self)
            loss = loss + self.cfg.l2 * reg
            logs["reg"] = float(reg.detach())
        return StepLoss(loss, logs, weight=len(batch.ratings))

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self(users, items)

    def _all(self, which: str) -> torch.Tensor:
        n = self.n_users if which == "user" else self.n_items
        return self.side_vectors(which, torch.arange(n, device=self.device))[0]

    @torch.no_grad()
    def representations(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """dot: [z_j, b_j + μ, 1] and [z_k, 1, b_k], whose dot product is the prediction; mlp: None."""
        if self.cfg.prediction != "dot":
            return None
        assert self.user_bias is not None and self.item_bias is not None and self.global_bias is not None
        self.eval()
        z_u, z_i = self._all("user"), self._all("item")
        one_u, one_i = torch.ones(len(z_u), 1, device=z_u.device), torch.ones(len(z_i), 1, device=z_i.device)
        return (
            torch.cat([z_u, self.user_bias.weight + self.global_bias, one_u], -1),
            torch.cat([z_i, one_i, self.item_bias.weight], -1),
        )

    @torch.no_grad()
    def score_users(self, users: torch.Tensor, block: int = 8192) -> torch.Tensor:
        if self.cfg.prediction == "dot":
            return super().score_users(users)
        assert isinstance(self.predictor, nn.Sequential) and self.out is not None
        self.eval()
        first = self.predictor[0]
        assert isinstance(first, nn.Linear)
        d = self.cfg.encoder[-1]
        a = self.side_vectors("user", users.to(self.device))[0] @ first.weight[:, :d].T
        b = self.cached("item_part", lambda: self._all("item") @ first.weight[:, d:].T + first.bias)
        rest, out = self.predictor[1:], self.out
        return split_scores(a, b, lambda r, sl, h: out(rest(h)).squeeze(-1), block)


def _glorot_(module: nn.Module) -> None:
    """Keras' Dense defaults (the NRP paper used Keras): Glorot-uniform weights, zero biases; the output layer of
    an mlp prediction is not in ``module`` and keeps its own initialisation."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, SparseLinear)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
