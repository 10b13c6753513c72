"""What a model may read at build time, declared in one place: sizes, the TRAINING interactions only
(ratings and, where the dataset has them, interaction weights), every side matrix the features stage built,
the rating scale, the feedback type and the device. Nothing here reads the raw data folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import torch

from models.common.samplers import Interactions


class UnbuiltSideInfo(dict):  # type: ignore[type-arg]
    """The side sources of a dataset that declares side fields but whose features stage has not run: reading it
    in any way is an error that says what to run, never an empty mapping a model silently trains without."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__()
        self.what, self.message = what, message

    def _refuse(self, *_: object, **__: object):  # type: ignore[no-untyped-def]
        from tasks.common.errors import HybridrecError

        raise HybridrecError(f"{self.what} side information is not built: {self.message}")

    __getitem__ = get = keys = items = values = __iter__ = __len__ = __contains__ = _refuse
    __bool__ = _refuse


@dataclass
class TrainContext:
    n_users: int
    n_items: int
    users: np.ndarray  # int64, training pairs only
    items: np.ndarray  # int64
    ratings: np.ndarray  # float32 (1 for implicit data and for positives of a ranking model on explicit data)
    rating_scale: tuple[float, float]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    # side matrices by source: "bow" (sparse bag of words over every side field), "svd" (its truncated SVD),
    # and "<field>_svd" per relation (bag field: Last.fm tags / friends, Douban friends, MovieLens tags)
    user_side: dict[str, sp.csr_matrix | np.ndarray] = field(default_factory=dict)
    item_side: dict[str, sp.csr_matrix | np.ndarray] = field(default_factory=dict)
    implicit: bool = False
    weights: np.ndarray | None = None  # float32 interaction strength (play counts ...) per training pair

    @cached_property
    def global_mean(self) -> float:
        return float(self.ratings.mean()) if len(self.ratings) else float(np.mean(self.rating_scale))

    @cached_property
    def interactions(self) -> Interactions:
        return Interactions(self.users, self.items, self.ratings, self.weights, self.n_users, self.n_items)

    @cached_property
    def user_matrix(self) -> sp.csr_matrix:
        """Training ratings, users × items (CSR, sorted indices)."""
        m = sp.csr_matrix(
            (self.ratings, (self.users, self.items)), shape=(self.n_users, self.n_items), dtype=np.float32
        )
        m.sort_indices()
        return m

    @cached_property
    def item_matrix(self) -> sp.csr_matrix:
        """Training ratings, items × users (CSR, sorted indices)."""
        m = sp.csr_matrix(self.user_matrix.T)
        m.sort_indices()
        return m

    @cached_property
    def user_counts(self) -> np.ndarray:
        return np.bincount(self.users, minlength=self.n_users)

    @cached_property
    def item_counts(self) -> np.ndarray:
        return np.bincount(self.items, minlength=self.n_items)
