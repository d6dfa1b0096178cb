"""Polynomial regression lab: a known truth, noisy samples, a polynomial fit.

The ground truth is a polynomial of degree at most 5 with coefficients
``a0 + a1 x + ... + a5 x^5``. Samples are drawn uniformly on an x range with
Gaussian noise, split into train and test parts, and fitted with polynomial
features of degree 1 to 15, standardised, under no penalty, ridge, lasso or
elastic net. Because the truth and its noise level are known, the lab can say
whether a fit is too simple, about right, or following the noise.

The recipe, so any number can be reproduced by hand::

    rng = np.random.default_rng(seed)
    x = rng.uniform(x_min, x_max, n_samples)
    y = polyval(x, coefficients) + rng.normal(0, noise, n_samples)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed)
    make_pipeline(PolynomialFeatures(degree, include_bias=False), StandardScaler(), model)

where ``model`` is ``LinearRegression()``, ``Ridge(alpha)``,
``Lasso(alpha)`` or ``ElasticNet(alpha, l1_ratio=0.5)`` (scikit-learn's
default 1000 coordinate-descent passes). Unpenalised and ridge fits are solved here in closed form
with numpy (the same solution, about fifty times faster than fifteen sklearn
pipelines); the tests check them against the pipeline.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, Lasso
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from threadpoolctl import ThreadpoolController

__all__ = [
    "DEFAULTS",
    "LIMITS",
    "PENALTIES",
    "PRESETS",
    "RegressionLabResult",
    "RegressionSettings",
    "diagnose_fit",
    "fit_polynomial",
    "make_regression_data",
    "preset_for",
    "run_regression_lab",
    "true_function",
    "validation_curve",
]

#: Preset name -> (label, coefficients a0..a5).
PRESETS: dict[str, tuple[str, tuple[float, ...]]] = {
    "linear": ("Linear", (1.0, 0.8, 0.0, 0.0, 0.0, 0.0)),
    "quadratic": ("Quadratic", (-1.0, 0.0, 0.5, 0.0, 0.0, 0.0)),
    "cubic": ("Cubic", (0.0, -2.0, 0.0, 0.3, 0.0, 0.0)),
    # 2 sin(x) to fifth order (2x - x^3/3 + x^5/60, rounded): one smooth wave over [-3, 3].
    "sine": ("Sine-like quintic", (0.0, 2.0, 0.0, -0.3333, 0.0, 0.01667)),
}
#: Penalty name -> label shown in the page.
PENALTIES = {
    "none": "None (least squares)",
    "ridge": "Ridge (L2)",
    "lasso": "Lasso (L1)",
    "elasticnet": "Elastic net (L1 + L2)",
}
#: Inclusive bounds of every numeric control; degrees and sample counts are
#: capped so that no request can tie up a worker.
LIMITS: dict[str, tuple[float, float]] = {
    "coefficient": (-10.0, 10.0),
    "x_min": (-3.0, 3.0),
    "x_max": (-3.0, 3.0),
    "noise": (0.0, 3.0),
    "n_samples": (20, 1000),
    "seed": (0, 9999),
    "degree": (1, 15),
    "alpha": (1e-5, 1e3),
    "test_fraction": (0.1, 0.5),
}
MAX_TRUE_DEGREE = 5
MIN_X_SPAN = 0.5
L1_RATIO = 0.5
_L1_MAX_ITER = 1000  # scikit-learn's default; tiny alphas stop here with a note
_CURVE_POINTS = 200
_INTEGER_FIELDS = ("n_samples", "seed", "degree")


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """Return a handle on the loaded BLAS libraries (no request data; safe to share in a worker)."""
    return ThreadpoolController()


def _one_blas_thread():
    """Limit BLAS to one thread: these matrices are tiny, and on a shared 2-core host a
    multi-threaded least-squares solve on 900 x 15 took 7 ms instead of 0.3 ms."""
    return _blas_controller().limit(limits=1, user_api="blas")


def _check_number(name: str, value: Any, lo: float, hi: float, *, integer: bool = False) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number; got {value!r}")
    if not math.isfinite(float(value)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo:g} and {hi:g}; got {value!r}")
    if integer:
        if float(value) != int(value):
            raise ValueError(f"{name} must be a whole number; got {value!r}")
        return int(value)
    return float(value)


def _check_coefficients(coefficients: Any) -> tuple[float, ...]:
    if isinstance(coefficients, (str, bytes, dict)) or not hasattr(coefficients, "__len__"):
        raise ValueError(f"coefficients must be a sequence of 1 to 6 numbers; got {coefficients!r}")
    coefficients = list(coefficients)
    if not 1 <= len(coefficients) <= MAX_TRUE_DEGREE + 1:
        raise ValueError(f"coefficients must hold 1 to 6 numbers (a0..a5); got {len(coefficients)}")
    lo, hi = LIMITS["coefficient"]
    out = [_check_number(f"coefficient a{i}", c, lo, hi) for i, c in enumerate(coefficients)]
    return tuple(out) + (0.0,) * (MAX_TRUE_DEGREE + 1 - len(out))


@dataclass(frozen=True)
class RegressionSettings:
    """Every control of the regression lab, validated on construction.

    Parameters
    ----------
    coefficients : tuple of float
        True polynomial ``a0..a5`` (shorter tuples are padded with zeros), each in [-10, 10].
    x_min, x_max : float
        Sampling range within [-3, 3], at least 0.5 wide.
    noise : float
        Standard deviation of the Gaussian noise on y, 0 to 3.
    n_samples : int
        Number of samples (train + test), 20 to 1000.
    seed : int
        Seeds the sampling, the noise and the split, 0 to 9999.
    degree : int
        Degree of the fitted polynomial, 1 to 15.
    penalty : {"none", "ridge", "lasso", "elasticnet"}
    alpha : float
        Penalty strength, 1e-5 to 1000 (ignored when ``penalty="none"``).
    test_fraction : float
        Share held out for testing, 0.1 to 0.5.

    Examples
    --------
    >>> RegressionSettings(coefficients=(1, 2)).coefficients
    (1.0, 2.0, 0.0, 0.0, 0.0, 0.0)
    >>> RegressionSettings(degree=16)
    Traceback (most recent call last):
    ...
    ValueError: degree must be between 1 and 15; got 16
    """

    coefficients: tuple[float, ...] = PRESETS["cubic"][1]
    x_min: float = -3.0
    x_max: float = 3.0
    noise: float = 0.5
    n_samples: int = 60
    seed: int = 0
    degree: int = 3
    penalty: str = "none"
    alpha: float = 0.01
    test_fraction: float = 0.3

    def __post_init__(self) -> None:
        object.__setattr__(self, "coefficients", _check_coefficients(self.coefficients))
        for name in ("x_min", "x_max", "noise", "n_samples", "seed", "degree", "alpha", "test_fraction"):
            lo, hi = LIMITS[name]
            object.__setattr__(self, name, _check_number(name, getattr(self, name), lo, hi,
                                                         integer=name in _INTEGER_FIELDS))
        if self.x_max - self.x_min < MIN_X_SPAN:
            raise ValueError(f"x_max must exceed x_min by at least {MIN_X_SPAN:g}; "
                             f"got x_min={self.x_min:g}, x_max={self.x_max:g}")
        if not isinstance(self.penalty, str) or self.penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {', '.join(PENALTIES)}; got {self.penalty!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain dict."""
        out = asdict(self)
        out["coefficients"] = list(self.coefficients)
        return out


#: The settings the page starts with.
DEFAULTS = RegressionSettings()


def preset_for(coefficients: Any) -> str | None:
    """Return the name of the preset with these coefficients, or None.

    Examples
    --------
    >>> preset_for((0.0, -2.0, 0.0, 0.3))
    'cubic'
    >>> preset_for((1.0,)) is None
    True
    """
    coefficients = _check_coefficients(coefficients)
    for name, (_, preset) in PRESETS.items():
        if np.allclose(coefficients, preset, rtol=0, atol=1e-9):
            return name
    return None


def true_function(x: Any, coefficients: Any) -> np.ndarray:
    """Evaluate the true polynomial ``a0 + a1 x + ... + a5 x^5``.

    Parameters
    ----------
    x : array-like of float
    coefficients : sequence of 1 to 6 floats, lowest power first

    Returns
    -------
    ndarray, same shape as ``x``

    Examples
    --------
    >>> true_function([0.0, 1.0, 2.0], (1.0, 0.0, 1.0)).tolist()
    [1.0, 2.0, 5.0]
    """
    coefficients = _check_coefficients(coefficients)
    return np.polynomial.polynomial.polyval(np.asarray(x, dtype=float), coefficients)


def make_regression_data(settings: RegressionSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample, add noise and split: returns ``x_train, x_test, y_train, y_test``.

    Parameters
    ----------
    settings : RegressionSettings

    Returns
    -------
    x_train, x_test, y_train, y_test : ndarray

    Examples
    --------
    >>> x_tr, x_te, y_tr, y_te = make_regression_data(RegressionSettings(n_samples=50))
    >>> len(x_tr), len(x_te)
    (35, 15)
    """
    if not isinstance(settings, RegressionSettings):
        raise ValueError(f"settings must be a RegressionSettings; got {type(settings).__name__}")
    s = settings
    rng = np.random.default_rng(s.seed)
    x = rng.uniform(s.x_min, s.x_max, s.n_samples)
    y = true_function(x, s.coefficients) + rng.normal(0.0, s.noise, s.n_samples)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=s.test_fraction,
                                                        random_state=s.seed)
    return x_train, x_test, y_train, y_test


class _Features:
    """Powers x^1..x^D standardised with the training mean and (population) std."""

    def __init__(self, x_train: np.ndarray, max_degree: int) -> None:
        powers = x_train[:, None] ** np.arange(1, max_degree + 1)
        self.mean = powers.mean(axis=0)
        std = powers.std(axis=0)
        self.scale = np.where(std > 0, std, 1.0)  # as StandardScaler does for constant columns

    def transform(self, x: np.ndarray, degree: int) -> np.ndarray:
        powers = x[:, None] ** np.arange(1, degree + 1)
        return (powers - self.mean[:degree]) / self.scale[:degree]


def _solve(Z: np.ndarray, y: np.ndarray, *, penalty: str, alpha: float) -> tuple[np.ndarray, float, bool]:
    """Fit one linear model on standardised features: (coefficients, intercept, converged)."""
    z_mean = Z.mean(axis=0)
    y_mean = float(y.mean())
    Zc = Z - z_mean
    yc = y - y_mean
    if penalty == "none":
        w = np.linalg.lstsq(Zc, yc, rcond=None)[0]
        converged = True
    elif penalty == "ridge":
        gram = Zc.T @ Zc
        gram[np.diag_indices_from(gram)] += alpha
        w = np.linalg.solve(gram, Zc.T @ yc)
        converged = True
    else:
        model = (Lasso(alpha=alpha, max_iter=_L1_MAX_ITER) if penalty == "lasso"
                 else ElasticNet(alpha=alpha, l1_ratio=L1_RATIO, max_iter=_L1_MAX_ITER))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(Z, y)
        converged = not any(issubclass(w_.category, ConvergenceWarning) for w_ in caught)
        return np.asarray(model.coef_, dtype=float), float(model.intercept_), converged
    return w, y_mean - float(z_mean @ w), converged


def _rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - pred) ** 2)))


def fit_polynomial(x_train: Any, y_train: Any, *, degree: int, penalty: str = "none",
                   alpha: float = 0.01) -> dict[str, Any]:
    """Fit polynomial features + standardisation + an (optionally penalised) linear model.

    The same model as ``make_pipeline(PolynomialFeatures(degree,
    include_bias=False), StandardScaler(), model)`` (see the module docstring).

    Parameters
    ----------
    x_train, y_train : array-like of shape (n,)
    degree : int
        1 to 15.
    penalty : {"none", "ridge", "lasso", "elasticnet"}, default="none"
    alpha : float, default=0.01
        1e-5 to 1000; ignored when ``penalty="none"``.

    Returns
    -------
    dict
        ``coefficients`` (one per standardised power x^1..x^degree),
        ``intercept``, ``converged`` and ``predict`` (a function of x).

    Examples
    --------
    >>> fit = fit_polynomial([0, 1, 2, 3], [1, 3, 5, 7], degree=1)
    >>> round(float(fit["predict"]([4.0])[0]), 6)
    9.0
    """
    x = np.asarray(x_train, dtype=float).ravel()
    y = np.asarray(y_train, dtype=float).ravel()
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"x_train and y_train must be 1-D of the same length >= 2; got {x.shape}, {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x_train and y_train must be finite")
    degree = _check_number("degree", degree, *LIMITS["degree"], integer=True)
    if penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {', '.join(PENALTIES)}; got {penalty!r}")
    alpha = _check_number("alpha", alpha, *LIMITS["alpha"])
    features = _Features(x, degree)
    w, b, converged = _solve(features.transform(x, degree), y, penalty=penalty, alpha=alpha)

    def predict(values: Any) -> np.ndarray:
        return features.transform(np.asarray(values, dtype=float).ravel(), degree) @ w + b

    return {"coefficients": w, "intercept": b, "converged": converged, "predict": predict}


def validation_curve(x_train: Any, y_train: Any, x_test: Any, y_test: Any, *,
                     penalty: str = "none", alpha: float = 0.01,
                     degrees: Any = None) -> dict[str, list]:
    """Train and test RMSE of the polynomial fit for each degree.

    Parameters
    ----------
    x_train, y_train, x_test, y_test : array-like of shape (n,)
    penalty : {"none", "ridge", "lasso", "elasticnet"}, default="none"
    alpha : float, default=0.01
    degrees : iterable of int, optional
        Degrees to fit, each 1 to 15; by default 1 to 15.

    Returns
    -------
    dict
        ``{"degree": [...], "train_rmse": [...], "test_rmse": [...]}``.

    Examples
    --------
    >>> x = np.linspace(-1, 1, 20)
    >>> vc = validation_curve(x[::2], x[::2] ** 2, x[1::2], x[1::2] ** 2, degrees=[1, 2])
    >>> vc["test_rmse"][1] < 1e-9 < vc["test_rmse"][0]
    True
    """
    degrees = list(range(1, 16) if degrees is None else degrees)
    xt = np.asarray(x_test, dtype=float).ravel()
    yt = np.asarray(y_test, dtype=float).ravel()
    if xt.shape != yt.shape:
        raise ValueError(f"x_test and y_test must have the same length; got {xt.shape}, {yt.shape}")
    out: dict[str, list] = {"degree": [], "train_rmse": [], "test_rmse": []}
    x = np.asarray(x_train, dtype=float).ravel()
    y = np.asarray(y_train, dtype=float).ravel()
    for d in degrees:
        fit = fit_polynomial(x, y, degree=d, penalty=penalty, alpha=alpha)
        out["degree"].append(int(d))
        out["train_rmse"].append(_rmse(y, fit["predict"](x)))
        out["test_rmse"].append(_rmse(yt, fit["predict"](xt)) if xt.size else None)
    return out


def diagnose_fit(*, train_rmse: float, test_rmse: float, noise: float, spread: float,
                 n_train: int | None = None, n_test: int | None = None) -> tuple[str, str]:
    """Classify a fit as underfitting, good fit or overfitting, with a sentence.

    The yardstick is the error a perfect model would make: the noise level,
    or 5% of the spread of the true function when the noise is (nearly)
    zero. Underfitting: the train error is above the yardstick by more than
    10% (or two standard errors of an RMSE over ``n_train`` points,
    ``2 / sqrt(2 n)``, if larger). Overfitting: the test error is above the
    yardstick by more than 15% (or two standard errors over ``n_test``
    points) and more than 20% above the train error, while the train error
    is at or below the yardstick (the curve has room to chase noise). The sample-size
    allowance keeps a small test set's luck from being read as overfitting.

    Parameters
    ----------
    train_rmse, test_rmse : float
        Root-mean-squared errors on the train and test parts.
    noise : float
        Standard deviation of the noise in the data.
    spread : float
        Standard deviation of the true function over the x range.
    n_train, n_test : int, optional
        Sizes of the train and test parts, for the sampling allowance.

    Returns
    -------
    (label, sentence) : (str, str)
        ``label`` is ``"underfitting"``, ``"good fit"`` or ``"overfitting"``.

    Examples
    --------
    >>> diagnose_fit(train_rmse=2.0, test_rmse=2.1, noise=0.5, spread=2.0)[0]
    'underfitting'
    >>> diagnose_fit(train_rmse=0.3, test_rmse=1.2, noise=0.5, spread=2.0)[0]
    'overfitting'
    """
    for name, value in (("train_rmse", train_rmse), ("test_rmse", test_rmse),
                        ("noise", noise), ("spread", spread)):
        if value is None or not math.isfinite(float(value)) or float(value) < 0:
            raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                  or value < 1):
            raise ValueError(f"{name} must be a whole number >= 1; got {value!r}")
    yardstick = max(float(noise), 0.05 * float(spread), 1e-9)
    under = 1.0 + max(0.10, 2.0 / math.sqrt(2 * n_train) if n_train else 0.0)
    over = 1.0 + max(0.15, 2.0 / math.sqrt(2 * n_test) if n_test else 0.0)
    tr, te = float(train_rmse), float(test_rmse)
    errs = f"train RMSE {tr:.3g}, test RMSE {te:.3g}, noise {noise:.3g}"
    if tr > under * yardstick:
        return ("underfitting",
                f"Underfitting: even the training error is well above the noise ({errs}); "
                f"the curve is too stiff to follow the truth. Raise the degree or lower alpha.")
    if te > over * yardstick and te > 1.2 * tr and tr <= yardstick:
        return ("overfitting",
                f"Overfitting: the training error is at or below the noise but the test error is "
                f"much higher ({errs}); the curve is following the noise. Lower the degree or raise alpha.")
    return ("good fit",
            f"Good fit: train and test errors are both close to the noise ({errs}); "
            f"what is left is noise no model can predict.")


@dataclass
class RegressionLabResult:
    """Everything the regression lab draws and reports for one set of controls.

    ``curve_x``, ``curve_true`` and ``curve_fit`` trace the true function and
    the fitted polynomial over the x range. ``coefficients`` are the fitted
    weights of the standardised powers x^1..x^degree (lasso zeros are exact
    zeros). ``validation`` is the output of :func:`validation_curve`.
    """

    settings: dict[str, Any]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    curve_x: np.ndarray
    curve_true: np.ndarray
    curve_fit: np.ndarray
    coefficients: np.ndarray
    intercept: float
    train_r2: float | None
    test_r2: float | None
    train_rmse: float
    test_rmse: float
    validation: dict[str, list]
    diagnosis: str
    reading: str
    fit_ms: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict (lists and floats)."""
        out = {}
        for key, value in self.__dict__.items():
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, np.generic):
                value = value.item()
            out[key] = value
        return out


def _r2(y: np.ndarray, pred: np.ndarray) -> float | None:
    if y.size < 2:
        return None
    return float(r2_score(y, pred))


def run_regression_lab(settings: RegressionSettings) -> RegressionLabResult:
    """Generate the data, fit the polynomial and compute every output of the lab.

    Parameters
    ----------
    settings : RegressionSettings

    Returns
    -------
    RegressionLabResult

    Examples
    --------
    >>> r = run_regression_lab(RegressionSettings(degree=1))
    >>> r.diagnosis, len(r.validation["degree"])
    ('underfitting', 15)
    """
    if not isinstance(settings, RegressionSettings):
        raise ValueError(f"settings must be a RegressionSettings; got {type(settings).__name__}")
    with _one_blas_thread():
        return _run(settings)


def _run(s: RegressionSettings) -> RegressionLabResult:
    x_train, x_test, y_train, y_test = make_regression_data(s)
    notes: list[str] = []
    if s.degree >= x_train.size:
        notes.append(f"Degree {s.degree} is not below the {x_train.size} training points: the curve "
                     f"can pass through every one of them, so expect overfitting.")

    start = time.perf_counter()
    fit = fit_polynomial(x_train, y_train, degree=s.degree, penalty=s.penalty, alpha=s.alpha)
    fit_ms = (time.perf_counter() - start) * 1000.0
    if not fit["converged"]:
        solver = "lasso" if s.penalty == "lasso" else "elastic-net"
        notes.append(f"The {solver} solver stopped after {_L1_MAX_ITER} passes before converging "
                     f"(strongly correlated powers of x with alpha {s.alpha:g}): the fit is close to, "
                     f"but not exactly at, the optimum. A larger alpha converges sooner.")
    train_pred = fit["predict"](x_train)
    test_pred = fit["predict"](x_test)
    train_rmse, test_rmse = _rmse(y_train, train_pred), _rmse(y_test, test_pred)

    curve_x = np.linspace(s.x_min, s.x_max, _CURVE_POINTS)
    curve_true = true_function(curve_x, s.coefficients)
    validation = validation_curve(x_train, y_train, x_test, y_test, penalty=s.penalty, alpha=s.alpha)
    diagnosis, reading = diagnose_fit(train_rmse=train_rmse, test_rmse=test_rmse, noise=s.noise,
                                      spread=float(np.std(curve_true)),
                                      n_train=int(x_train.size), n_test=int(x_test.size))
    return RegressionLabResult(
        settings=s.to_dict(), x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
        curve_x=curve_x, curve_true=curve_true, curve_fit=fit["predict"](curve_x),
        coefficients=np.asarray(fit["coefficients"], dtype=float), intercept=float(fit["intercept"]),
        train_r2=_r2(y_train, train_pred), test_r2=_r2(y_test, test_pred),
        train_rmse=train_rmse, test_rmse=test_rmse, validation=validation,
        diagnosis=diagnosis, reading=reading, fit_ms=fit_ms, notes=notes)
