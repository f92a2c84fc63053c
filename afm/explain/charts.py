"""Plotly figures for the app and reports: pure functions of computed values, nothing computed here
beyond arranging them. One colour-blind-safe palette (Okabe-Ito) and sequential Viridis throughout."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from afm.models import AFM_KIND, FM_KIND

# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
MODEL_COLOURS = {FM_KIND: PALETTE[1], AFM_KIND: PALETTE[0]}
POSITIVE, NEGATIVE, TOTAL = PALETTE[2], PALETTE[5], PALETTE[0]
SEQUENTIAL = "Viridis"
DIVERGING = "RdBu"  # ColorBrewer, colour-blind safe


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, **kw) -> go.Figure:
    """The house style; a legend sits below the plot, where it covers no data at any width."""
    legend = dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0)
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, template="plotly_white",
                      colorway=PALETTE, margin=dict(l=60, r=20, t=60, b=60), legend=legend, **kw)
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def pair_matrix(values, field_names: list[str]) -> np.ndarray:
    """A pair vector (models' pair order) as an m x m matrix, upper triangle filled, the rest NaN."""
    m = len(field_names)
    matrix = np.full((m, m), np.nan)
    rows, cols = np.triu_indices(m, k=1)
    matrix[rows, cols] = np.asarray(values, dtype=float)
    return matrix


def pair_heatmap(values, field_names: list[str], title: str = "Attention over field pairs",
                 value_name: str = "attention", feature_names: list[str] | None = None,
                 diverging: bool = False, value_range: tuple[float, float] | None = None) -> go.Figure:
    """Field-pair heatmap of one instance (pass its `feature_names`, one per field, for the hover) or of
    a mean over a split. `diverging` centres a red-blue scale on zero, for signed values. `value_range`
    fixes the colour scale, so heatmaps drawn side by side share one (the same colour, the same value)."""
    matrix = pair_matrix(values, field_names)
    labels = feature_names or field_names
    hover = [[f"{labels[i]} x {labels[j]}<br>{value_name}: {matrix[i, j]:.6g}" if i < j else ""
              for j in range(len(labels))] for i in range(len(labels))]
    scale = dict(colorscale=DIVERGING, zmid=0.0) if diverging else dict(colorscale=SEQUENTIAL)
    if value_range is not None:
        scale.update(zmin=value_range[0], zmax=value_range[1])
    fig = go.Figure(go.Heatmap(z=matrix, x=field_names, y=field_names, text=hover, hoverinfo="text",
                               colorbar=dict(title=value_name), hoverongaps=False, **scale))
    fig.update_yaxes(autorange="reversed")
    m = len(field_names)
    if m > 12:  # many fields: smaller labels and a taller figure keep a 30 x 30 map readable
        fig.update_xaxes(tickfont=dict(size=9), tickangle=-60)
        fig.update_yaxes(tickfont=dict(size=9))
    return _layout(fig, title, "second field", "first field", height=max(450, 16 * m + 200))


def shared_range(*arrays) -> tuple[float, float]:
    """One colour range for several heatmaps: from the smallest to the largest value of any of them."""
    values = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    values = values[np.isfinite(values)]
    return (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)


def pair_bars(labels, values, title: str = "Field pairs ranked", value_name: str = "mean attention",
              top: int = 20, highlight=(), highlight_name: str = "planted in the data") -> go.Figure:
    """Horizontal bars of the largest values, largest on top, with the pair names; the `highlight` labels
    (the planted pairs, say) in their own colour and legend entry."""
    order = np.argsort(-np.asarray(values, dtype=float), kind="stable")[:top]
    shown_labels = [labels[i] for i in order][::-1]
    shown_values = np.asarray(values, dtype=float)[order][::-1]
    marked = np.array([label in set(highlight) for label in shown_labels], dtype=bool)
    groups = [(~marked, PALETTE[0], "other pairs" if marked.any() else value_name), (marked, PALETTE[5], highlight_name)]
    fig = go.Figure([go.Bar(x=shown_values[keep], y=np.asarray(shown_labels, dtype=object)[keep], orientation="h",
                            marker_color=colour, name=name, showlegend=bool(marked.any()),
                            hovertemplate="%{y}<br>" + value_name + ": %{x:.6g}<extra></extra>")
                     for keep, colour, name in groups if keep.any()])
    fig.update_yaxes(categoryorder="array", categoryarray=shown_labels)
    return _layout(fig, title, value_name, "", height=max(300, 22 * len(order) + 150))


def placeholder(title: str, height: int = 420) -> go.Figure:
    """An empty chart of the size of the one being computed, saying so: the page does not jump or sit blank."""
    fig = go.Figure()
    fig.add_annotation(text="Computing...", showarrow=False, font=dict(size=16, color="#6B7280"),
                       xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, "", "", height=height)


def decomposition_waterfall(decomposition: dict, top_pairs: int = 10, title: str = "How the prediction adds up") -> go.Figure:
    """Bias, the summed first-order terms, the largest pair contributions (the rest summed), ending at the
    prediction; the steps add up exactly."""
    pairs = decomposition["pairs"] if decomposition.get("pair_terms", True) else []  # sorted by |contribution|
    shown, rest = pairs[:top_pairs], pairs[top_pairs:]
    labels = ["bias", "first-order terms"] + [f"{p['feature_a']} x<br>{p['feature_b']}" for p in shown]
    values = [decomposition["bias"], decomposition["first_order_total"]]
    values += [p["contribution"] for p in shown]
    hover = ["global bias w0", "<br>".join(f"{t['feature']}: {t['value']:+.4f}" for t in decomposition["first_order"])]
    hover += [f"attention {p['attention']:.4f} x interaction {p['interaction']:+.4f}" for p in shown]
    if rest:
        labels.append(f"{len(rest)} other pairs")
        values.append(sum(p["contribution"] for p in rest))
        hover.append("sum of the smaller pair contributions")
    if not decomposition.get("additive", True):  # what splits into no per-pair terms, in one bar: still sums
        labels.append("non-additive part")
        values.append(decomposition["rest"])
        hover.append("the part of the prediction with no exact per-pair split (an MLP's, a cross network's, "
                     "self-attention's): its pairs are read from the function, in the heatmap")
    total = "logit" if decomposition.get("loss") == "logistic" else "prediction"  # log-odds add up, not probabilities
    labels.append(total)
    values.append(decomposition["prediction"])
    hover.append(f"{total} {decomposition['prediction']:+.4f}" + (
        f" (probability {decomposition['probability']:.3f})" if decomposition.get("probability") is not None else ""))
    # Horizontal, a step a row, each pair's name on two lines: readable on a 390 px phone as on a desktop
    fig = go.Figure(go.Waterfall(
        orientation="h", y=labels, x=values, measure=["relative"] * (len(values) - 1) + ["total"],
        text=[f"{v:+.3f}" for v in values], textposition="outside", cliponaxis=False, hovertext=hover,
        hoverinfo="y+text", increasing=dict(marker_color=POSITIVE), decreasing=dict(marker_color=NEGATIVE),
        totals=dict(marker_color=TOTAL)))
    fig.update_xaxes(range=waterfall_range(values))
    fig.update_yaxes(autorange="reversed", tickfont=dict(size=11))
    return _layout(fig, title, f"contribution to the {total}", "", height=max(360, 44 * len(labels) + 120))


def waterfall_range(values: list[float], room: float = 0.18) -> list[float]:
    """The value axis's range for a waterfall (its last value is the total): every running total and, beyond
    them, room for the value labels drawn outside the bars, so no label is cut at any value."""
    steps = np.cumsum(values[:-1])
    levels = np.concatenate([[0.0], steps, [values[-1]]])
    low, high = float(min(levels.min(), 0.0)), float(max(levels.max(), 0.0))
    pad = room * max(high - low, 1e-9)
    return [low - pad, high + pad]


def pair_distributions(statistics: pd.DataFrame, top: int = 12,
                       title: str = "Attention per field pair, across instances") -> go.Figure:
    """Box plots of each pair's attention over instances (box: quartiles, whiskers: 10th and 90th
    percentiles) for the pairs with the highest mean, from `afm.explain.statistics.pair_statistics`; only the
    summary travels to the browser, however large the split."""
    rows = statistics.sort_values("mean_attention", ascending=False, kind="stable").head(top)
    names = (rows.field_a + " x " + rows.field_b).tolist()
    fig = go.Figure(go.Box(x=names, q1=rows.q25_attention, median=rows.median_attention, q3=rows.q75_attention,
                           lowerfence=rows.q10_attention, upperfence=rows.q90_attention, mean=rows.mean_attention,
                           marker_color=PALETTE[0], name="attention", boxpoints=False))
    fig.add_annotation(text=MEAN_LINE, showarrow=False, xref="paper", yref="paper", x=0, y=1.02, xanchor="left",
                       yanchor="bottom", font=dict(size=11, color="#4B5563"))
    return _layout(fig, title, "field pair", "attention", showlegend=False)


MEAN_LINE = "box: middle half of the instances; line: median; dashed line: mean; whiskers: 10th to 90th percentile"


def shape_distributions(shapes: dict[str, pd.DataFrame], column: str = "normalised_entropy",
                        title: str | None = None) -> go.Figure:
    """Overlaid histograms of an attention-shape column (see `afm.explain.statistics.attention_shape`), one trace
    per dataset or model, normalised to probability so different sizes compare."""
    axis = {"normalised_entropy": "attention entropy / log(pairs)", "top3_mass": "attention mass on the top 3 pairs"}
    fig = go.Figure([go.Histogram(x=frame[column], name=name, histnorm="probability", opacity=0.6,
                                  marker_color=PALETTE[i % len(PALETTE)], xbins=dict(start=0, end=1, size=0.025))
                     for i, (name, frame) in enumerate(shapes.items())])
    fig.update_layout(barmode="overlay")
    return _layout(fig, title or axis.get(column, column), axis.get(column, column), "share of instances")


def error_scatter(errors: pd.DataFrame, title: str = "Per-instance absolute error, FM vs AFM",
                  baseline: str = "FM", model: str = "AFM") -> go.Figure:
    """|baseline error| against |model error| per instance (the `fm_*` and `afm_*` columns of
    `afm.explain.compare.paired_errors`); points under the diagonal are where the model is closer."""
    fm_abs, afm_abs = errors.fm_error.abs(), errors.afm_error.abs()
    top = float(max(fm_abs.max(), afm_abs.max(), 1e-9))
    fig = go.Figure([
        go.Scattergl(x=fm_abs, y=afm_abs, mode="markers", marker=dict(color=PALETTE[0], size=4, opacity=0.4),
                     customdata=np.stack([errors.row, errors.label], axis=1), name="instances",
                     hovertemplate="row %{customdata[0]}, label %{customdata[1]:+g}<br>|" + baseline + " error| %{x:.4f}"
                                   "<br>|" + model + " error| %{y:.4f}<extra></extra>"),
        go.Scatter(x=[0, top], y=[0, top], mode="lines", line=dict(color=PALETTE[7], dash="dash"), name="equal error"),
    ])
    return _layout(fig, title, f"|{baseline} error|", f"|{model} error| (below the dashed line: {model} is closer)")


def segment_bars(segments: pd.DataFrame, kinds: list[str] | None = None, title: str = "RMSE by segment",
                 names: tuple[str, str] = ("FM", "AFM")) -> go.Figure:
    """Grouped bars of the baseline's and the model's RMSE per segment (see
    `afm.explain.compare.errors_by_segment`: its `fm_*` and `afm_*` columns), optionally only some kinds."""
    if kinds is not None:
        segments = segments[segments.segment_kind.isin(kinds)]
    labels = segments.segment_kind + ": " + segments.segment
    fig = go.Figure([
        go.Bar(x=labels, y=segments[f"{kind}_rmse"], name=name, marker_color=MODEL_COLOURS[kind],
               customdata=segments.n, hovertemplate="%{x}<br>RMSE %{y:.4f}<br>n %{customdata}<extra>" + name + "</extra>")
        for kind, name in zip((FM_KIND, AFM_KIND), names)])
    fig.update_layout(barmode="group")
    return _layout(fig, title, "segment", "RMSE")


def learning_curves(histories: dict[str, list[dict]], title: str = "Learning curves") -> go.Figure:
    """Train (dotted) and validation (solid) RMSE per epoch, one colour per model."""
    traces = []
    for i, (name, history) in enumerate(histories.items()):
        colour = MODEL_COLOURS.get(name.lower(), PALETTE[i % len(PALETTE)])
        epochs = [row["epoch"] for row in history]
        for split, dash in (("train", "dot"), ("validation", "solid")):
            traces.append(go.Scatter(x=epochs, y=[row[f"{split}_rmse"] for row in history], mode="lines+markers",
                                     name=f"{name} {split}", line=dict(color=colour, dash=dash),
                                     hovertemplate="epoch %{x}<br>RMSE %{y:.4f}<extra>" + f"{name} {split}</extra>"))
    return _layout(go.Figure(traces), title, "epoch", "RMSE")


def study_curves(sweeps: pd.DataFrame, title: str = "Validation RMSE against each hyperparameter") -> go.Figure:
    """One panel per swept hyperparameter (see `afm.studies.sweep_table`)."""
    from plotly.subplots import make_subplots

    parameters = list(dict.fromkeys(sweeps.parameter))
    fig = make_subplots(rows=1, cols=max(1, len(parameters)), subplot_titles=parameters, shared_yaxes=True)
    for i, parameter in enumerate(parameters, start=1):
        rows = sweeps[sweeps.parameter == parameter]
        fig.add_trace(go.Scatter(x=[f"{v:g}" for v in rows.value], y=rows.validation_rmse, mode="lines+markers",
                                 name=parameter, marker_color=PALETTE[0], showlegend=False,
                                 hovertemplate=parameter + "=%{x}<br>validation RMSE %{y:.4f}<extra></extra>"),
                      row=1, col=i)
    fig.update_yaxes(title_text="validation RMSE", row=1, col=1)
    return _layout(fig, title, "", "validation RMSE")


def pair_bands(bands: pd.DataFrame, title: str, value_name: str, top: int = 20) -> go.Figure:
    """One measure across a set of models: per field pair the median (bar) and the 10-90% band across
    the models (whiskers), the `top` pairs by median, largest on top; robust pairs (in the top k of
    every model) in the main colour, the others grey."""
    shown = bands.sort_values("median", ascending=False, kind="stable").head(top).iloc[::-1]
    labels = (shown.field_a + " x " + shown.field_b).tolist()
    colours = [PALETTE[0] if robust else "#9AA5B1" for robust in shown.robust]
    traces, axis = [], f"{value_name} (median; whiskers: 10-90% across models)"
    if "null_q10" in shown:  # the null's 10-90% band behind each bar, in grey
        traces.append(go.Bar(x=shown.null_q90 - shown.null_q10, base=shown.null_q10, y=labels, orientation="h",
                             marker_color="rgba(120, 120, 120, 0.35)", name="null (permuted labels), 10-90%",
                             width=0.9, hovertemplate="%{y}<br>null 10-90%: %{base:.4g} to %{x:.4g} wide<extra></extra>"))
        axis += "; grey: the null's 10-90%"
    traces.append(go.Bar(
        x=shown["median"], y=labels, orientation="h", marker_color=colours, name="trained models, median",
        width=0.5, error_x=dict(type="data", symmetric=False, array=shown.q90 - shown["median"],
                                arrayminus=shown["median"] - shown.q10, color="#1F2933", thickness=1.2),
        hovertemplate="%{y}<br>median " + value_name + ": %{x:.4g}<extra></extra>"))
    fig = go.Figure(traces)
    fig.update_layout(barmode="overlay", showlegend=len(traces) > 1)
    return _layout(fig, title, axis, "", height=max(300, 22 * len(shown) + 140))


def value_matrix(table: pd.DataFrame, title: str, value_name: str, diverging: bool = True) -> go.Figure:
    """A value-by-value table of one field pair (rows: the first field's values) as a heatmap."""
    z = table.to_numpy(dtype=float)
    scale = dict(colorscale=DIVERGING, zmid=0.0) if diverging else dict(colorscale=SEQUENTIAL)
    fig = go.Figure(go.Heatmap(z=z, x=list(table.columns), y=list(table.index), colorbar=dict(title=value_name),
                               hoverongaps=False, hovertemplate="%{y} x %{x}<br>" + value_name + ": %{z:.4g}<extra></extra>",
                               **scale))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, "", "", height=max(320, 24 * len(table) + 160))


def field_attention_maps(maps: np.ndarray, field_names: list[str], title: str = "Self-attention over fields",
                         feature_names: list[str] | None = None) -> go.Figure:
    """One field-by-field map per layer (rows) and head (columns), (layers, heads, m, m), on one colour
    scale from 0: row i says how field i's output weighs every field (each row sums to 1)."""
    from plotly.subplots import make_subplots

    layers, heads, m, _ = maps.shape
    labels = feature_names or field_names
    fig = make_subplots(rows=layers, cols=heads, horizontal_spacing=0.06, vertical_spacing=0.08,
                        subplot_titles=[f"layer {l + 1}, head {h + 1}" for l in range(layers) for h in range(heads)])
    top = float(np.nanmax(maps)) if maps.size else 1.0
    for layer in range(layers):
        for head in range(heads):
            hover = [[f"{labels[i]} reads {labels[j]}: {maps[layer, head, i, j]:.3f}" for j in range(m)] for i in range(m)]
            fig.add_trace(go.Heatmap(z=maps[layer, head], x=field_names, y=field_names, zmin=0, zmax=top,
                                     colorscale=SEQUENTIAL, text=hover, hoverinfo="text",
                                     showscale=layer == 0 and head == 0, colorbar=dict(title="attention")),
                          row=layer + 1, col=head + 1)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-60, tickfont=dict(size=9))
    fig.update_yaxes(tickfont=dict(size=9))
    return _layout(fig, title, "", "", height=max(360, layers * (14 * m + 140)))
