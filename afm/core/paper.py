"""The paper's reported results (Xiao et al., IJCAI 2017, Table 2: test RMSE at embedding size 256), to
show beside ours. The AFM row is confirmed by the authors; the baseline rows are as commonly quoted."""
from __future__ import annotations

import pandas as pd

TEST_RMSE = {
    "frappe": {"LibFM": 0.3385, "HOFM": 0.3331, "Wide&Deep": 0.3246, "DeepCross": 0.3548, "AFM": 0.3102},
    "movielens": {"LibFM": 0.4735, "HOFM": 0.4636, "Wide&Deep": 0.4512, "DeepCross": 0.5130, "AFM": 0.4325},
}
PARAMETERS = {"frappe": {"LibFM": 1.38e6, "AFM": 1.45e6}, "movielens": {"LibFM": 23.24e6, "AFM": 23.26e6}}


def paper_table(dataset_name: str) -> pd.DataFrame:
    """The paper's test RMSE for a dataset (empty for data the paper did not use)."""
    results = TEST_RMSE.get(dataset_name, {})
    return pd.DataFrame({"method": list(results), "paper_test_rmse": list(results.values())})


# The BARS open benchmark (FuxiCTR, Frappe_x1: embedding size 10, logistic loss), test AUC and logloss. Its
# validation and test splits have the sizes of our original files; its train split is the original, ours
# is reconstructed (../shared/data/SOURCES.md), so these stand beside ours as a reference, not a match.
# Each figure from reczoo/BARS ranking/ctr/<Model>/<Model>_frappe_x1/README.md (DeepFM and DCN-v2: the mean of
# 5 runs; the others one run), searched by BARS with FuxiCTR 1.1, batch 4096, Adam and embedding regularisation.
BARS_FRAPPE = {"LR": {"auc": 0.9356, "logloss": 0.3076}, "FM": {"auc": 0.9671, "logloss": 0.2065},
               "AFM": {"auc": 0.9697, "logloss": 0.2264}, "NFM": {"auc": 0.9804, "logloss": 0.2058},
               "DeepFM": {"auc": 0.9839, "logloss": 0.1495}, "DCN-v2": {"auc": 0.9838, "logloss": 0.1520},
               "AutoInt": {"auc": 0.9831, "logloss": 0.1637}}
BARS_SOURCE = "reczoo/BARS, ranking/ctr/<Model>/<Model>_frappe_x1/README.md (DCN-v2: DCNv2_frappe_x1)"


def bars_table(dataset_name: str) -> pd.DataFrame:
    """BARS' Frappe_x1 figures (empty for other data)."""
    if dataset_name != "frappe":
        return pd.DataFrame(columns=["method", "bars_test_auc", "bars_test_logloss"])
    return pd.DataFrame([{"method": m, "bars_test_auc": v["auc"], "bars_test_logloss": v["logloss"]}
                         for m, v in BARS_FRAPPE.items()])
