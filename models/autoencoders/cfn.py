"""CFN and CFN++ (Strub, Mary & Gaudel, "Hybrid Recommender System based on Autoencoders", 2016/17).

I-CFN (``cfn-i``) reconstructs each item's rating vector over users, U-CFN (``cfn-u``) each user's vector over
items; CFN++ are the same classes with ``side: [<source>, ...]`` (params variants ``cfn-i-side`` / ``cfn-u-side``).

* Preprocessing (§4.1 "Preprocessing"): x_j = (r_j − b) / s with b the training mean of the vector (the item's for
  I-CFN, the user's for U-CFN) and s = (r_max − r_min) / 2, so ratings land in [−1, 1] around the mean as in the
  authors' code ((r − 3)/2 − mean on 1–5 stars). Prediction inverts it: r̂ = b + s · nn(x)_j. A vector without a
  training rating predicts the global training mean.
* Network (§2.2 and Eq. 4, Fig. 2): nn(x) = tanh(V' {tanh(W' {x, y} + b1), y} + b2), tanh at every layer; with
  several ``hidden`` sizes each hidden layer's input is {previous layer, y} too. y is the side vector (CFN++: the
  sources named in ``side`` concatenated; empty for plain CFN). Init U[−1/√n, 1/√n], n = fan-in (Torch7's
  ``nn.Linear``), biases included. The first layer is an ``embedding_bag`` over the observed entries
  (``SparseLinear``) plus a dense product for y; training computes only the observed outputs (the decoder rows of
  the vector's known entries), prediction one output per requested pair, full ranking one matmul per block.
* Masking noise (§3.1): each known input is hidden (set to 0) with probability ``masking``, a fresh draw per vector
  per step from the loop's generator; a vector whose every entry was drawn keeps them all (the authors' code swaps
  the masks then). Unknown inputs are 0 anyway.
* ``known_offset`` (not in the paper; 0 = the paper): c added to every known input after centring, in training (the
  kept entries) and at prediction. Centred, a rating at the vector's mean enters as 0, exactly like an unknown
  entry, so the plain input cannot say which users rated an item; with c the first layer sees W'(x + c·m), m the
  known mask (the implicit signal NCAE's uncentred input keeps). Targets and the inverse mapping are unchanged.
  On ml-100k it takes I-CFN's validation RMSE from ~0.90 to ~0.885 (params.yaml).
* Loss (Eq. 1): α Σ_{j∈K(x)∩C(x̃)} (nn(x̃)_j − x_j)² + β Σ_{j∈K(x)\\C(x̃)} (nn(x̃)_j − x_j)² per vector, averaged
  over the minibatch's vectors (the authors' trainer divides the summed gradient by the minibatch size); no error
  on unknown outputs. λ‖W‖² is Torch7's weight decay ``l2`` added to the gradient of every parameter at every step
  (``models/common/torch7_sgd.py``), i.e. λ = l2 / 2 per step; with another optimizer (adam ...) the same
  (l2/2)‖θ‖² is added to each step's objective.
* Optimiser (§4.1 "Training Settings"): ``sgd-torch7``: lr_t = lr / (1 + t · lr_decay_t7), t the 1-based epoch
  (the authors' code resets optim.sgd's counter to the epoch number before each step; ``decay_per: step`` gives
  plain per-step Torch7 decay). The paper prints lr 0.7 / decay 0.3 / weight decay 0.5 from its genetic search; the
  published configs (Autoencoders_cf ``conf.movieLens.10M.V.lua``: lr 0.069, decay 0.296, weightDecay 0.053,
  minibatch 35) suggest lr and weight decay are a factor 10 smaller at this loss normalisation: the defaults
  here are those.
* ``sparse_updates`` (``models/common/sparse_optim.py``; default false = all of the above, bit for bit): the first
  layer's W' rows and the decoder's V' rows get row-sparse gradients over the minibatch's known entries; Torch7
  SGD steps those rows only, decaying each touched row r by (1 − lr_t·l2)^{m_r} (m_r = steps per epoch / expected
  minibatches touching r: the decay of the steps it was not touched, in expectation); with adam & co. the (l2/2)‖θ‖²
  of W', V' is Σ_{touched r} m_r ‖θ_r‖² (lazy Adam moments).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from models.common.base import OPTIMIZERS, GradientConfig, Recommender, StepLoss
from models.common.context import TrainContext
from models.common.registry import register_model
from models.common.sparse import RowBlock, SparseLinear, SparseRows, weighted_sq_norm
from models.common.sparse_optim import SparseGradientConfig, row_steps_of, sparse_optimizer
from models.common.torch7_sgd import Torch7SGD
from tasks.common.errors import ConfigError

TORCH7 = "sgd-torch7"
DECAY_UNITS = ("epoch", "step")


@dataclass(frozen=True)
class CFNConfig(SparseGradientConfig):
    hidden: tuple[int, ...] = (600,)
    """Hidden layer sizes (tanh); the paper's "2-layer CFN" is one hidden layer of 600."""
    masking: float = 0.25
    """Masking ratio: probability that a known input is hidden (set to 0) in a training step."""
    alpha: float = 1.0
    """α of Eq. 1: weight of the squared error on masked (hidden) known entries."""
    beta: float = 0.5
    """β of Eq. 1: weight of the squared error on the unmasked known entries."""
    side: tuple[str, ...] = ()
    """CFN++ side sources, concatenated: keys of the context's item_side (I-CFN) or user_side (U-CFN)."""
    optimizer: str = TORCH7
    """sgd-torch7 (Torch7 optim.sgd: lr decay and weight decay) or one of adam | rmsprop | sgd | adagrad."""
    lr: float = 0.07
    """Base learning rate."""
    lr_decay_t7: float = 0.3
    """Torch7 learningRateDecay: lr_t = lr / (1 + t · lr_decay_t7) (sgd-torch7 only)."""
    decay_per: str = "epoch"
    """What t counts in the Torch7 decay: epoch (the CFN code: t = 1-based epoch) or step (steps so far)."""
    l2: float = 0.05
    """Torch7 weightDecay: l2 · θ added to every parameter's gradient each step (λ = l2/2 in Eq. 1)."""
    batch_size: int = 35
    """Vectors per minibatch."""
    mean_shrinkage: float = 0.0
    """Not in the paper (0 = the paper's plain mean): the centring mean b = (Σ r + k·μ) / (n + k), shrunk towards
    the global mean μ by k pseudo-ratings, for vectors with few ratings."""
    known_offset: float = 0.0
    """Not in the paper (0 = the paper): added to every known input entry after centring, so the input also says
    which users rated the vector (centred, a rating at the vector's mean enters as 0, like an unknown one); the
    targets stay the centred ratings."""
    decay_biases: bool = False
    """Apply the weight decay to the biases too (Torch7 decays the whole flattened parameter vector; Eq. 1's λ‖W‖²
    names the weights)."""

    def check(self, model: str) -> None:
        choices = sorted([*OPTIMIZERS, TORCH7])
        if self.optimizer not in choices:
            raise ConfigError(f"models.{model}.optimizer", f"one of {choices}", self.optimizer)
        base = dataclasses.replace(self, optimizer="sgd") if self.optimizer == TORCH7 else self
        GradientConfig.check(base, model)
        self.check_sparse_updates(model)
        if not self.hidden or any(not isinstance(h, int) or isinstance(h, bool) or h < 1 for h in self.hidden):
            raise ConfigError(f"models.{model}.hidden", "one or more positive hidden sizes", list(self.hidden))
        if self.decay_per not in DECAY_UNITS:
            raise ConfigError(f"models.{model}.decay_per", f"one of {list(DECAY_UNITS)}", self.decay_per)
        for key, ok, what in (
            ("masking", 0.0 <= self.masking < 1.0, "a ratio in [0, 1)"),
            ("alpha", self.alpha >= 0, "a number >= 0"),
            ("beta", self.beta >= 0, "a number >= 0"),
            ("lr_decay_t7", self.lr_decay_t7 >= 0, "a number >= 0"),
            ("mean_shrinkage", self.mean_shrinkage >= 0, "a number >= 0"),
        ):
            if not ok:
                raise ConfigError(f"models.{model}.{key}", what, getattr(self, key))
        if any(not isinstance(s, str) for s in self.side) or len(set(self.side)) != len(self.side):
            raise ConfigError(f"models.{model}.side", "a list of distinct side source names", list(self.side))


def _uniform_(t: torch.Tensor, fan_in: int) -> torch.Tensor:
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    return nn.init.uniform_(t, -bound, bound)


def side_matrix(sources: dict[str, sp.csr_matrix | np.ndarray], names: tuple[str, ...], n: int, param: str,
                what: str) -> sp.csr_matrix:  # fmt: skip
    """The named side sources side by side (CSR, n rows); a name the dataset lacks → ``ConfigError``."""
    for name in names:
        if name not in sources:
            raise ConfigError(param, f"side sources this dataset has for {what}: {sorted(sources)}", name)
    blocks = [sp.csr_matrix(np.asarray(sources[s], dtype=np.float32) if not sp.issparse(sources[s]) else sources[s],
                            dtype=np.float32) for s in names]  # fmt: skip
    for name, b in zip(names, blocks, strict=True):
        if b.shape[0] != n:
            raise ConfigError(param, f"a side source with one row per {what[:-1]} ({n})", f"{name}: {b.shape[0]} rows")
    m = sp.csr_matrix(sp.hstack(blocks, format="csr")) if blocks else sp.csr_matrix((n, 0), dtype=np.float32)
    m.sort_indices()
    return m


def masking_draw(lengths: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Which known entries are hidden (bool, entries in row order): each with probability ``ratio``; a row whose
    every entry was drawn keeps them all (the authors' code swaps the masks then)."""
    total = int(lengths.sum())
    if ratio <= 0 or total == 0:
        return np.zeros(total, dtype=bool)
    hidden = rng.random(total) < ratio
    row_of = np.repeat(np.arange(len(lengths)), lengths)
    all_hidden = np.bincount(row_of, weights=hidden, minlength=len(lengths)) == lengths
    hidden[all_hidden[row_of]] = False
    return hidden


class CFN(Recommender):
    config_cls = CFNConfig
    task = "rating"
    item_based: bool = True

    def __init__(self, cfg: CFNConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: CFNConfig = cfg
        dev = ctx.device
        vectors = ctx.item_matrix if self.item_based else ctx.user_matrix
        n_vec, dim = vectors.shape
        self.n_vectors, self.dim = n_vec, dim
        lo, hi = ctx.rating_scale
        self.scale = (hi - lo) / 2.0 if hi > lo else 1.0
        counts = np.diff(vectors.indptr)
        row_of = np.repeat(np.arange(n_vec), counts)
        sums = np.bincount(row_of, weights=vectors.data.astype(np.float64), minlength=n_vec)
        k = cfg.mean_shrinkage
        means = np.where(counts > 0, (sums + k * ctx.global_mean) / np.maximum(counts + k, 1e-12), ctx.global_mean)
        centred = vectors.copy().astype(np.float32)
        centred.data = ((vectors.data - np.repeat(means, counts)) / self.scale).astype(np.float32)
        self.rows = SparseRows(centred, dev)
        self._counts = counts
        self._active = np.flatnonzero(counts > 0)
        self.register_buffer("vec_mean", torch.as_tensor(means, dtype=torch.float32, device=dev))
        self.register_buffer("vec_known", torch.as_tensor(counts > 0, device=dev))
        self.global_mean = float(ctx.global_mean)
        # side vectors y, one row per vector (CFN++)
        sources = ctx.item_side if self.item_based else ctx.user_side
        what = "items" if self.item_based else "users"
        side = side_matrix(sources, cfg.side, n_vec, f"models.{self.name}.side", what)
        self.n_side = side.shape[1]
        self.side_rows = SparseRows(side, dev) if self.n_side else None
        # layers: {x, y} → h1 → ... → {h_L, y} → dim, tanh everywhere (Eq. 4)
        sizes = list(cfg.hidden)
        self.first = SparseLinear(dim, sizes[0])
        _uniform_(self.first.weight, dim + self.n_side)
        _uniform_(self.first.bias, dim + self.n_side)
        self.first_side = nn.Parameter(_uniform_(torch.empty(self.n_side, sizes[0]), dim + self.n_side))
        self.hidden_layers = nn.ModuleList()
        for a, b in itertools.pairwise(sizes):
            lin = nn.Linear(a + self.n_side, b)
            _uniform_(lin.weight, a + self.n_side)
            _uniform_(lin.bias, a + self.n_side)
            self.hidden_layers.append(lin)
        k = sizes[-1] + self.n_side
        self.dec_w = nn.Parameter(_uniform_(torch.empty(dim, k), k))
        self.dec_b = nn.Parameter(_uniform_(torch.empty(dim), k))
        self.to(dev)
        self.sparse = cfg.use_sparse(dim)
        self.row_steps: torch.Tensor | None = None  # m_r of the lazy decay (not a buffer: data, not state)
        if self.sparse:
            self.row_steps = row_steps_of(centred, self._active, dim, cfg.batch_size, dev)

    # --- network --------------------------------------------------------------------------------------
    def side_block(self, vec_ids: torch.Tensor) -> torch.Tensor:
        """y of ``vec_ids`` as a dense (len, n_side) block."""
        out = torch.zeros(len(vec_ids), self.n_side, device=vec_ids.device)
        if self.side_rows is not None:
            cols, _, vals, row_of = self.side_rows.gather_with_rows(vec_ids)
            out[row_of, cols] = vals
        return out

    def code(self, vec_ids: torch.Tensor, hidden: torch.Tensor | None = None) -> torch.Tensor:
        """{h_L, y}: the last hidden layer and the side vector (the decoder's input); ``hidden`` marks the masked
        inputs (entries in ``SparseRows.gather`` order), None for the full training vector."""
        cols, offsets, vals = self.rows.gather(vec_ids)
        y = self.side_block(vec_ids)
        return self._upper(self.first(cols, offsets, self._input(vals, hidden)), y)

    def _input(self, vals: torch.Tensor, hidden: torch.Tensor | None) -> torch.Tensor:
        """The network's input at the known entries: x + ``known_offset``, masked ones 0 (unknown)."""
        x = vals + self.cfg.known_offset if self.cfg.known_offset else vals
        return x if hidden is None else torch.where(hidden, torch.zeros_like(x), x)

    def _upper(self, first: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """{h_L, y} from the first layer's sparse product W'x + b1 (Eq. 4)."""
        h = torch.tanh(first + y @ self.first_side)
        for lin in self.hidden_layers:
            h = torch.tanh(lin(torch.cat([h, y], 1)))
        return torch.cat([h, y], 1)

    # --- training -------------------------------------------------------------------------------------
    def make_optimizer(self) -> torch.optim.Optimizer | None:
        cfg = self.cfg
        if cfg.optimizer != TORCH7 and self.sparse:
            params = [p for p in self.parameters() if p.requires_grad]
            return sparse_optimizer(params, cfg.optimizer, cfg.lr, f"models.{self.name}.optimizer")
        if cfg.optimizer != TORCH7:
            return super().make_optimizer()
        per_epoch = math.ceil(len(self._active) / cfg.batch_size) if cfg.decay_per == "epoch" else 0
        groups = [{"params": self.decayed(), "weight_decay": cfg.l2},
                  {"params": self.undecayed(), "weight_decay": 0.0}]  # fmt: skip
        return Torch7SGD([g for g in groups if g["params"]], lr=cfg.lr, lr_decay=cfg.lr_decay_t7,
                         steps_per_epoch=max(per_epoch, 0), row_steps=self.row_steps)  # fmt: skip

    def decayed(self) -> list[nn.Parameter]:
        """The parameters λ‖W‖² covers: the weights, and the biases too with ``decay_biases``."""
        return [p for n, p in self.named_parameters() if self.cfg.decay_biases or not n.endswith(("bias", "_b"))]

    def undecayed(self) -> list[nn.Parameter]:
        kept = {id(p) for p in self.decayed()}
        return [p for p in self.parameters() if id(p) not in kept]

    def train_batches(self, rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Vectors with a training rating, shuffled, in minibatches, each with its masking draw."""
        order = rng.permutation(self._active)
        bs, dev = self.cfg.batch_size, self.dec_w.device
        for s in range(0, len(order), bs):
            ids = order[s : s + bs]
            hidden = masking_draw(self._counts[ids], self.cfg.masking, rng)
            yield torch.as_tensor(ids, dtype=torch.long, device=dev), torch.as_tensor(hidden, device=dev)

    def batch_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> StepLoss:
        vec_ids, hidden = batch
        if self.sparse:
            return self._sparse_batch_loss(vec_ids, hidden)
        z = self.code(vec_ids, hidden)
        cols, _, vals, row_of = self.rows.gather_with_rows(vec_ids)
        out = torch.tanh((self.dec_w[cols] * z[row_of]).sum(-1) + self.dec_b[cols])
        sq = (out - vals).pow(2)
        weights = torch.where(hidden, torch.full_like(sq, self.cfg.alpha), torch.full_like(sq, self.cfg.beta))
        objective = (weights * sq).sum() / max(len(vec_ids), 1)  # Eq. 1 per vector, mean over the minibatch
        if self.cfg.optimizer != TORCH7 and self.cfg.l2 > 0:
            objective = objective + 0.5 * self.cfg.l2 * sum(p.pow(2).sum() for p in self.decayed())
        return self._step_loss(objective, sq, vals, hidden)

    def _sparse_batch_loss(self, vec_ids: torch.Tensor, hidden: torch.Tensor) -> StepLoss:
        """``sparse_updates``: Eq. 1 through the touched rows of W' and V' (``RowBlock``, row-sparse gradients);
        with a non-Torch7 optimizer their (l2/2)‖θ‖² is the lazy Σ_{touched r} m_r ‖θ_r‖²."""
        cols, offsets, vals, row_of = self.rows.gather_with_rows(vec_ids)
        block = RowBlock(cols)
        w_rows, v_rows = block.take(self.first.weight), block.take(self.dec_w)
        x = self._input(vals, hidden)
        z = self._upper(self.first.forward_block(block, w_rows, offsets, x), self.side_block(vec_ids))
        out = torch.tanh((v_rows[block.local] * z[row_of]).sum(-1) + self.dec_b[cols])
        sq = (out - vals).pow(2)
        weights = torch.where(hidden, torch.full_like(sq, self.cfg.alpha), torch.full_like(sq, self.cfg.beta))
        objective = (weights * sq).sum() / max(len(vec_ids), 1)
        if self.cfg.optimizer != TORCH7 and self.cfg.l2 > 0:
            assert self.row_steps is not None
            m = self.row_steps[block.rows]
            wide = {id(self.first.weight), id(self.dec_w)}
            reg = weighted_sq_norm(w_rows, m) + weighted_sq_norm(v_rows, m)
            reg = reg + sum((p.pow(2).sum() for p in self.decayed() if id(p) not in wide), torch.zeros_like(reg))
            objective = objective + 0.5 * self.cfg.l2 * reg
        return self._step_loss(objective, sq, vals, hidden)

    def _step_loss(self, objective: torch.Tensor, sq: torch.Tensor, vals: torch.Tensor, hidden: torch.Tensor
                   ) -> StepLoss:  # fmt: skip
        n = max(len(vals), 1)
        sq_r = sq.detach() * self.scale**2  # in rating units
        n_hid = hidden.sum()
        logs = {
            "mse": sq_r.sum() / n,  # every known entry
            "mse_masked": (sq_r * hidden).sum() / n_hid.clamp(min=1),  # the denoising (prediction) part
        }
        return StepLoss(objective, logs, weight=n)

    # --- inference ------------------------------------------------------------------------------------
    def _predict(self, vec: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """r̂ = b + s · nn(x); the global mean for a vector without training ratings."""
        mean = self.vec_mean[vec]
        pred = mean + self.scale * out
        return torch.where(self.vec_known[vec], pred, torch.full_like(pred, self.global_mean))

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        vec, pos = (items, users) if self.item_based else (users, items)
        uniq, inv = torch.unique(vec, return_inverse=True)
        z = self.code(uniq)[inv]
        out = torch.tanh((self.dec_w[pos] * z).sum(-1) + self.dec_b[pos])
        return self._predict(vec, out)

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """I-CFN: every item's code once per ``scoring()`` block, then one matmul per chunk of users;
        U-CFN: the users' codes times the decoder."""
        self.eval()
        dev = self.dec_w.device
        u = users.to(dev)
        if self.item_based:
            codes = self.cached("item_codes", lambda: self._all_codes(dev))
            out = torch.tanh(self.dec_w[u] @ codes.T + self.dec_b[u][:, None])  # (users, items)
            items = torch.arange(self.n_items, device=dev)
            return self._predict(items[None, :].expand_as(out), out)
        out = torch.tanh(self.code(u) @ self.dec_w.T + self.dec_b)
        return self._predict(u[:, None].expand_as(out), out)

    def _all_codes(self, dev: torch.device, chunk: int = 4096) -> torch.Tensor:
        blocks = [torch.arange(s, min(s + chunk, self.n_items), device=dev) for s in range(0, self.n_items, chunk)]
        return torch.cat([self.code(b) for b in blocks])


@register_model("cfn-i")
class ItemCFN(CFN):
    """I-CFN: one vector per item over users."""

    item_based = True


@register_model("cfn-u")
class UserCFN(CFN):
    """U-CFN: one vector per user over items."""

    item_based = False
