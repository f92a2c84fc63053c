"""Friedman and Popescu's H-statistic for field pairs (Predictive learning via rule ensembles, 2008): the
share of the variance of a pair's joint partial dependence that is interaction,

    H2_AB = sum_i [PD_AB(x_i) - PD_A(x_i) - PD_B(x_i)]^2 / sum_i PD_AB(x_i)^2,

each partial dependence centred over the rows, PD_S(x_i) the mean prediction over background rows r with
the fields S taken from x_i. It needs only predictions, so it applies to every model, and unlike the mean
|mixed difference| it is a share, not a size: a pair of rare values that barely moves the prediction can
still be all interaction. Zero for an additive function (no A x B term), one for a pure product."""
from __future__ import annotations

import numpy as np

from afm.models.inference import predict

H_ROWS, H_BACKGROUND = 128, 32  # rows measured and rows averaged over: (m + P) * 128 * 32 predictions


def partial_dependence(model, x: np.ndarray, background: np.ndarray, fields: list[int]) -> np.ndarray:
    """(N,) PD_S(x_i): the mean prediction over the background rows with `fields` taken from each x_i."""
    n, r = len(x), len(background)
    rows = np.repeat(background[None], n, axis=0)  # (N, R, m)
    rows[:, :, fields] = x[:, None, fields]
    return predict(model, rows.reshape(n * r, -1)).astype(np.float64).reshape(n, r).mean(1)


def h_statistic(model, x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """(P,) H2 of every field pair (the models' pair order) on rows x, averaging over `background`."""
    m = x.shape[1]
    single = [partial_dependence(model, x, background, [f]) for f in range(m)]
    single = [pd - pd.mean() for pd in single]
    out = []
    for a, b in zip(*np.triu_indices(m, k=1)):
        joint = partial_dependence(model, x, background, [a, b])
        joint = joint - joint.mean()
        denominator = float(joint @ joint)
        residual = joint - single[a] - single[b]
        out.append(float(residual @ residual) / denominator if denominator > 1e-18 else 0.0)
    return np.asarray(out)
