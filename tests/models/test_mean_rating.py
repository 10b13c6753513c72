"""The trivial rating baselines: global mean exactly; item mean shrunk towards μ by β pseudo-ratings; the user
offset fitted on the item residuals — checked against a hand computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.common.context import TrainContext
from tasks.common.errors import ConfigError
from tasks.training import build_model


def ctx() -> TrainContext:
    users = np.array([0, 0, 1, 1, 2], dtype=np.int64)
    items = np.array([0, 1, 0, 2, 0], dtype=np.int64)
    ratings = np.array([5, 3, 4, 1, 3], dtype=np.float32)
    return TrainContext(3, 4, users, items, ratings, (1.0, 5.0))


def test_item_mean_and_user_offset_by_hand() -> None:
    c = ctx()
    mu = 16 / 5
    model = build_model("item-mean", {"shrinkage": 2.0, "user_offset": True}, c)
    model.fit_epoch(np.random.default_rng(0))
    bi = np.array([(5 + 4 + 3 - 3 * mu) / (2 + 3), (3 - mu) / 3, (1 - mu) / 3, 0.0])
    resid = c.ratings - mu - bi[c.items]
    bu = np.array([resid[:2].sum() / 4, resid[2:4].sum() / 4, resid[4:].sum() / 3])
    pred = model.predict(np.array([0, 2, 1]), np.array([3, 0, 2]))
    np.testing.assert_allclose(pred, [mu + bu[0], mu + bi[0] + bu[2], mu + bi[2] + bu[1]], rtol=1e-6)
    with model.scoring():
        full = model.score_users(torch.tensor([0, 1, 2])).numpy()
    np.testing.assert_allclose(full, model.predict(np.repeat([0, 1, 2], 4), np.tile(np.arange(4), 3)).reshape(3, 4))


def test_global_mean_is_the_training_mean() -> None:
    model = build_model("global-mean", {}, ctx())
    model.fit_epoch(np.random.default_rng(0))
    np.testing.assert_allclose(model.predict(np.array([0, 2]), np.array([3, 1])), [3.2, 3.2], rtol=1e-6)


def test_negative_shrinkage_is_refused() -> None:
    with pytest.raises(ConfigError, match="shrinkage"):
        build_model("item-mean", {"shrinkage": -1.0}, ctx())
