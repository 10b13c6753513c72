"""SGD with Torch7 ``optim.sgd`` semantics (no momentum), the optimiser the CFN paper's code trains with.

Torch7's ``optim.sgd(feval, x, config)`` does, per call::

    dfdx += weightDecay * x                       -- weight decay added to the gradient, every parameter
    clr   = learningRate / (1 + nevals * learningRateDecay)
    x    -= clr * dfdx
    nevals += 1

``nevals`` is ``state.evalCounter``. The CFN code (``AutoEncoderTrainer.lua``) sets ``sgdOpt.evalCounter = epoch``
(1-based) before every step, so its decay is in fact per EPOCH; ``steps_per_epoch > 0`` reproduces that
(counter = completed epochs + 1), ``steps_per_epoch = 0`` gives plain Torch7 per-step decay (counter = steps so far).

The step count lives in the optimizer state (one ``step`` tensor per parameter, as ``torch.optim.Adam`` keeps it),
so ``state_dict()`` round-trips and a resumed run continues bit-identically. ``group["lr"]`` is the base rate, so a
``ReduceLROnPlateau`` on top scales it as usual.

Sparse (COO, row) gradients (``sparse_updates``, ``models/common/sparse_optim.py``): only the gradient's rows are
stepped, θ_r ← θ_r · (1 − lr_t · weight_decay)^{m_r} − lr_t · ∇_r L, with m_r = ``row_steps[r]`` (the expected
number of steps between two touches of row r, for parameters with ``len(row_steps)`` rows; 1 otherwise): the
decay the untouched steps would have applied, in expectation, taken when the row is next touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


class Torch7SGD(torch.optim.Optimizer):
    """θ ← θ − lr / (1 + t · lr_decay) · (∇L + weight_decay · θ); t: steps so far, or the 1-based epoch."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        steps_per_epoch: int = 0,
        row_steps: torch.Tensor | None = None,
    ) -> None:
        if lr <= 0 or lr_decay < 0 or weight_decay < 0 or steps_per_epoch < 0:
            raise ValueError(f"bad Torch7SGD settings: lr={lr}, lr_decay={lr_decay}, weight_decay={weight_decay}, "
                             f"steps_per_epoch={steps_per_epoch}")  # fmt: skip
        defaults = {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay, "steps_per_epoch": steps_per_epoch}
        super().__init__(params, defaults)
        self.row_steps = row_steps  # derived from the data, not optimizer state: not in state_dict

    @staticmethod
    def rate(lr: float, lr_decay: float, steps: int, steps_per_epoch: int) -> float:
        """The rate of the step taken after ``steps`` earlier steps."""
        t = steps // steps_per_epoch + 1 if steps_per_epoch > 0 else steps
        return lr / (1.0 + t * lr_decay)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            wd = group["weight_decay"]
            for p in group["params"]:
                state = self.state[p]
                if "step" not in state:
                    state["step"] = torch.zeros((), dtype=torch.int64)
                steps = int(state["step"].item())
                clr = self.rate(group["lr"], group["lr_decay"], steps, group["steps_per_epoch"])
                if p.grad is not None and p.grad.is_sparse:
                    self._sparse_step(p, p.grad.coalesce(), clr, wd)
                elif p.grad is not None:
                    d = p.grad.add(p, alpha=wd) if wd != 0 else p.grad
                    p.add_(d, alpha=-clr)
                elif wd != 0:  # Torch7 decays the whole flattened parameter vector, gradient or not
                    p.mul_(1.0 - clr * wd)
                state["step"] = state["step"] + 1  # a new tensor: a loaded state_dict never aliases it
        return loss

    def _sparse_step(self, p: torch.Tensor, g: torch.Tensor, clr: float, wd: float) -> None:
        rows, vals = g.indices()[0], g.values()
        if wd != 0:
            m = self.row_steps
            if m is not None and len(m) == p.shape[0]:
                factor = torch.pow(torch.full_like(m[rows], max(1.0 - clr * wd, 0.0)), m[rows]).to(p.dtype)
            else:
                factor = torch.full((len(rows),), max(1.0 - clr * wd, 0.0), dtype=p.dtype, device=p.device)
            p[rows] = p[rows] * factor.view(-1, *([1] * (p.dim() - 1))) - clr * vals
        else:
            p.index_add_(0, rows, vals, alpha=-clr)
