"""NRP-aSDAE (Raziperchikolaei et al. 2020, Eq. 2): aSDAE's autoencoders (``ASDAENet``, side input added to every
hidden layer, see ``models/nrp/asdae.py``) without U, V — the codes predict, R̂_jk = g^u(R_j, X_j)·g^i(R_:k, Y_k),
trained end to end (``NRPHybrid``):

min_θ L(f^u(g^u(R, X))) + L(f^i(g^i(R, Y))) + λ1 Σ_obs (R_jk − g^u(R_j, X_j)·g^i(R_:k, Y_k))² + l2‖θ‖²,

on pair batches with one optimizer; each pair reconstructs its user's and its item's vectors (sparse rating
reconstruction over observed entries, dense side block). ``mask_target`` (default on) removes R_jk from both
input vectors of the prediction codes, as NRP-direct does: at test time a rating is never in its own input.

Defaults: NRP Table 6, ml100k (RMSprop lr 1e-3, regularisation 0.03, tanh; encoder [500, 200, 100]).
"""

from __future__ import annotations

from models.common.registry import register_model
from models.nrp._hybrid_ae import ASDAENet, NRPAEConfig, NRPHybrid


@register_model("nrp-asdae")
class NRPASDAE(NRPHybrid):
    config_cls = NRPAEConfig
    net_cls = ASDAENet
