"""Every chart shows exactly the computed values it was given."""
import numpy as np
import plotly.graph_objects as go
import pytest

from afm.explain import charts
from afm.explain.compare import errors_by_segment, paired_errors
from afm.explain.parts import decompose, explain_split
from afm.explain.statistics import attention_shape, pair_statistics


@pytest.fixture(scope="module")
def explained(trained_pair, synthetic):
    return explain_split(trained_pair["afm"], synthetic, "test")


@pytest.fixture(scope="module")
def errors(trained_pair, synthetic):
    return paired_errors(trained_pair["fm"], trained_pair["afm"], synthetic, "test")


def test_pair_heatmap_of_an_instance_and_of_the_mean(explained, synthetic):
    values = explained.parts["attention"][7]
    names = [synthetic.feature_names[i] for i in explained.x[7]]
    fig = charts.pair_heatmap(values, synthetic.field_names, feature_names=names)
    assert isinstance(fig, go.Figure)
    z = np.asarray(fig.data[0].z, dtype=float)
    rows, cols = np.triu_indices(8, k=1)
    np.testing.assert_array_equal(z[rows, cols], values.astype(float))
    assert np.isnan(z[cols, rows]).all() and np.isnan(np.diag(z)).all()
    assert names[0] in fig.data[0].text[0][1] and f"{values[0]:.6g}" in fig.data[0].text[0][1]
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    mean = charts.pair_heatmap(explained.parts["attention"].mean(0), synthetic.field_names)
    np.testing.assert_allclose(np.asarray(mean.data[0].z, dtype=float)[rows, cols], explained.parts["attention"].mean(0))


def test_pair_bars_are_ranked_with_names(explained):
    mean = explained.parts["attention"].mean(0)
    fig = charts.pair_bars(explained.labels, mean, top=5)
    order = np.argsort(-mean)[:5]
    assert list(fig.data[0].y) == [explained.labels[i] for i in order][::-1]
    np.testing.assert_array_equal(fig.data[0].x, mean[order][::-1])


def test_waterfall_steps_add_up_to_the_prediction(trained_pair, synthetic):
    result = decompose(trained_pair["afm"], synthetic, "test", 11)
    fig = charts.decomposition_waterfall(result, top_pairs=5)
    x = list(fig.data[0].x)  # horizontal: a step a row
    assert fig.data[0].orientation == "h"
    assert x[0] == result["bias"] and x[-1] == result["prediction"]
    assert x[2:7] == [p["contribution"] for p in result["pairs"][:5]]
    assert sum(x[:-1]) == pytest.approx(result["prediction"], abs=1e-5)
    assert list(fig.data[0].measure) == ["relative"] * (len(x) - 1) + ["total"]
    assert fig.data[0].y[2] == f"{result['pairs'][0]['feature_a']} x<br>{result['pairs'][0]['feature_b']}"


@pytest.mark.parametrize("values", [[0.1, 5.0, -9.0, 0.2, -3.7], [-40.0, 0.01, 0.02, -39.97], [1e-6, 2e-6, 3e-6],
                                    [3.0, 4.0, 7.0]])
def test_waterfall_labels_stay_inside_the_plot_at_any_value(values):
    """Every running total (where a bar ends and its label starts) lies inside the axis range, with room for
    the label beyond it: labels were cut at the top and bottom."""
    levels = np.concatenate([[0.0], np.cumsum(values[:-1]), [values[-1]]])
    low, high = charts.waterfall_range(values)
    span = high - low
    assert low < levels.min() - 0.1 * span / 1.36 and high > levels.max() + 0.1 * span / 1.36
    decomposition = {"bias": values[0], "first_order_total": values[1], "first_order": [], "prediction": values[-1],
                     "pairs": [{"feature_a": "a", "feature_b": f"b{i}", "contribution": v, "attention": 1.0,
                                "interaction": v} for i, v in enumerate(values[2:-1])]}
    fig = charts.decomposition_waterfall(decomposition)
    assert list(fig.layout.xaxis.range) == [low, high] and fig.data[0].cliponaxis is False


def test_planted_pairs_are_coloured_and_named(explained):
    mean = explained.parts["attention"].mean(0)
    planted = ["app_category x daytime", "user_group x weather"]
    fig = charts.pair_bars(explained.labels, mean, top=8, highlight=planted)
    marked = next(t for t in fig.data if t.name == "planted in the data")
    assert set(marked.y) == set(planted) and marked.marker.color == charts.PALETTE[5]
    others = next(t for t in fig.data if t.name == "other pairs")
    assert not set(others.y) & set(planted) and len(others.y) + len(marked.y) == 8
    order = np.argsort(-mean)[:8]
    assert list(fig.layout.yaxis.categoryarray) == [explained.labels[i] for i in order][::-1]  # still ranked
    plain = charts.pair_bars(explained.labels, mean, top=8)
    assert len(plain.data) == 1 and not plain.data[0].showlegend


def test_side_by_side_heatmaps_share_one_colour_scale(explained):
    a, b = explained.parts["attention"].mean(0), explained.parts["attention"][3]
    shared = charts.shared_range(a, b)
    assert shared == (min(a.min(), b.min()), max(a.max(), b.max()))
    maps = [charts.pair_heatmap(v, explained.dataset.field_names, value_range=shared) for v in (a, b)]
    assert {(m.data[0].zmin, m.data[0].zmax) for m in maps} == {shared}


def test_legends_sit_below_the_plot_and_the_mean_line_is_explained(explained, errors):
    for fig in (charts.error_scatter(errors), charts.learning_curves({"FM": [{"epoch": 0, "train_rmse": 1,
                                                                              "validation_rmse": 1}]})):
        assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0  # it covered the data
    boxes = charts.pair_distributions(pair_statistics(explained), top=4)
    assert "dashed line: mean" in boxes.layout.annotations[0].text


def test_pair_distributions(explained):
    stats = pair_statistics(explained)
    fig = charts.pair_distributions(stats, top=4)
    top = stats.head(4)
    assert list(fig.data[0].x) == (top.field_a + " x " + top.field_b).tolist()
    np.testing.assert_array_equal(fig.data[0].median, top.median_attention)
    np.testing.assert_array_equal(fig.data[0].q1, top.q25_attention)
    np.testing.assert_array_equal(fig.data[0].upperfence, top.q90_attention)


def test_shape_distributions_one_trace_per_dataset(explained, trained_pair, synthetic):
    shapes = {"AFM": attention_shape(explained),
              "FM": attention_shape(explain_split(trained_pair["fm"], synthetic, "test"))}
    fig = charts.shape_distributions(shapes, "top3_mass")
    assert [t.name for t in fig.data] == ["AFM", "FM"]
    np.testing.assert_array_equal(fig.data[0].x, shapes["AFM"].top3_mass)
    assert fig.data[0].histnorm == "probability"


def test_error_scatter_and_segments(errors, synthetic):
    fig = charts.error_scatter(errors)
    np.testing.assert_array_equal(fig.data[0].x, errors.fm_error.abs())
    np.testing.assert_array_equal(fig.data[0].y, errors.afm_error.abs())
    segments = errors_by_segment(errors, synthetic)
    bars = charts.segment_bars(segments, kinds=["label"])
    assert [t.name for t in bars.data] == ["FM", "AFM"]
    label_rows = segments[segments.segment_kind == "label"]
    np.testing.assert_array_equal(bars.data[1].y, label_rows.afm_rmse)
    assert list(bars.data[0].x) == ["label: " + s for s in label_rows.segment]


def test_learning_curves(trained_pair):
    history = trained_pair["afm_result"].history
    fig = charts.learning_curves({"FM": trained_pair["fm_result"].history, "AFM": history})
    assert [t.name for t in fig.data] == ["FM train", "FM validation", "AFM train", "AFM validation"]
    assert list(fig.data[3].y) == [row["validation_rmse"] for row in history]
    assert fig.data[0].line.color == charts.MODEL_COLOURS["fm"]


def test_study_curves():
    import pandas as pd

    sweeps = pd.DataFrame({"parameter": ["t", "t", "lambda"], "value": [4, 16, 0.5],
                           "validation_rmse": [0.5, 0.4, 0.45], "best_epoch": [1, 2, 3], "seconds": [1, 1, 1]})
    fig = charts.study_curves(sweeps)
    assert len(fig.data) == 2 and list(fig.data[0].x) == ["4", "16"] and list(fig.data[0].y) == [0.5, 0.4]
    assert list(fig.data[1].y) == [0.45]
