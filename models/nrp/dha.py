"""DHA (Li et al. 2018, "Deep heterogeneous autoencoders for collaborative filtering") as the NRP paper trains it
(Raziperchikolaei et al. 2020, Eq. 1 with λ1 = 1, λ2 = λ3 = 0.5, SGD lr 0.1 on U, V).

min_{U,V,θ} L(f^u(g^u(R, X))) + L(f^i(g^i(R, Y))) + λ1 Σ_obs (R_jk − U_j·V_k)² + λ2‖U − g^u(R, X)‖²
+ λ3‖V − g^i(R, Y)‖² + l2‖θ‖², by alternation (``AlternatingHybrid``): a θ-step pass over the user and item vectors
(U, V fixed), then SGD passes on U, V over the observed pairs (θ fixed). Prediction: U_j·V_k.

Autoencoders (``DHANet``): per-source encoder branches — the rating vector (sparse first layer over observed
entries) and the side source (``side``: bow | svd | none; sparse first layer over the BoW's nonzeros) — of sizes
``encoder[:-1]``, fused by concatenation into the code layer ``encoder[-1]`` = d; the decoder mirrors them per
source. L(·) = ``recon_weight`` · per-vector mean over observed ratings of (R̂ − R)² (only observed outputs
computed) + ``side_weight`` · per-vector mean over side dims (mse or bce). A side without the side source runs
rating-only (DHA's sources are whatever a side has; needs_side is empty).

Defaults: NRP Table 6, ml100k (θ: SGD lr 0.1, regularisation 1e-5, tanh; encoder [500, 200, 100] as NRP-direct's).
"""

from __future__ import annotations

from models.common.registry import register_model
from models.nrp._hybrid_ae import AlternatingConfig, AlternatingHybrid, DHANet


@register_model("dha")
class DHA(AlternatingHybrid):
    config_cls = AlternatingConfig
    net_cls = DHANet
