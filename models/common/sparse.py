"""Sparse inputs on torch: first layers that cost O(observed entries), not O(vector length)."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn


class SparseRows:
    """A CSR matrix on a device; ``gather(rows)`` yields the embedding_bag inputs of those rows."""

    def __init__(self, matrix: sp.csr_matrix, device: torch.device) -> None:
        m = sp.csr_matrix(matrix)
        m.sort_indices()
        self.shape = m.shape
        self.indptr = torch.as_tensor(m.indptr.astype(np.int64), device=device)
        self.indices = torch.as_tensor(m.indices.astype(np.int64), device=device)
        self.data = torch.as_tensor(m.data.astype(np.float32), device=device)

    def gather(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(flat column indices, offsets, values) of ``rows``, in row order."""
        start = self.indptr[rows]
        lengths = self.indptr[rows + 1] - start
        offsets = torch.zeros_like(lengths)
        if len(lengths) > 1:
            offsets[1:] = torch.cumsum(lengths[:-1], 0)
        total = int(lengths.sum().item())
        row_of = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), lengths, output_size=total)
        flat = start[row_of] + torch.arange(total, device=rows.device) - offsets[row_of]
        return self.indices[flat], offsets, self.data[flat]

    def gather_with_rows(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Like ``gather`` plus, for each entry, the position in ``rows`` it belongs to."""
        cols, offsets, vals = self.gather(rows)
        lengths = self.indptr[rows + 1] - self.indptr[rows]
        row_of = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), lengths, output_size=len(cols))
        return cols, offsets, vals, row_of


class SparseLinear(nn.Module):
    """y = x W + b for sparse x given as embedding_bag inputs; weight is (in_features, out_features).
    ``forward_block``: the same through a ``RowBlock`` (the weight's gradient is then row-sparse)."""

    def __init__(self, in_features: int, out_features: int, init: str = "uniform") -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        if init == "lecun":
            nn.init.normal_(self.weight, 0.0, 1.0 / math.sqrt(max(in_features, 1)))
        else:
            bound = 1.0 / math.sqrt(max(in_features, 1))
            nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, cols: torch.Tensor, offsets: torch.Tensor, vals: torch.Tensor) -> torch.Tensor:
        out = F.embedding_bag(cols, self.weight, offsets, mode="sum", per_sample_weights=vals)
        return out + self.bias

    def forward_block(self, block: RowBlock, rows: torch.Tensor, offsets: torch.Tensor, vals: torch.Tensor
                      ) -> torch.Tensor:  # fmt: skip
        """``forward(cols, offsets, vals)`` through ``rows = block.take(self.weight)`` (same values; the weight's
        gradient is row-sparse)."""
        out = F.embedding_bag(block.local, rows, offsets, mode="sum", per_sample_weights=vals)
        return out + self.bias


class RowBlock:
    """The distinct rows a minibatch's entries ``cols`` touch (sorted) and each entry's position among them.
    ``take(weight)`` is ``weight[rows]`` whose gradient reaches ``weight`` as a sparse COO tensor over those rows
    only: a step then costs O(touched rows · k) for the (n × k) weight, not O(n · k) (``sparse_updates``)."""

    def __init__(self, cols: torch.Tensor) -> None:
        self.rows, self.local = torch.unique(cols, sorted=True, return_inverse=True)

    def take(self, weight: torch.Tensor) -> torch.Tensor:
        return F.embedding(self.rows, weight, sparse=True)


def weighted_sq_norm(rows: torch.Tensor, row_weight: torch.Tensor) -> torch.Tensor:
    """Σ_r row_weight[r] ‖rows[r]‖² (the lazy L2 of a ``RowBlock``'s rows, ``row_weight`` = m_r of those rows)."""
    return (rows.pow(2).sum(-1) * row_weight).sum()


def dense_or_sparse_rows(matrix: sp.csr_matrix | np.ndarray, device: torch.device) -> SparseRows | torch.Tensor:
    if sp.issparse(matrix):
        return SparseRows(sp.csr_matrix(matrix), device)
    return torch.as_tensor(np.asarray(matrix, dtype=np.float32), device=device)
