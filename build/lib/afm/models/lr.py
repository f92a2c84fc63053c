"""LR, first order only: y = w0 + sum_i w_i (logistic regression with logistic loss, linear regression with
squared loss). No pair terms: the baseline every interaction model should beat, and an additive model whose
interactions are exactly zero."""
from __future__ import annotations

from afm.models.families import Family
from afm.models.layers import AdditiveModel

FAMILY = Family("lr", "LR", "first order only (logistic or linear regression): no pair terms", AdditiveModel,
                pairwise=False, presets={"default": {"lr": 0.05}})
