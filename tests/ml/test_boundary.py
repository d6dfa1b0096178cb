"""Decision-boundary lab: data, split, fits and surfaces against scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import make_circles, make_moons
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

from app.ml.boundary import (
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    BoundarySettings,
    contour_segments,
    decision_surface,
    fit_boundary,
    make_dataset,
    mesh_resolution,
    read_boundary,
    run_boundary,
    split_dataset,
    svm_max_iter,
)


def test_moons_and_circles_are_sklearns():
    X, y = make_dataset("moons", n_samples=150, noise=0.3, seed=4)
    X2, y2 = make_moons(n_samples=150, noise=0.3, random_state=4)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X, y = make_dataset("circles", n_samples=150, noise=0.1, seed=4)
    X2, y2 = make_circles(n_samples=150, noise=0.1, factor=0.5, random_state=4)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


def test_xor_and_blobs_have_the_promised_shape_without_noise():
    X, y = make_dataset("xor", n_samples=400, noise=0.0, seed=2)
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] > 0).astype(int))
    X, y = make_dataset("blobs", n_samples=400, noise=0.0, seed=2)
    # Linearly separable: the line x0 + x1 = 0 splits the two blobs.
    np.testing.assert_array_equal(y, (X.sum(axis=1) > 0).astype(int))


def test_split_is_sklearns_stratified_split():
    X, y = make_dataset("moons", n_samples=101, seed=9)
    got = split_dataset(X, y, test_fraction=0.25, seed=9)
    want = train_test_split(X, y, test_size=0.25, random_state=9, stratify=y)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def _by_hand(model, s, n_train):
    return {
        "rbf": SVC(kernel="rbf", C=s.C, gamma=s.gamma),
        "poly": SVC(kernel="poly", C=s.C, gamma=s.gamma, degree=s.degree, coef0=1.0),
        "linear": LinearSVC(C=s.C, loss="hinge", dual=True, max_iter=svm_max_iter(n_train, kernel="linear")),
        "knn": KNeighborsClassifier(n_neighbors=s.k),
        "tree": DecisionTreeClassifier(max_depth=s.max_depth, random_state=s.seed),
        "logreg": LogisticRegression(C=s.C, max_iter=1000),
    }[model]


@pytest.mark.parametrize("model,kwargs", [
    ("rbf", dict(model="svm", kernel="rbf", C=10.0, gamma=2.0, dataset="moons")),
    ("poly", dict(model="svm", kernel="poly", C=1.0, gamma=1.0, degree=3, dataset="circles")),
    ("linear", dict(model="svm", kernel="linear", C=1.0, dataset="blobs", noise=0.5)),
    ("knn", dict(model="knn", k=7, dataset="xor")),
    ("tree", dict(model="tree", max_depth=5, dataset="xor", seed=3)),
    ("logreg", dict(model="logreg", C=0.5, dataset="moons")),
])
def test_accuracy_matches_sklearn_by_hand(model, kwargs):
    s = BoundarySettings(n_samples=160, **kwargs)
    r = run_boundary(s, resolution=20)
    X, y = make_dataset(s.dataset, n_samples=160, noise=s.noise, seed=s.seed)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=s.test_fraction, random_state=s.seed,
                                              stratify=y)
    clf = _by_hand(model, s, len(y_tr)).fit(X_tr, y_tr)
    assert r.train_accuracy == pytest.approx(clf.score(X_tr, y_tr), abs=1e-12)
    assert r.test_accuracy == pytest.approx(clf.score(X_te, y_te), abs=1e-12)
    np.testing.assert_array_equal(r.test_pred, clf.predict(X_te))
    np.testing.assert_array_equal(r.misclassified, np.flatnonzero(clf.predict(X_te) != y_te))
    if model in ("rbf", "poly"):
        np.testing.assert_array_equal(r.support_indices, clf.support_)
        assert r.n_support == len(clf.support_)


def test_linear_svm_support_vectors_are_points_on_or_inside_the_margin():
    s = BoundarySettings(model="svm", kernel="linear", dataset="moons", n_samples=200)
    r = run_boundary(s, resolution=20)
    clf = _by_hand("linear", s, len(r.y_train)).fit(r.X_train, r.y_train)
    margin = np.where(r.y_train == 1, 1, -1) * clf.decision_function(r.X_train)
    np.testing.assert_array_equal(r.support_indices, np.flatnonzero(margin <= 1 + 1e-3))
    # Every misclassified training point is a support vector.
    assert set(np.flatnonzero(margin < 0)) <= set(r.support_indices.tolist())
    # libsvm on the same objective agrees on the count within a few points.
    exact = SVC(kernel="linear", C=s.C).fit(r.X_train, r.y_train)
    assert abs(r.n_support - len(exact.support_)) <= 5


def test_surface_is_the_models_decision_function_and_probability():
    X, y = make_dataset("moons", n_samples=120, seed=0)
    svc = SVC(C=3.0, gamma=1.5).fit(X, y)
    s = decision_surface(svc, x_range=(-1, 2), y_range=(-1, 1.5), resolution=15)
    gx, gy = np.meshgrid(s["x"], s["y"])
    np.testing.assert_allclose(s["z"].ravel(), svc.decision_function(np.column_stack([gx.ravel(), gy.ravel()])))
    assert (s["kind"], s["level"]) == ("decision", 0.0)
    knn = KNeighborsClassifier(5).fit(X, y)
    s = decision_surface(knn, x_range=(-1, 2), y_range=(-1, 1.5), resolution=15)
    np.testing.assert_allclose(s["z"].ravel(), knn.predict_proba(np.column_stack([gx.ravel(), gy.ravel()]))[:, 1])
    assert (s["kind"], s["level"]) == ("probability", 0.5)


def test_contour_of_a_circle_lies_on_the_circle():
    xs = np.linspace(-2, 2, 81)
    ys = np.linspace(-2, 2, 61)
    z = xs[None, :] ** 2 + ys[:, None] ** 2 - 1.0
    seg = contour_segments(xs, ys, z, level=0.0)
    pts = np.column_stack([seg["x"], seg["y"]])
    pts = pts[~np.isnan(pts[:, 0])]
    radius = np.hypot(pts[:, 0], pts[:, 1])
    assert np.all(np.abs(radius - 1.0) < 0.01)
    # Segments are (start, end, gap) triples; their lengths add up to 2 pi.
    a = np.column_stack([seg["x"][0::3], seg["y"][0::3]])
    b = np.column_stack([seg["x"][1::3], seg["y"][1::3]])
    assert np.linalg.norm(b - a, axis=1).sum() == pytest.approx(2 * np.pi, rel=0.01)
    assert np.isnan(seg["x"][2::3]).all()


def test_contour_edge_cases():
    xs = ys = np.linspace(0, 1, 4)
    flat = contour_segments(xs, ys, np.ones((4, 4)), level=0.0)
    assert flat["x"].size == 0
    # A saddle cell (opposite corners above) gives two separate segments.
    saddle = contour_segments([0, 1], [0, 1], [[1.0, -1.0], [-1.0, 1.0]], level=0.0)
    assert saddle["x"].size == 6
    with pytest.raises(ValueError, match="shape"):
        contour_segments(xs, ys, np.ones((3, 4)))


def test_mesh_adapts_to_model_cost():
    assert mesh_resolution(model="tree") == MAX_RESOLUTION
    assert mesh_resolution(model="svm", kernel="linear", n_support=5000) == MAX_RESOLUTION
    sizes = [mesh_resolution(model="svm", n_support=n) for n in (10, 200, 600, 2000)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1] == MIN_RESOLUTION
    assert mesh_resolution(model="knn", k=50) < mesh_resolution(model="knn", k=1)
    small = run_boundary(BoundarySettings(n_samples=100, noise=0.2))
    large = run_boundary(BoundarySettings(n_samples=1000, noise=0.8))
    assert large.n_support > small.n_support and large.resolution < small.resolution


def test_high_c_and_gamma_memorise_the_training_set():
    base = run_boundary(BoundarySettings(noise=0.3, C=1.0, gamma=1.0), resolution=30)
    wild = run_boundary(BoundarySettings(noise=0.3, C=1000.0, gamma=100.0), resolution=30)
    assert wild.train_accuracy == 1.0
    assert wild.test_accuracy < base.test_accuracy - 0.05
    assert wild.reading.startswith("High C and high gamma")
    assert "memorising" in wild.reading
    assert "generalises" in base.reading


def test_straight_boundary_on_moons_reads_as_underfitting():
    r = run_boundary(BoundarySettings(model="logreg"), resolution=20)
    assert "straight line" in r.reading and "underfitting" in r.reading


def test_one_class_after_split_is_a_message_not_an_exception():
    X = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5], [3.0, 1.0]])
    r = fit_boundary(X[:3], X[3:], [1, 1, 1], [0], settings=BoundarySettings())
    assert r.error and "only one class" in r.error
    assert r.train_accuracy is None and r.surface is None
    json.dumps(r.to_dict(), allow_nan=False)


def test_k_larger_than_training_set_is_capped_with_a_note():
    r = run_boundary(BoundarySettings(model="knn", k=50, n_samples=40, test_fraction=0.5), resolution=20)
    assert any("using k = 20" in note for note in r.notes)
    assert r.train_accuracy is not None


def test_zero_noise_blobs_are_separated_perfectly():
    r = run_boundary(BoundarySettings(dataset="blobs", noise=0.0, kernel="linear"), resolution=20)
    assert r.train_accuracy == 1.0 and r.test_accuracy == 1.0


def test_steep_polynomial_kernel_hits_the_iteration_cap_in_bounded_time():
    s = BoundarySettings(kernel="poly", degree=5, C=1000.0, gamma=100.0, noise=1.0, n_samples=600)
    r = run_boundary(s, resolution=20)
    assert r.converged is False
    assert "iteration cap" in r.reading
    assert any("stopped after" in note for note in r.notes)


def test_boundary_line_separates_the_predicted_regions():
    r = run_boundary(BoundarySettings(model="logreg", dataset="blobs"), resolution=50)
    pts = np.column_stack([r.boundary["x"], r.boundary["y"]])
    pts = pts[~np.isnan(pts[:, 0])]
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(r.X_train, r.y_train)
    np.testing.assert_allclose(clf.predict_proba(pts)[:, 1], 0.5, atol=0.01)


def test_same_controls_same_results_and_json_friendly():
    s = BoundarySettings(model="tree", max_depth=6, dataset="xor", seed=17)
    a, b = run_boundary(s).to_dict(), run_boundary(s).to_dict()
    a.pop("fit_ms"), b.pop("fit_ms")
    assert a == b
    json.dumps(a, allow_nan=False)


@pytest.mark.parametrize("kwargs", [
    {"dataset": "spiral"}, {"dataset": None}, {"model": {"x": 1}}, {"kernel": "sigmoid"},
    {"n_samples": 10}, {"n_samples": 10**9}, {"n_samples": 100.5}, {"noise": -1.0},
    {"noise": float("inf")}, {"C": 0.0}, {"C": 1e9}, {"gamma": "1"}, {"degree": 6},
    {"k": 0}, {"max_depth": None}, {"test_fraction": 0.0}, {"seed": True},
])
def test_settings_reject_bad_values(kwargs):
    with pytest.raises(ValueError):
        BoundarySettings(**kwargs)


def test_read_boundary_validates_accuracies():
    with pytest.raises(ValueError):
        read_boundary(BoundarySettings(), train_accuracy=1.5, test_accuracy=0.5)


def test_docstring_examples_run():
    import doctest

    import app.ml.boundary as module

    result = doctest.testmod(module)
    assert result.attempted > 5 and result.failed == 0
