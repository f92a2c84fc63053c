"""AFM Explorer, home page: FM and AFM trained on the synthetic default, and which field pairs AFM attends to.

The page only calls `afm/` and draws; all computation lives in the library.
"""
import pandas as pd
import streamlit as st

from afm.data import dataset_status, make_synthetic
from afm.explain import explain_split
from afm.statistics import pair_statistics
from afm.training import evaluate
from afm.workflows import fit

st.set_page_config(page_title="AFM Explorer", layout="wide")


@st.cache_resource(show_spinner="Training FM and AFM on the synthetic data (a few seconds)...")
def synthetic_models(seed: int = 0):
    dataset = make_synthetic(seed=seed)
    fm, _, _ = fit(dataset, "fm")
    afm, _, _ = fit(dataset, "afm")
    return dataset, fm, afm


st.title("AFM Explorer")
st.markdown(
    "Which feature interactions matter? A **factorization machine** (FM) adds up every pair of features "
    "with equal weight: $\\hat y = w_0 + \\sum_i w_i + p^\\top \\sum_{i<j} v_i \\odot v_j$. An **attentional "
    "FM** (Xiao et al., IJCAI 2017) learns a weight $a_{ij}$ per pair and instance, normalised over the "
    "pairs: $\\hat y = w_0 + \\sum_i w_i + p^\\top \\sum_{i<j} a_{ij}\\,(v_i \\odot v_j)$."
)

dataset, fm, afm = synthetic_models()
test = dataset.splits["test"]
fm_metrics = evaluate(fm, test, dataset.label_range)
afm_metrics = evaluate(afm, test, dataset.label_range)

st.subheader("Synthetic data with planted interactions")
st.write("The label is driven by these field pairs: "
         + ", ".join(f"**{a} x {b}**" for a, b in dataset.planted_pairs) + ". Does attention find them?")
left, right = st.columns(2)
left.metric("FM test RMSE", f"{fm_metrics['rmse']:.4f}")
right.metric("AFM test RMSE", f"{afm_metrics['rmse']:.4f}",
             delta=f"{afm_metrics['rmse'] - fm_metrics['rmse']:+.4f}", delta_color="inverse")
st.dataframe(pair_statistics(explain_split(afm, dataset, "test")), hide_index=True)

st.subheader("Data on this machine")
st.dataframe(pd.DataFrame(dataset_status()), hide_index=True)
