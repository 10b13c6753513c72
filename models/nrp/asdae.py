"""aSDAE (Dong et al. 2017, "A hybrid collaborative filtering model with deep structure for recommender systems")
as the NRP paper trains it (Raziperchikolaei et al. 2020, Eq. 1 with λ1 = 1, λ2 = λ3 = 0.5, SGD lr 0.1 on U, V).

min_{U,V,θ} L(f^u(g^u(R, X))) + L(f^i(g^i(R, Y))) + λ1 Σ_obs (R_jk − U_j·V_k)² + λ2‖U − g^u(R, X)‖²
+ λ3‖V − g^i(R, Y)‖² + l2‖θ‖², by alternation (``AlternatingHybrid``): a θ-step pass over the user and item vectors
(U, V fixed), then SGD passes on U, V over the observed pairs (θ fixed). Prediction: U_j·V_k.

Autoencoders (``ASDAENet``): the additional stacked denoising autoencoder — the side input is added to every
hidden layer, h_l = σ(W_l h_{l−1} + V_l x̃ + b_l), over hidden sizes ``encoder`` then their mirror; the output
layer reconstructs the rating vector ŝ = W_L h + b (only observed outputs computed) and the side vector
x̂ = V_L h + b_x. L(·) = ``recon_weight`` · per-vector mean over observed ratings of (R̂ − R)² + ``side_weight``
(aSDAE's (1 − α)/α) · per-vector mean over side dims. Masking noise (``input_dropout``) on s̃ and x̃. A side
without the side source runs as a plain SDAE of its rating vectors (needs_side is empty).

Defaults: NRP Table 6, ml100k (θ: SGD lr 0.1, regularisation 1e-5, tanh; encoder [500, 200, 100] as NRP-direct's).
"""

from __future__ import annotations

from models.common.registry import register_model
from models.nrp._hybrid_ae import AlternatingConfig, AlternatingHybrid, ASDAENet


@register_model("asdae")
class ASDAE(AlternatingHybrid):
    config_cls = AlternatingConfig
    net_cls = ASDAENet
