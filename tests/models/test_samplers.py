"""The shared samplers: seeded, vectorized, never a positive of the user, fresh every epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.common.samplers import (
    Interactions,
    entity_batches,
    negative_batches,
    pair_keys,
    sample_negatives,
    triple_batches,
)
from tasks.common.errors import ConfigError


def _data(n_users: int = 50, n_items: int = 40, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, n_users * n_items, 600))
    u, i = keys // n_items, keys % n_items
    return Interactions(u, i, np.ones(len(u), np.float32), None, n_users, n_items)


def test_negatives_are_never_positives_and_distinct_when_asked() -> None:
    data = _data()
    users = np.repeat(np.arange(50), 3)
    rng = np.random.default_rng(1)
    neg = sample_negatives(users, 20, data.keys, 40, rng, distinct=True)
    assert neg.shape == (150, 20)
    pos = set(zip(data.users.tolist(), data.items.tolist()))
    assert not any((int(u), int(j)) in pos for u, row in zip(users, neg) for j in row)
    assert all(len(set(row.tolist())) == 20 for row in neg)
    again = sample_negatives(users, 20, data.keys, 40, np.random.default_rng(1), distinct=True)
    np.testing.assert_array_equal(neg, again)  # seeded


def test_a_nearly_saturated_user_still_gets_the_free_items() -> None:
    n_items = 30
    u = np.zeros(28, np.int64)
    i = np.arange(28)  # user 0 interacted with 28 of 30 items
    keys = pair_keys(u, i, n_items)
    neg = sample_negatives(np.zeros(5, np.int64), 2, keys, n_items, np.random.default_rng(0), distinct=True)
    assert all(sorted(row.tolist()) == [28, 29] for row in neg)


def test_a_ratio_that_cannot_be_met_names_the_parameter() -> None:
    keys = pair_keys(np.zeros(29, np.int64), np.arange(29), 30)
    with pytest.raises(ConfigError, match=r"split\.loo_negatives.*at most 1 negatives for user 0.*29 of 30"):
        sample_negatives(np.array([0]), 5, keys, 30, np.random.default_rng(0), distinct=True,
                         param="split.loo_negatives")  # fmt: skip
    full = pair_keys(np.zeros(30, np.int64), np.arange(30), 30)
    with pytest.raises(ConfigError, match=r"models\.bpr"):
        sample_negatives(np.array([0]), 1, full, 30, np.random.default_rng(0), param="models.bpr")


def test_triples_cover_every_pair_with_a_fresh_negative_each_epoch() -> None:
    data = _data()
    rng = np.random.default_rng(0)
    epochs = []
    for _ in range(2):
        batches = list(triple_batches(data, 128, rng, torch.device("cpu")))
        u = torch.cat([b.users for b in batches]).numpy()
        i = torch.cat([b.pos_items for b in batches]).numpy()
        j = torch.cat([b.neg_items for b in batches]).numpy()
        assert sorted(zip(u.tolist(), i.tolist())) == sorted(zip(data.users.tolist(), data.items.tolist()))
        pos = set(zip(data.users.tolist(), data.items.tolist()))
        assert not any((a, b) in pos for a, b in zip(u.tolist(), j.tolist()))
        epochs.append(dict(zip(zip(u.tolist(), i.tolist()), j.tolist())))
    assert epochs[0] != epochs[1]


def test_pairs_with_k_negatives_are_labelled() -> None:
    data = _data()
    batch = next(negative_batches(data, 4, 16, np.random.default_rng(0), torch.device("cpu")))
    assert batch.users.shape == (16 * 5,)
    labels = batch.ratings.reshape(16, 5)
    assert labels[:, 0].eq(1).all() and labels[:, 1:].eq(0).all()


@pytest.mark.parametrize("by", ["users", "items"])
def test_entity_batches_cover_every_pair_once_grouped_by_entity(by: str) -> None:
    rng = np.random.default_rng(0)
    keys = np.unique(rng.integers(0, 20, 300) * 30 + rng.integers(0, 30, 300))
    users, items = keys // 30, keys % 30
    data = Interactions(users, items, rng.random(len(keys)).astype(np.float32), None, 20, 30)
    seen: list[tuple[int, int, float]] = []
    for batch in entity_batches(data, by, 4, np.random.default_rng(1), torch.device("cpu")):
        ent = (batch.users if by == "users" else batch.items).numpy()
        assert len(np.unique(ent)) <= 4
        seen += list(zip(batch.users.tolist(), batch.items.tolist(), batch.ratings.tolist(), strict=True))
    expect = sorted(zip(users.tolist(), items.tolist(), data.ratings.tolist(), strict=True))
    assert sorted(seen) == expect  # every pair once, with its own rating
    again = [b.users.tolist() for b in entity_batches(data, by, 4, np.random.default_rng(1), torch.device("cpu"))]
    first = [b.users.tolist() for b in entity_batches(data, by, 4, np.random.default_rng(1), torch.device("cpu"))]
    assert again == first  # seeded
