"""Tests for app.figures.influence and app.figures.explain: what the reader sees."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from app.figures.common import PALETTE
from app.figures.explain import counterfactual_table, probability_figure, waterfall_figure
from app.figures.influence import importance_figure, pdp2d_figure, pdp_figure, shap_dependence_figure

PERMUTATION = {"features": ["b", "a", "c"], "mean": [0.30, 0.10, -0.01], "std": [0.02, 0.01, 0.005],
               "scoring": "accuracy", "n_samples": 150, "n_repeats": 5}


def assert_house_style(fig: go.Figure) -> None:
    layout = fig.layout
    assert layout.template.layout.to_plotly_json() == go.layout.Template(
        pio_template()).layout.to_plotly_json()
    assert layout.title.text


def pio_template():
    import plotly.io as pio
    return pio.templates["plotly_white"]


def annotation_texts(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


# ---------------------------------------------------------------- importance

def test_importance_bars_are_sorted_with_the_largest_on_top_and_error_bars():
    fig = importance_figure(PERMUTATION, method_label="Permutation importance")
    assert_house_style(fig)
    bar = fig.data[0]
    assert bar.orientation == "h"
    assert list(bar.y) == ["c", "a", "b"]  # drawn bottom-up: largest last = on top
    assert list(bar.x) == [-0.01, 0.10, 0.30]
    assert list(bar.error_x.array) == [0.005, 0.01, 0.02]
    assert bar.marker.color[0] == PALETTE["vermillion"] and bar.marker.color[2] == PALETTE["blue"]
    assert "shuffled" in fig.layout.title.text and "150 rows" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "Drop in accuracy when shuffled"


def test_importance_top_k_and_shap_and_impurity_wording():
    shap_result = {"features": list("abcdef"), "values": [6, 5, 4, 3, 2, 1], "std": None,
                   "scoring": "mean |SHAP value|", "output_space": "probability"}
    fig = importance_figure(shap_result, method_label="Mean |SHAP|", top_k=3)
    assert list(fig.data[0].y) == ["c", "b", "a"]
    assert fig.data[0].error_x.array is None
    assert "probability" in fig.layout.xaxis.title.text and "Top 3 of 6" in fig.layout.title.text
    impurity = importance_figure({"features": ["x"], "mean": [1.0], "std": None,
                                  "scoring": "mean decrease in impurity"}, method_label="Impurity")
    assert "impurity" in impurity.layout.xaxis.title.text.lower()


@pytest.mark.parametrize("result", [None, {}, {"features": [], "mean": []}])
def test_importance_empty_state_says_why(result):
    fig = importance_figure(result, method_label="Permutation importance")
    assert len(fig.data) == 0
    assert any("No importance" in t for t in annotation_texts(fig))


# ---------------------------------------------------------------- PDP / ICE

PDP = {"feature": "age", "grid": [20, 40, 60], "average": [0.2, 0.5, 0.6], "centered_average": [0.0, 0.3, 0.4],
       "ice": [[0.1, 0.4, 0.5], [0.3, 0.6, 0.7]], "centered_ice": [[0.0, 0.3, 0.4], [0.0, 0.3, 0.4]],
       "kind": "numeric", "target": 1}


def test_pdp_draws_thin_translucent_ice_and_a_thick_average():
    fig = pdp_figure(PDP, target_label="approved")
    assert_house_style(fig)
    ice, average = fig.data
    assert ice.line.width == 1 and "0.35" in ice.line.color
    assert list(ice.x) == [20, 40, 60, None, 20, 40, 60, None]
    assert list(ice.y) == [0.1, 0.4, 0.5, None, 0.3, 0.6, 0.7, None]
    assert average.line.width > 3 and list(average.y) == [0.2, 0.5, 0.6]
    assert fig.layout.yaxis.title.text == "Predicted probability of approved"
    assert fig.layout.xaxis.title.text == "age"


def test_centered_pdp_starts_at_zero():
    fig = pdp_figure(PDP, centered=True)
    assert list(fig.data[1].y) == [0.0, 0.3, 0.4]
    assert list(fig.data[0].y)[:3] == [0.0, 0.3, 0.4]
    assert fig.layout.yaxis.title.text.startswith("Change in predicted probability of 1")


def test_categorical_pdp_is_bars():
    pdp = dict(PDP, feature="color", grid=["blue", "red", "green"], kind="categorical")
    fig = pdp_figure(pdp)
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert len(bars) == 1 and list(bars[0].x) == ["blue", "red", "green"]
    assert list(bars[0].y) == [0.2, 0.5, 0.6]
    assert fig.layout.xaxis.type == "category"


def test_pdp_empty_state():
    fig = pdp_figure(None)
    assert len(fig.data) == 0 and any("No partial dependence" in t for t in annotation_texts(fig))


def test_pdp2d_heatmap_puts_the_second_feature_on_y():
    pdp2d = {"features": ["age", "income"], "grid_x": [1, 2, 3], "grid_y": [10, 20],
             "values": [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], "target": "yes"}
    fig = pdp2d_figure(pdp2d)
    heat = fig.data[0]
    assert isinstance(heat, go.Heatmap)
    np.testing.assert_allclose(heat.z, [[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]])
    assert fig.layout.xaxis.title.text == "age" and fig.layout.yaxis.title.text == "income"
    assert heat.colorbar.title.text == "P(yes)"
    assert len(pdp2d_figure({}).data) == 0


# ---------------------------------------------------------------- SHAP dependence

SAMPLE = {"features": ["age", "color", "income"],
          "values": [[0.1, 0.0, 0.2], [-0.2, 0.1, 0.0], [0.3, -0.1, 0.1]],
          "data": [[30, "red", 10.0], [50, "blue", 20.0], [70, "red", 30.0]],
          "output_space": "log-odds"}


def test_shap_dependence_plots_value_against_contribution():
    fig = shap_dependence_figure(SAMPLE, "age")
    assert list(fig.data[0].x) == [30, 50, 70] and list(fig.data[0].y) == [0.1, -0.2, 0.3]
    assert fig.layout.yaxis.title.text == "SHAP value of age (log-odds)"


def test_shap_dependence_coloured_by_a_numeric_feature_has_a_colour_scale():
    fig = shap_dependence_figure(SAMPLE, "age", color_by="income")
    assert list(fig.data[0].marker.color) == [10.0, 20.0, 30.0]
    assert fig.data[0].marker.showscale


def test_shap_dependence_coloured_by_a_category_has_one_trace_per_level():
    fig = shap_dependence_figure(SAMPLE, "age", color_by="color")
    assert [t.name for t in fig.data] == ["color = red", "color = blue"]
    assert list(fig.data[0].x) == [30, 70]


def test_shap_dependence_empty_states():
    assert any("not one of" in t for t in annotation_texts(shap_dependence_figure(SAMPLE, "height")))
    assert any("No SHAP" in t for t in annotation_texts(shap_dependence_figure(None, "age")))


# ---------------------------------------------------------------- waterfall

ROW = {"features": ["age", "income", "color", "size", "grade"], "values": [0.20, -0.05, 0.10, 0.01, -0.02],
       "data": [42, 51.25, "red", "M", 3], "base_value": 0.30, "output": 0.54,
       "output_space": "probability", "target_label": "yes"}


def test_waterfall_goes_from_base_to_prediction_with_labelled_features():
    fig = waterfall_figure(ROW, top_k=3)
    assert_house_style(fig)
    wf = fig.data[0]
    assert isinstance(wf, go.Waterfall) and wf.orientation == "h"
    assert list(wf.y) == ["Average prediction (base value)", "age = 42", "color = red", "income = 51.25",
                          "2 other features", "This prediction"]
    assert list(wf.measure) == ["absolute", "relative", "relative", "relative", "relative", "total"]
    np.testing.assert_allclose(wf.x, [0.30, 0.20, 0.10, -0.05, -0.01, 0.54])
    assert pytest.approx(sum(wf.x[:-1])) == wf.x[-1]
    assert fig.layout.xaxis.title.text == "Predicted probability of yes"
    assert fig.layout.yaxis.autorange == "reversed"


def test_waterfall_feature_values_override_and_empty_state():
    fig = waterfall_figure(ROW, top_k=10, feature_values={"age": "42 years"}, output_label="Risk")
    assert "age = 42 years" in fig.data[0].y and "other features" not in " ".join(fig.data[0].y)
    assert fig.layout.xaxis.title.text == "Risk"
    assert len(waterfall_figure(None).data) == 0


# ---------------------------------------------------------------- probabilities

def test_probability_title_calls_a_close_call():
    prediction = {"classes": ["setosa", "versicolor", "virginica"], "proba": [0.0, 0.51, 0.49],
                  "predicted": "versicolor", "margin": 0.02}
    fig = probability_figure(prediction)
    assert fig.layout.title.text == "Predicted: versicolor, 51% vs 49% - a close call"
    colors = list(fig.data[0].marker.color)
    assert colors[1] == PALETTE["blue"] and colors[0] == colors[2] != PALETTE["blue"]
    assert fig.layout.xaxis.title.text == "Predicted probability"


def test_probability_title_says_confident():
    prediction = {"classes": [0, 1, 2], "proba": [0.02, 0.95, 0.03], "predicted": 1}
    assert probability_figure(prediction).layout.title.text == "Predicted: 1, 95% vs 3% - confident"


def test_regression_prediction_shows_its_interval():
    fig = probability_figure({"value": 12.5, "interval": (10.0, 16.0), "interval_method": "trees"})
    point = fig.data[0]
    assert list(point.x) == [12.5]
    assert list(point.error_x.array) == [3.5] and list(point.error_x.arrayminus) == [2.5]
    assert "interval 10 to 16" in fig.layout.title.text
    no_interval = probability_figure({"value": 3.0, "interval": None, "interval_method": None})
    assert no_interval.data[0].error_x.array is None
    assert "no uncertainty" in no_interval.layout.title.text


def test_probability_empty_states():
    assert len(probability_figure(None).data) == 0
    fig = probability_figure({"classes": [0, 1], "proba": None, "predicted": 1})
    assert "no probabilities" in " ".join(annotation_texts(fig))


# ---------------------------------------------------------------- counterfactual table

def test_counterfactual_table_rows():
    result = {"changes": [{"feature": "age", "before": 30, "after": 46},
                          {"feature": "color", "before": "blue", "after": "red"}],
              "prediction_before": {"predicted": 0, "proba": [0.8, 0.2]},
              "prediction_after": {"predicted": 1, "proba": [0.4, 0.6]}}
    rows = counterfactual_table(result)
    assert rows[0] == {"feature": "age", "before": "30", "after": "46", "change": "+16", "kind": "feature"}
    assert rows[1]["change"] == "blue → red"
    assert rows[2] == {"feature": "Prediction", "before": "0 (80%)", "after": "1 (60%)",
                       "change": "0 (80%) → 1 (60%)", "kind": "prediction"}
    regression = counterfactual_table({"changes": [], "prediction_before": {"value": 1.5},
                                       "prediction_after": {"value": 2.25}})
    assert regression == [{"feature": "Prediction", "before": "1.5", "after": "2.25",
                           "change": "1.5 → 2.25", "kind": "prediction"}]
    assert counterfactual_table(None) == []


def test_waterfall_accepts_a_whole_explain_rows_result_and_shows_its_first_row():
    result = {"features": ["a", "b"], "values": [[0.5, -0.25], [1.0, 1.0]], "data": [[1, "x"], [2, "y"]],
              "base_values": [1.0, 1.0], "base_value": 1.0, "output": [1.25, 3.0], "output_space": "raw",
              "target_label": [None, None]}
    wf = waterfall_figure(result).data[0]
    assert list(wf.y) == ["Average prediction (base value)", "a = 1", "b = x", "This prediction"]
    np.testing.assert_allclose(wf.x, [1.0, 0.5, -0.25, 1.25])
