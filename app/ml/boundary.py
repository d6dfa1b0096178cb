"""Decision-boundary explorer: two-feature toy data, a classifier, its regions.

Everything the boundary lab shows is computed here: the generated data set
(moons, circles, linearly separable blobs, XOR), the seeded train/test split,
the fitted classifier (SVM, k-nearest neighbours, decision tree, logistic
regression), the decision surface on a mesh whose resolution adapts to the
cost of the model, the boundary and margin lines as polylines (so a page can
keep an old boundary as an outline without refitting), and a one-line plain
English reading of the state.

The recipe is fixed so that a reader can reproduce any number by hand:
``make_dataset`` then ``split_dataset`` (stratified ``train_test_split`` with
``random_state=seed``) then ``make_classifier(settings).fit(X_train, y_train)``.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.datasets import make_blobs, make_circles, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import ThreadpoolController

__all__ = [
    "DATASETS",
    "DEFAULTS",
    "KERNELS",
    "LIMITS",
    "MODELS",
    "BoundaryResult",
    "BoundarySettings",
    "contour_segments",
    "decision_surface",
    "fit_boundary",
    "make_classifier",
    "make_dataset",
    "mesh_resolution",
    "read_boundary",
    "run_boundary",
    "split_dataset",
    "svm_max_iter",
]

#: Data set name -> label shown in the page.
DATASETS = {
    "moons": "Two moons",
    "circles": "Circles",
    "blobs": "Blobs (linearly separable)",
    "xor": "XOR",
}
#: Model name -> label shown in the page.
MODELS = {
    "svm": "Support vector machine",
    "knn": "k-nearest neighbours",
    "tree": "Decision tree",
    "logreg": "Logistic regression",
}
#: SVM kernel name -> label shown in the page.
KERNELS = {"rbf": "RBF (Gaussian)", "linear": "Linear", "poly": "Polynomial"}

#: Inclusive bounds of every numeric control. Sample counts and the mesh are
#: capped so that no request can tie up a worker for long.
LIMITS: dict[str, tuple[float, float]] = {
    "n_samples": (20, 1000),
    "noise": (0.0, 1.0),
    "seed": (0, 9999),
    "test_fraction": (0.1, 0.5),
    "C": (0.01, 1000.0),
    "gamma": (0.001, 100.0),
    "degree": (2, 5),
    "k": (1, 50),
    "max_depth": (1, 20),
}
_INTEGER_FIELDS = ("n_samples", "seed", "degree", "k", "max_depth")

#: Mesh resolution bounds (points per axis) and the time budget for
#: evaluating the model on the mesh, from measurements on a 2-core machine.
MIN_RESOLUTION = 40
MAX_RESOLUTION = 80
_MESH_BUDGET_S = 0.06
#: Seconds per mesh point, measured: libsvm spends about 70 ns per support
#: vector and point; kNN ``predict_proba`` about 1 us + 0.35 us per neighbour.
_SVM_S_PER_SUPPORT_VECTOR = 7.0e-8
_KNN_S_BASE = 1.0e-6
_KNN_S_PER_NEIGHBOUR = 3.5e-7
_CHEAP_S_PER_POINT = 2.0e-7
#: libsvm iterations cost from 2 to 30 us at 1000 rows (measured; the first
#: ones fill the kernel cache). The cap keeps the fit to a few hundred
#: milliseconds even with C = 1000 on overlapping classes, where libsvm may
#: need more than 100 000 iterations; the page then says the fit stopped early.
_SVM_ITERATION_BUDGET = 1.0e7
_SVM_MAX_ITER_BOUNDS = (5_000, 100_000)
#: liblinear passes over the data for the linear kernel: about 30 ns per row
#: and pass, so the cap is a budget of passes x rows, within these bounds.
_LINEAR_SVM_ITERATION_BUDGET = 8.0e6
_LINEAR_SVM_MAX_ITER_BOUNDS = (2_000, 20_000)
#: A training point counts as a support vector of the linear SVM when its
#: margin y * f(x) is at most 1 + this tolerance.
_SUPPORT_TOLERANCE = 1e-3

_MARGIN = 0.5  # mesh extends this far beyond the data, in data units


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """Return a handle on the loaded BLAS libraries (no request data; safe to share in a worker)."""
    return ThreadpoolController()


def _one_blas_thread():
    """Limit BLAS to one thread: these matrices are tiny, and on a shared 2-core host a
    multi-threaded least-squares solve on 900 x 15 took 7 ms instead of 0.3 ms."""
    return _blas_controller().limit(limits=1, user_api="blas")


@dataclass(frozen=True)
class BoundarySettings:
    """Every control of the boundary lab, validated on construction.

    Parameters
    ----------
    dataset : {"moons", "circles", "blobs", "xor"}
        Generated two-feature data set.
    n_samples : int
        Number of generated points (train + test), 20 to 1000.
    noise : float
        Standard deviation of the Gaussian jitter added to each coordinate, 0 to 1.
    seed : int
        Seeds the data, the split and any randomised model, 0 to 9999.
    test_fraction : float
        Share of the points held out for testing, 0.1 to 0.5.
    model : {"svm", "knn", "tree", "logreg"}
        Classifier family.
    kernel : {"rbf", "linear", "poly"}
        SVM kernel (used only when ``model="svm"``).
    C : float
        Inverse regularisation strength for the SVM and logistic regression, 0.01 to 1000.
    gamma : float
        RBF/polynomial kernel coefficient, 0.001 to 100.
    degree : int
        Polynomial kernel degree, 2 to 5.
    k : int
        Number of neighbours, 1 to 50.
    max_depth : int
        Maximum depth of the decision tree, 1 to 20.

    Examples
    --------
    >>> BoundarySettings(C=10.0).C
    10.0
    >>> BoundarySettings(dataset="spiral")
    Traceback (most recent call last):
    ...
    ValueError: dataset must be one of moons, circles, blobs, xor; got 'spiral'
    """

    dataset: str = "moons"
    n_samples: int = 200
    noise: float = 0.25
    seed: int = 0
    test_fraction: float = 0.3
    model: str = "svm"
    kernel: str = "rbf"
    C: float = 1.0
    gamma: float = 1.0
    degree: int = 3
    k: int = 15
    max_depth: int = 4

    def __post_init__(self) -> None:
        for name, options in (("dataset", DATASETS), ("model", MODELS), ("kernel", KERNELS)):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in options:
                raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r}")
        for name, (lo, hi) in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"{name} must be a number; got {value!r}")
            if not math.isfinite(float(value)) or not lo <= value <= hi:
                raise ValueError(f"{name} must be between {lo:g} and {hi:g}; got {value!r}")
            if name in _INTEGER_FIELDS:
                if float(value) != int(value):
                    raise ValueError(f"{name} must be a whole number; got {value!r}")
                object.__setattr__(self, name, int(value))
            else:
                object.__setattr__(self, name, float(value))

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain dict."""
        return asdict(self)


#: The settings the page starts with.
DEFAULTS = BoundarySettings()


@dataclass
class BoundaryResult:
    """Everything the page draws and reports for one set of controls.

    Arrays are numpy arrays; :meth:`to_dict` turns them into lists.
    ``surface`` is ``{"x", "y", "z", "kind", "level"}`` with ``z[j, i]`` the
    model's score at ``(x[i], y[j])``; ``kind`` is ``"decision"`` (SVM decision
    function, boundary at 0) or ``"probability"`` (probability of class 1,
    boundary at 0.5). ``boundary`` and ``margins`` are polylines
    ``{"x": [...], "y": [...]}`` with NaN between pieces.
    """

    settings: dict[str, Any]
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    test_pred: np.ndarray | None = None
    support_indices: np.ndarray | None = None
    surface: dict[str, Any] | None = None
    boundary: dict[str, np.ndarray] | None = None
    margins: dict[str, np.ndarray] | None = None
    train_accuracy: float | None = None
    test_accuracy: float | None = None
    n_support: int | None = None
    fit_ms: float | None = None
    converged: bool = True
    resolution: int | None = None
    reading: str = ""
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def misclassified(self) -> np.ndarray:
        """Return the indices of misclassified test points (empty if not fitted)."""
        if self.test_pred is None:
            return np.zeros(0, dtype=int)
        return np.flatnonzero(self.test_pred != self.y_test)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict (lists, floats, ints, None for NaN)."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = _plain(value)
        out["misclassified"] = self.misclassified.tolist()
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return [_plain(v) for v in value] if value.ndim > 1 else [
                None if not math.isfinite(v) else v for v in value.tolist()]
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def make_dataset(name: str, *, n_samples: int = 200, noise: float = 0.25,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate a two-feature, two-class data set.

    ``moons`` and ``circles`` come from scikit-learn (``make_moons``,
    ``make_circles(factor=0.5)``) with ``noise`` passed through. ``blobs`` are
    two clusters at (-1, -1) and (1, 1) with standard deviation 0.3 (linearly
    separable) plus Gaussian jitter of standard deviation ``noise``. ``xor``
    draws points uniformly on [-1.5, 1.5]^2, labels them 1 when both
    coordinates have the same sign, then adds the jitter.

    Parameters
    ----------
    name : {"moons", "circles", "blobs", "xor"}
        Which data set.
    n_samples : int, default=200
        Number of points, 20 to 1000.
    noise : float, default=0.25
        Standard deviation of the Gaussian jitter, 0 to 1.
    seed : int, default=0
        Random seed.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,), values 0 and 1

    Examples
    --------
    >>> X, y = make_dataset("xor", n_samples=100, noise=0.0, seed=1)
    >>> X.shape, sorted(set(y.tolist()))
    ((100, 2), [0, 1])
    """
    settings = BoundarySettings(dataset=name, n_samples=n_samples, noise=noise, seed=seed)
    n, noise, seed = settings.n_samples, settings.noise, settings.seed
    if name == "moons":
        X, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    elif name == "circles":
        X, y = make_circles(n_samples=n, noise=noise, factor=0.5, random_state=seed)
    elif name == "blobs":
        X, y = make_blobs(n_samples=n, centers=[(-1.0, -1.0), (1.0, 1.0)], cluster_std=0.3,
                          random_state=seed)
        X = X + np.random.default_rng(seed).normal(0.0, noise, size=X.shape)
    else:  # xor
        rng = np.random.default_rng(seed)
        X = rng.uniform(-1.5, 1.5, size=(n, 2))
        y = (X[:, 0] * X[:, 1] > 0).astype(int)
        X = X + rng.normal(0.0, noise, size=X.shape)
    return np.asarray(X, dtype=float), np.asarray(y, dtype=int)


def split_dataset(X: Any, y: Any, *, test_fraction: float = 0.3,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split into train and test parts, stratified when every class has two points.

    Equivalent to ``train_test_split(X, y, test_size=test_fraction,
    random_state=seed, stratify=y)`` (``stratify=None`` when a class has fewer
    than two points).

    Parameters
    ----------
    X : array-like of shape (n, 2)
    y : array-like of shape (n,)
    test_fraction : float, default=0.3
        Share held out for testing, 0.1 to 0.5.
    seed : int, default=0
        Random seed of the split.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray

    Examples
    --------
    >>> X, y = make_dataset("moons", n_samples=100, seed=0)
    >>> X_tr, X_te, y_tr, y_te = split_dataset(X, y, test_fraction=0.3, seed=0)
    >>> len(y_tr), len(y_te)
    (70, 30)
    """
    BoundarySettings(test_fraction=test_fraction, seed=seed)
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have shape (n, 2); got {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},); got {y.shape}")
    _, counts = np.unique(y, return_counts=True)
    stratify = y if counts.size > 1 and counts.min() >= 2 else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_fraction, random_state=seed, stratify=stratify)
    return X_train, X_test, y_train, y_test


def svm_max_iter(n_train: int, *, kernel: str = "rbf") -> int:
    """Return the solver's iteration cap for ``n_train`` rows (bounds the fit time).

    Examples
    --------
    >>> svm_max_iter(900), svm_max_iter(900, kernel="linear")
    (11111, 8888)
    """
    if kernel == "linear":
        lo, hi = _LINEAR_SVM_MAX_ITER_BOUNDS
        budget = _LINEAR_SVM_ITERATION_BUDGET
    else:
        lo, hi = _SVM_MAX_ITER_BOUNDS
        budget = _SVM_ITERATION_BUDGET
    return int(min(hi, max(lo, budget // max(int(n_train), 1))))


def make_classifier(settings: BoundarySettings, *, n_train: int | None = None) -> Any:
    """Return the unfitted scikit-learn classifier that ``settings`` describe.

    SVM with an RBF or polynomial kernel: ``SVC(kernel, C, gamma, degree,
    coef0=1, max_iter=...)`` where the iteration cap depends on ``n_train``
    (see :func:`svm_max_iter`). SVM with the linear kernel:
    ``LinearSVC(C, loss="hinge", dual=True, max_iter=...)``, the same
    objective solved by liblinear, which converges in a fraction of libsvm's
    time at high C (its support vectors are the training points with margin
    ``y * f(x) <= 1``); kNN:
    ``KNeighborsClassifier(n_neighbors=min(k, n_train))``; tree:
    ``DecisionTreeClassifier(max_depth, random_state=seed)``; logistic
    regression: ``LogisticRegression(C, max_iter=1000)``.

    Parameters
    ----------
    settings : BoundarySettings
    n_train : int, optional
        Number of training rows; caps ``k`` and sets the SVM iteration cap.

    Returns
    -------
    estimator : sklearn classifier (unfitted)

    Examples
    --------
    >>> make_classifier(BoundarySettings(model="knn", k=30), n_train=20).n_neighbors
    20
    """
    if not isinstance(settings, BoundarySettings):
        raise ValueError(f"settings must be a BoundarySettings; got {type(settings).__name__}")
    n = int(n_train) if n_train is not None else settings.n_samples
    if n < 1:
        raise ValueError(f"n_train must be at least 1; got {n_train!r}")
    if settings.model == "svm" and settings.kernel == "linear":
        return LinearSVC(C=settings.C, loss="hinge", dual=True,
                         max_iter=svm_max_iter(n, kernel="linear"))
    if settings.model == "svm":
        return SVC(kernel=settings.kernel, C=settings.C, gamma=settings.gamma,
                   degree=settings.degree, coef0=1.0, max_iter=svm_max_iter(n))
    if settings.model == "knn":
        return KNeighborsClassifier(n_neighbors=min(settings.k, n))
    if settings.model == "tree":
        return DecisionTreeClassifier(max_depth=settings.max_depth, random_state=settings.seed)
    return LogisticRegression(C=settings.C, max_iter=1000)


def mesh_resolution(*, model: str, kernel: str = "rbf", n_support: int = 0, k: int = 1) -> int:
    """Return the mesh points per axis that keep evaluating the model within budget.

    The cost per mesh point is about 70 ns per support vector for an SVM and
    1 us + 0.35 us per neighbour for kNN; trees, logistic regression and the
    linear SVM are nearly free. The resolution is the square root of the
    budget (60 ms) over that cost, clipped to [40, 80].

    Parameters
    ----------
    model : {"svm", "knn", "tree", "logreg"}
    kernel : {"rbf", "linear", "poly"}, default="rbf"
        SVM kernel; the linear SVM costs as little as logistic regression.
    n_support : int, default=0
        Number of support vectors (SVM only).
    k : int, default=1
        Number of neighbours (kNN only).

    Returns
    -------
    int

    Examples
    --------
    >>> mesh_resolution(model="svm", n_support=1500)
    40
    >>> mesh_resolution(model="tree")
    80
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}; got {model!r}")
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)}; got {kernel!r}")
    if model == "svm" and kernel != "linear":
        per_point = _SVM_S_PER_SUPPORT_VECTOR * max(int(n_support), 1)
    elif model == "knn":
        per_point = _KNN_S_BASE + _KNN_S_PER_NEIGHBOUR * max(int(k), 1)
    else:
        per_point = _CHEAP_S_PER_POINT
    res = int(math.sqrt(_MESH_BUDGET_S / per_point))
    return max(MIN_RESOLUTION, min(MAX_RESOLUTION, res))


def _scores(estimator: Any, points: np.ndarray) -> tuple[np.ndarray, str]:
    """Return the model's score for class 1 and its kind."""
    if isinstance(estimator, (SVC, LinearSVC)):
        return estimator.decision_function(points), "decision"
    proba = estimator.predict_proba(points)
    return proba[:, list(estimator.classes_).index(1)], "probability"


def decision_surface(estimator: Any, *, x_range: tuple[float, float],
                     y_range: tuple[float, float], resolution: int) -> dict[str, Any]:
    """Evaluate a fitted two-feature classifier on a regular mesh.

    Parameters
    ----------
    estimator : fitted classifier with classes 0 and 1
        An ``SVC`` or ``LinearSVC`` gives its decision function (boundary at 0); anything
        else gives ``predict_proba`` for class 1 (boundary at 0.5).
    x_range, y_range : (float, float)
        Mesh bounds.
    resolution : int
        Points per axis, 2 to 400.

    Returns
    -------
    dict
        ``{"x": (res,), "y": (res,), "z": (res, res), "kind", "level"}`` with
        ``z[j, i]`` the score at ``(x[i], y[j])``.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> clf = LogisticRegression().fit([[0, 0], [1, 1], [0, 1], [1, 0]], [0, 1, 0, 1])
    >>> s = decision_surface(clf, x_range=(0, 1), y_range=(0, 1), resolution=5)
    >>> s["z"].shape, s["kind"], s["level"]
    ((5, 5), 'probability', 0.5)
    """
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) \
            or not 2 <= resolution <= 400:
        raise ValueError(f"resolution must be a whole number from 2 to 400; got {resolution!r}")
    for name, rng in (("x_range", x_range), ("y_range", y_range)):
        lo, hi = (float(v) for v in rng)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"{name} must be two finite numbers, low < high; got {rng!r}")
    xs = np.linspace(float(x_range[0]), float(x_range[1]), int(resolution))
    ys = np.linspace(float(y_range[0]), float(y_range[1]), int(resolution))
    gx, gy = np.meshgrid(xs, ys)
    z, kind = _scores(estimator, np.column_stack([gx.ravel(), gy.ravel()]))
    return {"x": xs, "y": ys, "z": z.reshape(gx.shape), "kind": kind,
            "level": 0.0 if kind == "decision" else 0.5}


def contour_segments(x: Any, y: Any, z: Any, *, level: float = 0.0) -> dict[str, np.ndarray]:
    """Trace the ``level`` line of a gridded surface (marching squares).

    The line comes back as short segments joined into one polyline with NaN
    between pieces, which plotly draws as separate lines. Saddle cells are
    resolved by the cell's mean value.

    Parameters
    ----------
    x : array-like of shape (nx,)
        Increasing column coordinates.
    y : array-like of shape (ny,)
        Increasing row coordinates.
    z : array-like of shape (ny, nx)
        ``z[j, i]`` is the value at ``(x[i], y[j])``.
    level : float, default=0.0

    Returns
    -------
    dict
        ``{"x": ndarray, "y": ndarray}``; empty arrays when the surface never
        crosses ``level``.

    Examples
    --------
    >>> xs = ys = np.linspace(-1, 1, 5)
    >>> seg = contour_segments(xs, ys, np.add.outer(0 * ys, xs), level=0.25)
    >>> sorted(set(np.round(seg["x"][~np.isnan(seg["x"])], 6).tolist()))
    [0.25]
    """
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    zz = np.asarray(z, dtype=float)
    if xs.ndim != 1 or ys.ndim != 1 or zz.shape != (ys.size, xs.size):
        raise ValueError(f"z must have shape (len(y), len(x)) = ({ys.size}, {xs.size}); got {zz.shape}")
    if xs.size < 2 or ys.size < 2:
        raise ValueError(f"need at least a 2 x 2 grid; got {zz.shape}")
    if not np.all(np.isfinite(zz)):
        raise ValueError("z must be finite")
    level = float(level)
    above = zz > level

    with np.errstate(divide="ignore", invalid="ignore"):
        # Crossings on horizontal edges (j, i)-(j, i+1) and vertical edges (j, i)-(j+1, i).
        th = (level - zz[:, :-1]) / (zz[:, 1:] - zz[:, :-1])
        tv = (level - zz[:-1, :]) / (zz[1:, :] - zz[:-1, :])
    hx = xs[:-1][None, :] + th * np.diff(xs)[None, :]
    hy = np.broadcast_to(ys[:, None], th.shape)
    vx = np.broadcast_to(xs[None, :], tv.shape)
    vy = ys[:-1][:, None] + tv * np.diff(ys)[:, None]
    hc = above[:, :-1] != above[:, 1:]
    vc = above[:-1, :] != above[1:, :]

    # Per cell, edges in the order bottom, right, top, left.
    ex = np.stack([hx[:-1], vx[:, 1:], hx[1:], vx[:, :-1]], axis=-1)
    ey = np.stack([hy[:-1], vy[:, 1:], hy[1:], vy[:, :-1]], axis=-1)
    crossed = np.stack([hc[:-1], vc[:, 1:], hc[1:], vc[:, :-1]], axis=-1)
    count = crossed.sum(axis=-1)

    pieces_x, pieces_y = [], []
    two = count == 2
    if two.any():
        order = np.argsort(~crossed[two], axis=-1, kind="stable")[:, :2]
        cx, cy = ex[two], ey[two]
        a = np.take_along_axis(cx, order, axis=-1)
        b = np.take_along_axis(cy, order, axis=-1)
        pieces_x.append(a)
        pieces_y.append(b)
    four = count == 4
    if four.any():
        corners = np.stack([zz[:-1, :-1], zz[:-1, 1:], zz[1:, 1:], zz[1:, :-1]], axis=-1)[four]
        centre_like_first = (corners.mean(axis=-1) > level) == (corners[:, 0] > level)
        cx, cy = ex[four], ey[four]
        # Centre on the side of the bottom-left corner: cut off the bottom-right
        # and top-left corners; otherwise cut off bottom-left and top-right.
        pairs = np.where(centre_like_first[:, None, None],
                         np.array([[0, 1], [2, 3]])[None], np.array([[0, 3], [1, 2]])[None])
        for p in range(2):
            idx = pairs[:, p, :]
            pieces_x.append(np.take_along_axis(cx, idx, axis=-1))
            pieces_y.append(np.take_along_axis(cy, idx, axis=-1))
    if not pieces_x:
        return {"x": np.zeros(0), "y": np.zeros(0)}
    segx = np.concatenate(pieces_x)
    segy = np.concatenate(pieces_y)
    gap = np.full((segx.shape[0], 1), np.nan)
    return {"x": np.hstack([segx, gap]).ravel(), "y": np.hstack([segy, gap]).ravel()}


def _is_linear_data(dataset: str) -> bool:
    return dataset == "blobs"


def read_boundary(settings: BoundarySettings, *, train_accuracy: float, test_accuracy: float,
                  n_support: int | None = None, n_train: int | None = None,
                  converged: bool = True) -> str:
    """Return a one-line plain-English reading of the fitted state.

    Over-fitting is a train/test accuracy gap of 0.07 or more; a "too simple"
    reading needs train accuracy below 0.85 with no such gap and a control at
    its simple end (straight boundary on curved classes, low C or gamma, many
    neighbours, a shallow tree); otherwise low accuracy on both sides is put
    down to overlapping classes.

    Parameters
    ----------
    settings : BoundarySettings
    train_accuracy, test_accuracy : float
        Accuracies in [0, 1].
    n_support : int, optional
        Number of SVM support vectors.
    n_train : int, optional
        Number of training rows.
    converged : bool, default=True
        False when the solver stopped at its iteration cap.

    Returns
    -------
    str

    Examples
    --------
    >>> s = BoundarySettings(C=1000.0, gamma=100.0)
    >>> read_boundary(s, train_accuracy=1.0, test_accuracy=0.75)[:29]
    'High C and high gamma: the bo'
    """
    for name, value in (("train_accuracy", train_accuracy), ("test_accuracy", test_accuracy)):
        if value is None or not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1]; got {value!r}")
    s = settings
    tr, te = float(train_accuracy), float(test_accuracy)
    gap = tr - te
    acc = f"(train {tr:.0%}, test {te:.0%})"
    straight = (s.model == "logreg" or (s.model == "svm" and s.kernel == "linear"))

    if not converged:
        cause = ("a steep polynomial kernel" if s.model == "svm" and s.kernel == "poly"
                 else "overlapping classes")
        knobs = "C" if straight else "C or gamma"
        return (f"The solver hit its iteration cap (high C with {cause}), so this boundary {acc} is "
                f"not the optimum: lower {knobs} to see the real fit.")

    if gap >= 0.07:
        if s.model == "svm" and s.kernel == "rbf" and s.gamma >= 10 and s.C >= 100:
            return (f"High C and high gamma: the boundary wraps single training points "
                    f"and test accuracy drops {acc}: memorising.")
        if s.model == "svm" and s.kernel != "linear" and s.gamma >= 10:
            return (f"High gamma: every training point gets its own small island, "
                    f"so test accuracy drops {acc}: memorising.")
        if s.model == "svm" and s.C >= 100:
            return (f"High C: the margin shrinks until it fits almost every training point, "
                    f"so test accuracy drops {acc}: overfitting.")
        if s.model == "knn" and s.k <= 3:
            few = "nearest neighbour" if s.k == 1 else f"{s.k} nearest neighbours"
            return (f"k = {s.k}: each point is decided by its {few}, "
                    f"so the boundary is jagged and test accuracy drops {acc}: memorising.")
        if s.model == "tree" and s.max_depth >= 6:
            return (f"Depth {s.max_depth}: the tree carves a box around single training points "
                    f"and test accuracy drops {acc}: memorising.")
        return f"Train accuracy is well above test accuracy {acc}: the model is overfitting."

    if tr < 0.85:
        if straight and not _is_linear_data(s.dataset):
            return (f"A straight line cannot separate these classes {acc}: underfitting. "
                    f"Try the RBF kernel, kNN or a tree.")
        if s.model == "svm" and s.kernel == "rbf" and s.gamma <= 0.01:
            return (f"Low gamma: every point influences the whole plane, so the boundary is "
                    f"nearly straight {acc}: underfitting.")
        if s.model == "svm" and s.C <= 0.1:
            return (f"Low C: the wide margin tolerates many errors and the boundary stays "
                    f"too simple {acc}: underfitting.")
        if s.model == "knn" and n_train and s.k >= max(10, n_train // 5):
            return (f"k = {s.k} is large for {n_train} training points: the vote averages over "
                    f"distant points and the boundary is too smooth {acc}: underfitting.")
        if s.model == "tree" and s.max_depth <= 2:
            return (f"Depth {s.max_depth}: a few straight cuts cannot follow these classes "
                    f"{acc}: underfitting.")
        return (f"Train and test accuracy are both low but agree {acc}: the classes overlap "
                f"(noise {s.noise:g}), so no boundary separates them cleanly; the model is not memorising.")

    if s.model == "knn" and s.k == 1:
        return (f"k = 1: every training point votes for itself, so train accuracy says nothing; "
                f"test accuracy holds up {acc}.")
    if s.model == "svm" and n_support and n_train and n_support >= 0.8 * n_train:
        return (f"Accuracy holds up {acc}, but {n_support} of {n_train} training points are support "
                f"vectors: a very soft margin, close to underfitting.")
    return f"Train and test accuracy agree {acc}: the boundary follows the classes and generalises."


def _data_bounds(*arrays: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    pts = np.vstack([a for a in arrays if a.size])
    lo = pts.min(axis=0) - _MARGIN
    hi = pts.max(axis=0) + _MARGIN
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def fit_boundary(X_train: Any, X_test: Any, y_train: Any, y_test: Any, *,
                 settings: BoundarySettings, resolution: int | None = None) -> BoundaryResult:
    """Fit the classifier on a given split and compute everything the lab shows.

    A training set with a single class is not an exception: the result comes
    back unfitted with ``error`` set to a message for the user.

    The arguments come in the order ``split_dataset`` (and scikit-learn's
    ``train_test_split``) returns them.

    Parameters
    ----------
    X_train, X_test : array-like of shape (n, 2)
    y_train, y_test : array-like of shape (n,), labels 0 and 1
    settings : BoundarySettings
        The model is built with :func:`make_classifier`.
    resolution : int, optional
        Mesh points per axis; by default chosen by :func:`mesh_resolution`.

    Returns
    -------
    BoundaryResult

    Examples
    --------
    >>> X, y = make_dataset("blobs", n_samples=60, noise=0.0, seed=0)
    >>> parts = split_dataset(X, y, test_fraction=0.3, seed=0)
    >>> r = fit_boundary(*parts, settings=BoundarySettings(model="logreg"))
    >>> r.train_accuracy, r.test_accuracy
    (1.0, 1.0)
    """
    if not isinstance(settings, BoundarySettings):
        raise ValueError(f"settings must be a BoundarySettings; got {type(settings).__name__}")
    with _one_blas_thread():
        return _fit(X_train, X_test, y_train, y_test, settings, resolution)


def _fit(X_train: Any, X_test: Any, y_train: Any, y_test: Any, settings: BoundarySettings,
         resolution: int | None) -> BoundaryResult:
    arrays = []
    for name, X, yv in (("train", X_train, y_train), ("test", X_test, y_test)):
        X = np.asarray(X, dtype=float).reshape(-1, 2) if np.size(X) else np.zeros((0, 2))
        yv = np.asarray(yv).astype(int).ravel()
        if X.shape[0] != yv.shape[0]:
            raise ValueError(f"X_{name} has {X.shape[0]} rows but y_{name} has {yv.shape[0]}")
        if yv.size and not set(np.unique(yv).tolist()) <= {0, 1}:
            raise ValueError(f"y_{name} must hold labels 0 and 1; got {sorted(set(yv.tolist()))[:5]}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"X_{name} must be finite")
        arrays += [X, yv]
    X_train, y_train, X_test, y_test = arrays
    result = BoundaryResult(settings=settings.to_dict(), X_train=X_train, y_train=y_train,
                            X_test=X_test, y_test=y_test)
    if X_train.shape[0] == 0:
        result.error = "The training split is empty: raise the sample count or lower the test fraction."
        return result
    if np.unique(y_train).size < 2:
        result.error = ("The training split holds only one class, so there is no boundary to learn: "
                        "raise the sample count or change the seed.")
        return result
    if settings.model == "knn" and settings.k > X_train.shape[0]:
        result.notes.append(f"k = {settings.k} is more than the {X_train.shape[0]} training points; "
                            f"using k = {X_train.shape[0]}.")

    estimator = make_classifier(settings, n_train=X_train.shape[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(X_train, y_train)
        result.fit_ms = (time.perf_counter() - start) * 1000.0
    result.converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    if not result.converged:
        if settings.model == "svm":
            result.notes.append(f"The SVM solver stopped after {estimator.max_iter} iterations before "
                                f"converging (the cap keeps the page responsive): the boundary is approximate.")
        else:
            result.notes.append("The solver stopped before converging: the boundary is approximate.")

    # One evaluation on the data gives both predictions and accuracies.
    points = np.vstack([X_train, X_test])
    scores, kind = _scores(estimator, points)
    level = 0.0 if kind == "decision" else 0.5
    pred = (scores > level).astype(int)
    train_pred, result.test_pred = pred[: len(y_train)], pred[len(y_train):]
    result.train_accuracy = float(np.mean(train_pred == y_train))
    result.test_accuracy = float(np.mean(result.test_pred == y_test)) if y_test.size else None
    if isinstance(estimator, SVC):
        result.support_indices = np.asarray(estimator.support_, dtype=int)
    elif isinstance(estimator, LinearSVC):
        margin = np.where(y_train == 1, 1.0, -1.0) * scores[: len(y_train)]
        result.support_indices = np.flatnonzero(margin <= 1.0 + _SUPPORT_TOLERANCE)
    if result.support_indices is not None:
        result.n_support = int(result.support_indices.size)

    if resolution is None:
        resolution = mesh_resolution(model=settings.model, kernel=settings.kernel,
                                     n_support=result.n_support or 0, k=settings.k)
    result.resolution = int(resolution)
    x_range, y_range = _data_bounds(X_train, X_test)
    surface = decision_surface(estimator, x_range=x_range, y_range=y_range, resolution=int(resolution))
    result.surface = surface
    result.boundary = contour_segments(surface["x"], surface["y"], surface["z"], level=surface["level"])
    if kind == "decision":
        lower = contour_segments(surface["x"], surface["y"], surface["z"], level=-1.0)
        upper = contour_segments(surface["x"], surface["y"], surface["z"], level=1.0)
        nan = np.array([np.nan])
        result.margins = {"x": np.concatenate([lower["x"], nan, upper["x"]]),
                          "y": np.concatenate([lower["y"], nan, upper["y"]])}
    result.reading = read_boundary(
        settings, train_accuracy=result.train_accuracy,
        test_accuracy=result.test_accuracy if result.test_accuracy is not None else result.train_accuracy,
        n_support=result.n_support, n_train=int(y_train.size), converged=result.converged)
    return result


def run_boundary(settings: BoundarySettings, *, resolution: int | None = None) -> BoundaryResult:
    """Generate the data, split it and fit: the whole lab for one set of controls.

    Parameters
    ----------
    settings : BoundarySettings
    resolution : int, optional
        Mesh points per axis; adaptive by default.

    Returns
    -------
    BoundaryResult

    Examples
    --------
    >>> r = run_boundary(BoundarySettings(n_samples=100, C=1.0, gamma=1.0))
    >>> r.n_support > 0 and 0.5 < r.test_accuracy <= 1.0
    True
    """
    if not isinstance(settings, BoundarySettings):
        raise ValueError(f"settings must be a BoundarySettings; got {type(settings).__name__}")
    X, y = make_dataset(settings.dataset, n_samples=settings.n_samples, noise=settings.noise,
                        seed=settings.seed)
    X_train, X_test, y_train, y_test = split_dataset(X, y, test_fraction=settings.test_fraction,
                                                     seed=settings.seed)
    return fit_boundary(X_train, X_test, y_train, y_test, settings=settings, resolution=resolution)
