"""Regression lab: data recipe, fits and errors against scikit-learn pipelines."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, Ridge
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from app.ml.regression_lab import (
    DEFAULTS,
    PRESETS,
    RegressionSettings,
    diagnose_fit,
    fit_polynomial,
    make_regression_data,
    preset_for,
    run_regression_lab,
    true_function,
    validation_curve,
)


def _sklearn_model(penalty: str, alpha: float):
    return {
        "none": LinearRegression(),
        "ridge": Ridge(alpha=alpha),
        "lasso": Lasso(alpha=alpha),
        "elasticnet": ElasticNet(alpha=alpha, l1_ratio=0.5),
    }[penalty]


def _pipeline(degree: int, penalty: str, alpha: float):
    return make_pipeline(PolynomialFeatures(degree, include_bias=False), StandardScaler(),
                         _sklearn_model(penalty, alpha))


def test_data_follows_the_documented_recipe():
    s = RegressionSettings(coefficients=(0.5, -1.0, 0.2), x_min=-2.0, x_max=1.5, noise=0.3,
                           n_samples=80, seed=7, test_fraction=0.25)
    rng = np.random.default_rng(7)
    x = rng.uniform(-2.0, 1.5, 80)
    y = 0.5 - 1.0 * x + 0.2 * x**2 + rng.normal(0.0, 0.3, 80)
    expected = train_test_split(x, y, test_size=0.25, random_state=7)
    for got, want in zip(make_regression_data(s), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_true_function_matches_numpy_polyval():
    x = np.linspace(-3, 3, 11)
    coefs = PRESETS["sine"][1]
    np.testing.assert_allclose(true_function(x, coefs), np.polyval(coefs[::-1], x))


@pytest.mark.parametrize("penalty,alpha", [("none", 0.01), ("ridge", 1e-5), ("ridge", 3.0),
                                           ("lasso", 0.05), ("elasticnet", 0.05)])
@pytest.mark.parametrize("degree", [1, 3, 8])
def test_fit_matches_sklearn_pipeline(penalty, alpha, degree):
    x_tr, x_te, y_tr, y_te = make_regression_data(RegressionSettings(n_samples=80, seed=3))
    fit = fit_polynomial(x_tr, y_tr, degree=degree, penalty=penalty, alpha=alpha)
    pipe = _pipeline(degree, penalty, alpha).fit(x_tr[:, None], y_tr)
    np.testing.assert_allclose(fit["predict"](x_te), pipe.predict(x_te[:, None]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fit["coefficients"], pipe[-1].coef_, rtol=1e-5, atol=1e-6)


def test_degree_15_least_squares_matches_sklearn_r2():
    s = RegressionSettings(degree=15)
    r = run_regression_lab(s)
    x_tr, x_te, y_tr, y_te = make_regression_data(s)
    pipe = _pipeline(15, "none", 0.01).fit(x_tr[:, None], y_tr)
    assert r.train_r2 == pytest.approx(r2_score(y_tr, pipe.predict(x_tr[:, None])), abs=1e-6)
    assert r.test_r2 == pytest.approx(r2_score(y_te, pipe.predict(x_te[:, None])), rel=1e-4)


@pytest.mark.parametrize("penalty,alpha", [("none", 0.01), ("ridge", 0.1), ("lasso", 0.01)])
def test_run_reports_sklearn_r2_and_rmse(penalty, alpha):
    s = RegressionSettings(degree=4, penalty=penalty, alpha=alpha, seed=11, n_samples=120)
    r = run_regression_lab(s)
    x_tr, x_te, y_tr, y_te = make_regression_data(s)
    pipe = _pipeline(4, penalty, alpha).fit(x_tr[:, None], y_tr)
    pred_tr, pred_te = pipe.predict(x_tr[:, None]), pipe.predict(x_te[:, None])
    assert r.train_r2 == pytest.approx(r2_score(y_tr, pred_tr), abs=1e-9)
    assert r.test_r2 == pytest.approx(r2_score(y_te, pred_te), abs=1e-9)
    assert r.train_rmse == pytest.approx(math.sqrt(mean_squared_error(y_tr, pred_tr)), rel=1e-9)
    assert r.test_rmse == pytest.approx(math.sqrt(mean_squared_error(y_te, pred_te)), rel=1e-9)


def test_validation_curve_matches_pipeline_per_degree():
    x_tr, x_te, y_tr, y_te = make_regression_data(DEFAULTS)
    vc = validation_curve(x_tr, y_tr, x_te, y_te, penalty="ridge", alpha=0.01)
    assert vc["degree"] == list(range(1, 16))
    for d, tr, te in zip(vc["degree"], vc["train_rmse"], vc["test_rmse"]):
        pipe = _pipeline(d, "ridge", 0.01).fit(x_tr[:, None], y_tr)
        assert tr == pytest.approx(math.sqrt(mean_squared_error(y_tr, pipe.predict(x_tr[:, None]))), rel=1e-6)
        assert te == pytest.approx(math.sqrt(mean_squared_error(y_te, pipe.predict(x_te[:, None]))), rel=1e-6)


def test_raising_the_degree_moves_from_under_to_over_fitting():
    results = {d: run_regression_lab(RegressionSettings(degree=d)) for d in (1, 3, 15)}
    assert results[1].diagnosis == "underfitting"
    assert results[3].diagnosis == "good fit"
    assert results[15].diagnosis == "overfitting"
    # Train error keeps falling with the degree while the test error rises again.
    vc = results[3].validation
    assert vc["train_rmse"][14] < vc["train_rmse"][2] < vc["train_rmse"][0]
    assert vc["test_rmse"][14] > 1.3 * vc["test_rmse"][2]
    assert results[15].test_rmse - results[15].train_rmse > results[3].test_rmse - results[3].train_rmse


def test_lasso_zeroes_coefficients_and_large_alpha_zeroes_all():
    moderate = run_regression_lab(RegressionSettings(degree=12, penalty="lasso", alpha=0.05))
    assert 0 < np.sum(moderate.coefficients == 0.0) < 12
    huge = run_regression_lab(RegressionSettings(degree=12, penalty="lasso", alpha=1000.0))
    assert np.all(huge.coefficients == 0.0)
    assert huge.diagnosis == "underfitting"
    ridge = run_regression_lab(RegressionSettings(degree=12, penalty="ridge", alpha=0.05))
    assert np.all(ridge.coefficients != 0.0)


@pytest.mark.parametrize("penalty", ["none", "ridge", "lasso", "elasticnet"])
@pytest.mark.parametrize("alpha", [1e-5, 1e3])
def test_alpha_at_both_ends_gives_results_not_exceptions(penalty, alpha):
    r = run_regression_lab(RegressionSettings(degree=10, penalty=penalty, alpha=alpha))
    assert np.all(np.isfinite(r.curve_fit))
    assert r.diagnosis in {"underfitting", "good fit", "overfitting"}
    if penalty != "none" and alpha == 1e3:
        assert r.diagnosis == "underfitting"


def test_tiny_alpha_lasso_reports_non_convergence():
    r = run_regression_lab(RegressionSettings(degree=15, penalty="lasso", alpha=1e-5))
    assert any("before converging" in note for note in r.notes)


def test_degree_above_sample_count_interpolates_with_a_note():
    s = RegressionSettings(n_samples=20, test_fraction=0.5, degree=15)
    r = run_regression_lab(s)
    assert r.x_train.size == 10
    assert any("Degree 15" in note and "10 training points" in note for note in r.notes)
    assert r.train_rmse < 1e-6  # the curve goes through every training point
    assert r.diagnosis == "overfitting"


def test_zero_noise_fits_exactly_at_the_true_degree():
    r = run_regression_lab(RegressionSettings(noise=0.0, degree=5,
                                              coefficients=PRESETS["sine"][1]))
    assert r.train_rmse < 1e-8 and r.test_rmse < 1e-8
    assert r.test_r2 == pytest.approx(1.0)
    assert r.diagnosis == "good fit"


def test_same_controls_same_results():
    s = RegressionSettings(degree=7, penalty="elasticnet", alpha=0.003, seed=42)
    a, b = run_regression_lab(s).to_dict(), run_regression_lab(s).to_dict()
    a.pop("fit_ms"), b.pop("fit_ms")
    assert a == b
    json.dumps(a, allow_nan=False)


def test_preset_for_recognises_presets():
    for name, (_, coefs) in PRESETS.items():
        assert preset_for(coefs) == name
    assert preset_for((0.0, 1.0)) is None


@pytest.mark.parametrize("kwargs", [
    {"degree": 0}, {"degree": 16}, {"degree": 2.5}, {"degree": "3"}, {"degree": None},
    {"alpha": 0.0}, {"alpha": 1e9}, {"noise": -0.1}, {"noise": float("nan")},
    {"n_samples": 10}, {"n_samples": 10**9}, {"test_fraction": 0.9}, {"penalty": "l3"},
    {"penalty": {"a": 1}}, {"coefficients": (1,) * 7}, {"coefficients": "123"},
    {"coefficients": (11.0,)}, {"x_min": 1.0, "x_max": 1.2}, {"seed": True},
])
def test_settings_reject_bad_values(kwargs):
    with pytest.raises(ValueError):
        RegressionSettings(**kwargs)


def test_diagnose_fit_rules():
    assert diagnose_fit(train_rmse=1.0, test_rmse=1.05, noise=0.5, spread=2)[0] == "underfitting"
    assert diagnose_fit(train_rmse=0.45, test_rmse=0.5, noise=0.5, spread=2)[0] == "good fit"
    assert diagnose_fit(train_rmse=0.3, test_rmse=0.9, noise=0.5, spread=2)[0] == "overfitting"
    # A small test set earns a larger allowance before calling overfitting.
    assert diagnose_fit(train_rmse=0.45, test_rmse=0.65, noise=0.5, spread=2, n_test=100)[0] == "overfitting"
    assert diagnose_fit(train_rmse=0.45, test_rmse=0.65, noise=0.5, spread=2, n_test=6)[0] == "good fit"
    # With no noise the yardstick is 5% of the spread of the truth.
    assert diagnose_fit(train_rmse=0.0, test_rmse=0.05, noise=0.0, spread=2)[0] == "good fit"
    with pytest.raises(ValueError):
        diagnose_fit(train_rmse=float("nan"), test_rmse=1, noise=0.5, spread=1)


def test_docstring_examples_run():
    import doctest

    import app.ml.regression_lab as module

    result = doctest.testmod(module)
    assert result.attempted > 5 and result.failed == 0
