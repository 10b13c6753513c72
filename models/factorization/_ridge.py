"""Exact row-wise ridge solves shared by the ALS models (WMF, ALS-WR): for every row r of a sparse matrix,
x_r = (G_r + w Σ_{j ∈ r} o_j o_jᵀ)⁻¹ Σ_{j ∈ r} v_rj o_j, with G_r a per-row prior Gram matrix. Rows are solved in
blocks (one batched ``torch.linalg.solve``), outer products accumulated over observed entries only, in chunks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch


def solve_rows(
    matrix: sp.csr_matrix,
    other: torch.Tensor,
    prior: Callable[[np.ndarray], torch.Tensor],
    entry_weight: float,
    block_rows: int,
    block_entries: int,
) -> torch.Tensor:
    """``prior(lengths)`` gives the (rows, k, k) prior Gram matrices of a block from its rows' entry counts."""
    dev, k = other.device, other.shape[1]
    out = torch.empty(matrix.shape[0], k, device=dev)
    indptr = matrix.indptr
    indices = torch.as_tensor(matrix.indices.astype(np.int64), device=dev)
    values = torch.as_tensor(matrix.data.astype(np.float32), device=dev)
    for r0 in range(0, matrix.shape[0], block_rows):
        r1 = min(r0 + block_rows, matrix.shape[0])
        lengths = np.diff(indptr[r0 : r1 + 1])
        gram = prior(lengths)
        rhs = torch.zeros(r1 - r0, k, device=dev)
        row_of_all = torch.as_tensor(np.repeat(np.arange(r1 - r0), lengths), device=dev)
        e0, e1 = int(indptr[r0]), int(indptr[r1])
        for s in range(e0, e1, block_entries):
            t = min(s + block_entries, e1)
            o = other[indices[s:t]]
            row_of = row_of_all[s - e0 : t - e0]
            gram.index_add_(0, row_of, entry_weight * o[:, :, None] * o[:, None, :])
            rhs.index_add_(0, row_of, values[s:t, None] * o)
        out[r0:r1] = torch.linalg.solve(gram, rhs)
    return out
