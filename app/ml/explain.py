"""Local explanations: SHAP values per ORIGINAL feature.

:func:`build_explainer` picks the fastest exact method the model allows:

* ``"tree"``: shap's TreeExplainer for tree ensembles (the final step of a
  Pipeline, after its preprocessing);
* ``"linear"``: shap's LinearExplainer for linear models (same Pipeline
  handling);
* ``"kernel"``: shap's model-agnostic KernelExplainer on the original
  columns, with a bounded number of coalitions (``max_evals``). It is used
  instead of shap's PermutationExplainer because that one compiles numba code
  for ~12 s on first use in every process; Kernel SHAP needs no compilation
  and its values are additive by construction as well.

For Pipelines, contributions of transformed columns (e.g. one-hot columns)
are summed back into the column they came from, so every explanation is per
original feature. Every tree/linear explainer is checked for additivity on a
few background rows when it is built; if shap's numbers do not add up to the
model's own output, the next method is tried.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype
from scipy import sparse

from app.ml.influence import original_feature_weights
from app.ml.predict import check_task, classes_of, final_step, preprocessor, to_native

logger = logging.getLogger(__name__)

METHODS = ("tree", "linear", "kernel")
OUTPUT_SPACES = ("probability", "log-odds", "raw")
#: Additivity demanded of shap's tree/linear results when an explainer is built.
ADDITIVITY_RTOL = 1e-6
ADDITIVITY_ATOL = 1e-9


class Explainer:
    """A fitted model plus the shap machinery that explains it.

    Attributes
    ----------
    method : {"tree", "linear", "kernel"}
    is_fast : bool
        True for tree and linear (exact, milliseconds per row).
    output_space : {"probability", "log-odds", "raw"}
    feature_names : list of str
        The original features, in the order the model was trained on.
    task : str
    classes : list or None
    max_evals : int or None
        Coalitions per row for the kernel method.
    """

    def __init__(self, *, method: str, estimator: Any, task: str, feature_names: list[str],
                 output_space: str, background: pd.DataFrame, shap_explainer: Any = None,
                 weights: np.ndarray | None = None, max_evals: int | None = None, random_state: int = 0):
        self.method = method
        self.estimator = estimator
        self.task = task
        self.feature_names = feature_names
        self.output_space = output_space
        self.background = background
        self.shap_explainer = shap_explainer
        self.weights = weights
        self.max_evals = max_evals
        self.random_state = random_state
        self.classes = classes_of(estimator) if task != "regression" else None

    @property
    def is_fast(self) -> bool:
        return self.method in ("tree", "linear")

    def __repr__(self) -> str:
        return f"Explainer(method={self.method!r}, output_space={self.output_space!r}, task={self.task!r})"


# ----------------------------------------------------------------------------
# building
# ----------------------------------------------------------------------------

def build_explainer(estimator: Any, background: pd.DataFrame, *, task: str, max_background: int = 100,
                    random_state: int = 0, max_evals: int | None = None) -> Explainer:
    """Choose and build the SHAP explainer for a model.

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
        Takes a DataFrame of the original feature columns.
    background : pandas.DataFrame
        Reference rows (usually training data); a seeded sample of at most
        ``max_background`` rows is kept.
    task : {"binary", "multiclass", "regression"}
    max_background : int
    random_state : int
    max_evals : int or None
        Coalitions evaluated per row by the kernel method (each on every
        background row). None chooses ``max(2p + 2, min(512, 20p))`` for ``p``
        features. Ignored by tree and linear.

    Returns
    -------
    Explainer
        ``.method`` and ``.is_fast`` say which path was taken.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> explainer = build_explainer(model, X, task="multiclass")
    >>> explainer.method, explainer.is_fast, explainer.output_space
    ('tree', True, 'probability')
    """
    check_task(task)
    if not isinstance(background, pd.DataFrame) or len(background) == 0:
        raise ValueError("background must be a non-empty pandas DataFrame of the original features.")
    if not isinstance(max_background, (int, np.integer)) or isinstance(max_background, bool) or max_background < 1:
        raise ValueError(f"max_background must be a positive integer; got {max_background!r}.")
    if max_evals is not None and (not isinstance(max_evals, (int, np.integer)) or max_evals < 1):
        raise ValueError(f"max_evals must be a positive integer or None; got {max_evals!r}.")
    if task != "regression" and not hasattr(estimator, "classes_"):
        raise ValueError(f"task is {task!r} but {type(estimator).__name__} has no classes_.")
    feature_names = _trained_names(estimator, background)
    if len(background) > max_background:
        rows = np.sort(np.random.default_rng(random_state).choice(len(background), size=int(max_background),
                                                                  replace=False))
        background = background.iloc[rows]
    background = background[feature_names]

    common = dict(estimator=estimator, task=task, feature_names=feature_names, background=background,
                  random_state=random_state)
    weights = original_feature_weights(estimator, feature_names)
    last = final_step(estimator)
    pre = preprocessor(estimator)
    if weights is not None and weights.shape[0] == getattr(last, "n_features_in_", weights.shape[0]):
        transformed = _dense(pre.transform(background)) if pre is not None else _dense(background)
        for method, space, shap_explainer in _candidates(last, transformed, task, estimator):
            explainer = Explainer(method=method, output_space=space, shap_explainer=shap_explainer,
                                  weights=weights, **common)
            if _adds_up(explainer):
                return explainer
            logger.info("shap %s explainer (%s) failed the additivity check; trying the next method",
                        method, space)
    p = len(feature_names)
    budget = int(max_evals) if max_evals is not None else max(2 * p + 2, min(512, 20 * p))
    space = "probability" if task != "regression" and hasattr(estimator, "predict_proba") else (
        "log-odds" if task != "regression" else "raw")
    return Explainer(method="kernel", output_space=space, max_evals=max(budget, 2 * p + 2), **common)


def _trained_names(estimator: Any, frame: pd.DataFrame) -> list[str]:
    trained = getattr(estimator, "feature_names_in_", None)
    names = [str(c) for c in (trained if trained is not None else frame.columns)]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks the model's feature columns {missing[:8]}.")
    return names


def _dense(data: Any) -> np.ndarray:
    if sparse.issparse(data):
        data = data.toarray()
    if isinstance(data, pd.DataFrame):
        data = data.to_numpy()
    return np.asarray(data, dtype=float)


def _candidates(last: Any, transformed: np.ndarray, task: str, estimator: Any):
    """Yield (method, output space, shap explainer) to try, best first."""
    import shap  # imported lazily: shap takes seconds to import

    classifier = task != "regression"
    if _looks_like_trees(last):
        plain = _try_tree(shap, last)
        if not classifier:
            if plain is not None:
                yield "tree", "raw", plain
        else:
            if plain is not None and plain.model.tree_output == "probability":
                yield "tree", "probability", plain  # forests: the leaves hold probabilities
            interventional = _try_tree(shap, last, data=transformed, model_output="probability",
                                       feature_perturbation="interventional")
            if interventional is not None:
                yield "tree", "probability", interventional
            if plain is not None and plain.model.tree_output == "log_odds":
                yield "tree", "log-odds", plain
    if hasattr(last, "coef_") and hasattr(last, "intercept_"):
        try:
            # An explicit masker: shap would otherwise subsample the background to 100 rows itself.
            masker = shap.maskers.Independent(transformed, max_samples=len(transformed))
            explainer = shap.LinearExplainer(last, masker)
        except Exception as error:
            logger.info("LinearExplainer unavailable for %s: %s", type(last).__name__, error)
        else:
            space = "raw" if not classifier else ("log-odds" if hasattr(estimator, "predict_proba") else "raw")
            yield "linear", space, explainer


def _try_tree(shap: Any, model: Any, **kwargs: Any) -> Any:
    try:
        return shap.TreeExplainer(model, **kwargs)
    except Exception as error:  # shap raises many types for unsupported models
        logger.info("TreeExplainer(%s) unavailable for %s: %s", kwargs.get("model_output", "raw"),
                    type(model).__name__, error)
        return None


def _looks_like_trees(model: Any) -> bool:
    module = type(model).__module__
    return (module.startswith(("sklearn.ensemble", "sklearn.tree", "xgboost", "lightgbm", "catboost"))
            and (hasattr(model, "tree_") or hasattr(model, "estimators_") or hasattr(model, "_predictors")
                 or not module.startswith("sklearn")))


def _adds_up(explainer: Explainer) -> bool:
    rows = explainer.background.iloc[: min(5, len(explainer.background))]
    try:
        result = explain_rows(explainer, rows)
    except Exception as error:  # a shap path that breaks on this model: try the next one
        logger.info("%s explainer failed on background rows: %s", explainer.method, error)
        return False
    values = np.asarray(result["values"])
    reconstructed = np.asarray(result["base_values"]) + values.sum(axis=1)
    return bool(np.allclose(reconstructed, result["output"], rtol=ADDITIVITY_RTOL, atol=ADDITIVITY_ATOL))


# ----------------------------------------------------------------------------
# explaining
# ----------------------------------------------------------------------------

def explain_rows(explainer: Explainer, X: pd.DataFrame, *, target_index: int | None = None) -> dict:
    """SHAP values of some rows, per original feature.

    Parameters
    ----------
    explainer : Explainer
        From :func:`build_explainer`.
    X : pandas.DataFrame
        Rows of the original feature columns.
    target_index : int or None
        Which class to explain. None: the positive class (index 1) for binary
        models and each row's predicted class for multiclass models.

    Returns
    -------
    dict
        ``features``; ``values`` (rows x features); ``data`` (the original
        values); ``output`` (the model's output per row in ``output_space``:
        a probability from ``predict_proba``, a log-odds margin from
        ``decision_function``, or ``predict``); ``base_values`` (per row) and
        ``base_value`` (one number when all rows share the explained class,
        else the per-row list); ``target_index``/``target_label`` (per row,
        None for regression); ``output_space``; ``method``. For each row,
        ``base + sum(values) == output``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> result = explain_rows(build_explainer(model, X, task="multiclass"), X.iloc[:2])
    >>> abs(result["base_value"] + sum(result["values"][0]) - result["output"][0]) < 1e-9
    True
    """
    if not isinstance(explainer, Explainer):
        raise ValueError(f"explainer must come from build_explainer, not {type(explainer).__name__}.")
    if not isinstance(X, pd.DataFrame) or len(X) == 0:
        raise ValueError("X must be a non-empty pandas DataFrame of the original features.")
    names = explainer.feature_names
    missing = [n for n in names if n not in X.columns]
    if missing:
        raise ValueError(f"X lacks the feature columns {missing[:8]}.")
    X = X[names]
    if explainer.method == "kernel":
        raw, base = _kernel_values(explainer, X)
    else:
        raw, base = _shap_values(explainer, X)
    values3, base_k = _as_outputs(raw, base)
    outputs = _model_outputs(explainer, X)
    targets = _targets(explainer, X, target_index, outputs)
    n = len(X)
    binary_single = values3.shape[2] == 1 and explainer.task == "binary"
    values = np.zeros((n, len(names)))
    base_values = np.zeros(n)
    output = np.zeros(n)
    for i in range(n):
        t = targets[i]
        if binary_single:
            sign = 1.0 if t == 1 else -1.0
            values[i] = sign * values3[i, :, 0]
            shift = 1.0 if explainer.output_space == "probability" and t == 0 else 0.0
            base_values[i] = shift + sign * base_k[0]
        else:
            column = 0 if explainer.task == "regression" else t
            values[i] = values3[i, :, column]
            base_values[i] = base_k[column]
        output[i] = _output_for(explainer, outputs, i, t)
    uniform = len(set(targets)) == 1
    labels = [None if t is None else explainer.classes[t] for t in targets]
    return {
        "features": list(names),
        "values": values.tolist(),
        "data": [[to_native(v) for v in row] for row in X.itertuples(index=False, name=None)],
        "index": [to_native(i) for i in X.index],
        "output": output.tolist(),
        "base_values": base_values.tolist(),
        "base_value": float(base_values[0]) if uniform else base_values.tolist(),
        "target_index": targets,
        "target_label": labels,
        "output_space": explainer.output_space,
        "method": explainer.method,
    }


def row_explanation(result: dict, i: int = 0) -> dict:
    """Return row ``i`` of an :func:`explain_rows` result as one flat explanation.

    Examples
    --------
    >>> r = {"features": ["a"], "values": [[0.5]], "data": [[1]], "output": [1.5],
    ...      "base_values": [1.0], "target_label": [None], "output_space": "raw", "method": "tree"}
    >>> row_explanation(r)["base_value"]
    1.0
    """
    if not 0 <= i < len(result["values"]):
        raise ValueError(f"row {i} is not in the explanation ({len(result['values'])} rows).")
    return {
        "features": list(result["features"]),
        "values": list(result["values"][i]),
        "data": list(result["data"][i]),
        "base_value": float(result["base_values"][i]),
        "output": float(result["output"][i]),
        "target_label": result["target_label"][i],
        "output_space": result["output_space"],
        "method": result.get("method"),
    }


def _shap_values(explainer: Explainer, X: pd.DataFrame) -> tuple[np.ndarray, Any]:
    pre = preprocessor(explainer.estimator)
    transformed = _dense(pre.transform(X)) if pre is not None else _dense(X)
    shap_explainer = explainer.shap_explainer
    raw = np.asarray(shap_explainer.shap_values(transformed), dtype=float)
    if raw.ndim == 3 and raw.shape[0] != len(X):  # older layout: (outputs, rows, columns)
        raw = np.moveaxis(raw, 0, 2)
    # Sum transformed-column contributions back into their original feature.
    if raw.ndim == 2:
        raw = raw @ explainer.weights
    else:
        raw = np.einsum("noc,of->nfc", raw, explainer.weights)
    return raw, shap_explainer.expected_value


@contextmanager
def _seeded_global_rng(seed: int):
    """Kernel SHAP samples coalitions with numpy's global RNG: seed it, then put it back."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _kernel_values(explainer: Explainer, X: pd.DataFrame) -> tuple[np.ndarray, Any]:
    import shap

    names = explainer.feature_names
    background = explainer.background
    # Kernel SHAP needs numbers: text/categorical columns become codes into a level table.
    tables: dict[str, np.ndarray] = {}
    for name in names:
        column = background[name]
        if not is_numeric_dtype(column) or is_bool_dtype(column):
            levels = pd.unique(pd.concat([column, X[name]], ignore_index=True).astype(object))
            tables[name] = np.asarray(levels, dtype=object)
    dtypes = {name: background[name].dtype for name in names}

    def encode(frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(names)))
        for j, name in enumerate(names):
            if name in tables:
                lookup = {v: k for k, v in enumerate(tables[name])}
                out[:, j] = [lookup[v] for v in frame[name].astype(object)]
            else:
                out[:, j] = frame[name].to_numpy(dtype=float)
        return out

    def decode(codes: np.ndarray) -> pd.DataFrame:
        data = {}
        for j, name in enumerate(names):
            if name in tables:
                data[name] = pd.Series(tables[name][codes[:, j].astype(int)]).astype(dtypes[name])
            else:
                data[name] = pd.Series(codes[:, j]).astype(dtypes[name])
        return pd.DataFrame(data, columns=names)

    estimator = explainer.estimator
    response = _response(explainer)

    def model(codes: np.ndarray) -> np.ndarray:
        return response(decode(codes))

    kernel = shap.KernelExplainer(model, encode(background), link="identity", silent=True)
    with _seeded_global_rng(explainer.random_state):
        raw = kernel.shap_values(encode(X), nsamples=explainer.max_evals, l1_reg=False, silent=True)
    logger.debug("kernel SHAP on %d rows of %s", len(X), type(estimator).__name__)
    return np.asarray(raw, dtype=float), kernel.expected_value


def _response(explainer: Explainer):
    estimator = explainer.estimator
    if explainer.task == "regression":
        return lambda frame: np.asarray(estimator.predict(frame), dtype=float)
    if explainer.output_space == "probability":
        return lambda frame: np.asarray(estimator.predict_proba(frame), dtype=float)
    return lambda frame: np.asarray(estimator.decision_function(frame), dtype=float)


def _as_outputs(raw: np.ndarray, base: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return values as (rows, features, outputs) and base values as (outputs,)."""
    base = np.atleast_1d(np.asarray(base, dtype=float)).ravel()
    if raw.ndim == 2:
        return raw[:, :, None], base[:1]
    return raw, base


def _model_outputs(explainer: Explainer, X: pd.DataFrame) -> np.ndarray:
    out = _response(explainer)(X)
    return out if out.ndim == 2 else out[:, None]


def _targets(explainer: Explainer, X: pd.DataFrame, target_index: int | None,
             outputs: np.ndarray) -> list[int | None]:
    n = len(X)
    if explainer.task == "regression":
        if target_index not in (None, 0):
            raise ValueError(f"target_index must be None for regression; got {target_index!r}.")
        return [None] * n
    k = len(explainer.classes)
    if target_index is not None:
        if not isinstance(target_index, (int, np.integer)) or isinstance(target_index, bool) \
                or not 0 <= target_index < k:
            raise ValueError(f"target_index must be an integer in [0, {k - 1}]; got {target_index!r}.")
        return [int(target_index)] * n
    if explainer.task == "binary":
        return [1] * n
    if outputs.shape[1] == k:
        return [int(t) for t in np.argmax(outputs, axis=1)]
    predicted = explainer.estimator.predict(X)
    position = {to_native(c): i for i, c in enumerate(explainer.classes)}
    return [position[to_native(c)] for c in predicted]


def _output_for(explainer: Explainer, outputs: np.ndarray, i: int, t: int | None) -> float:
    if t is None:
        return float(outputs[i, 0])
    if outputs.shape[1] == 1:  # binary margin of the positive class
        return float(outputs[i, 0]) if t == 1 else -float(outputs[i, 0])
    return float(outputs[i, t])


# ----------------------------------------------------------------------------
# cached sample
# ----------------------------------------------------------------------------

def shap_sample(estimator: Any, X: pd.DataFrame, *, task: str, n: int = 200, random_state: int = 0,
                target_index: int | None = None, max_background: int = 100,
                max_evals: int | None = None) -> dict:
    """Explain a seeded sample of rows: the cached input of mean |SHAP| and dependence plots.

    Returns
    -------
    dict
        The :func:`explain_rows` result for ``n`` rows sampled from ``X``
        (seeded, without replacement; the background is drawn from ``X``
        too), plus ``n_samples``, ``n_total`` and ``is_fast``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> shap_sample(model, X, task="multiclass", n=20)["n_samples"]
    20
    """
    check_task(task)
    if not isinstance(X, pd.DataFrame) or len(X) == 0:
        raise ValueError("X must be a non-empty pandas DataFrame of the original features.")
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}.")
    size = min(int(n), len(X))
    rows = np.sort(np.random.default_rng(random_state).choice(len(X), size=size, replace=False))
    explainer = build_explainer(estimator, X, task=task, max_background=max_background,
                                random_state=random_state, max_evals=max_evals)
    result = explain_rows(explainer, X.iloc[rows], target_index=target_index)
    result.update(n_samples=size, n_total=int(len(X)), is_fast=explainer.is_fast)
    return result


def feature_column(sample: dict, feature: str) -> list:
    """Return the original values of ``feature`` across an explanation's rows."""
    features: Sequence[str] = sample["features"]
    if feature not in features:
        raise ValueError(f"feature {feature!r} is not in the explanation.")
    j = list(features).index(feature)
    return [row[j] for row in sample["data"]]
