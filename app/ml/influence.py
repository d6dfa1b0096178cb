"""Which features matter: permutation and impurity importance, PDP/ICE, mean |SHAP|.

Every result is reported per ORIGINAL feature, even for Pipelines whose
ColumnTransformer one-hot encodes categorical columns: transformed columns
are mapped back to the column they came from (see
:func:`transformed_feature_weights`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.inspection import partial_dependence, permutation_importance
from sklearn.pipeline import Pipeline

from app.ml.predict import final_step, preprocessor, to_native

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------
# mapping transformed columns back to original features
# ----------------------------------------------------------------------------

def transformed_feature_weights(transformer: Any, input_names: Sequence[str]) -> np.ndarray | None:
    """Map the columns a fitted transformer outputs back to its input columns.

    Returns a matrix ``W`` of shape ``(n_outputs, n_inputs)`` whose rows sum
    to one: ``W[j, i]`` is the share of output column ``j`` that belongs to
    input feature ``i``. Additive quantities on transformed columns (SHAP
    values, impurity importances) become per-input quantities as ``v @ W``.

    A ColumnTransformer is mapped exactly from its fitted column lists; a
    Pipeline is the product of its steps; a selector keeps its support; other
    transformers are matched by output names (``color_red`` comes from
    ``color``); an output that names no input (e.g. a PCA component) is
    shared equally among the inputs. Returns None when the number of outputs
    cannot be known.

    Parameters
    ----------
    transformer : fitted transformer, Pipeline, ColumnTransformer, "passthrough" or None
    input_names : list of str
        The transformer's input columns, in the order it was fitted on.

    Returns
    -------
    numpy.ndarray or None

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.compose import ColumnTransformer
    >>> from sklearn.preprocessing import OneHotEncoder
    >>> X = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "c"]})
    >>> ct = ColumnTransformer([("oh", OneHotEncoder(), ["c"])], remainder="passthrough").fit(X)
    >>> transformed_feature_weights(ct, ["x", "c"]).tolist()
    [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]
    """
    names = [str(n) for n in input_names]
    n_in = len(names)
    if transformer is None or (isinstance(transformer, str) and transformer == "passthrough"):
        return np.eye(n_in)
    if isinstance(transformer, str):  # "drop"
        return np.zeros((0, n_in))
    if isinstance(transformer, Pipeline):
        weights = np.eye(n_in)
        current = names
        for _, step in transformer.steps:
            if step is None or (isinstance(step, str) and step == "passthrough"):
                continue
            step_weights = transformed_feature_weights(step, current)
            if step_weights is None:
                return None
            weights = step_weights @ weights
            current = _output_names(step, current) or [f"x{i}" for i in range(step_weights.shape[0])]
        return weights
    if isinstance(transformer, ColumnTransformer):
        return _column_transformer_weights(transformer, names)
    if hasattr(transformer, "get_support"):
        try:
            mask = np.asarray(transformer.get_support(), dtype=bool)
        except (AttributeError, ValueError, TypeError):
            mask = None
        if mask is not None and mask.shape == (n_in,):
            return np.eye(n_in)[mask]
    out_names = _output_names(transformer, names)
    if out_names is None:
        return None
    return _weights_from_names(out_names, names)


def _column_transformer_weights(ct: ColumnTransformer, names: list[str]) -> np.ndarray | None:
    output_indices = getattr(ct, "output_indices_", None)
    input_indices = getattr(ct, "_transformer_to_input_indices", None)
    if output_indices is None or input_indices is None:
        return None
    n_out = max((s.stop for s in output_indices.values()), default=0)
    weights = np.zeros((n_out, len(names)))
    fitted = dict(ct.named_transformers_)
    for name, out_slice in output_indices.items():
        width = out_slice.stop - out_slice.start
        if width == 0:
            continue
        cols = list(input_indices.get(name, []))
        transformer = fitted.get(name, "passthrough")
        sub = transformed_feature_weights(transformer, [names[i] for i in cols])
        if sub is None or sub.shape != (width, len(cols)):
            return None
        weights[out_slice.start:out_slice.stop][:, cols] = sub
    return weights


def _output_names(transformer: Any, input_names: list[str]) -> list[str] | None:
    getter = getattr(transformer, "get_feature_names_out", None)
    if getter is None:
        return None
    for call in (lambda: getter(input_names), getter):
        try:
            return [str(n) for n in call()]
        except (ValueError, TypeError, AttributeError, NotImplementedError):
            continue
    return None


def _weights_from_names(out_names: list[str], in_names: list[str]) -> np.ndarray:
    weights = np.zeros((len(out_names), len(in_names)))
    if out_names == in_names:
        return np.eye(len(in_names))
    by_length = sorted(range(len(in_names)), key=lambda i: -len(in_names[i]))
    for j, out in enumerate(out_names):
        match = next((i for i in by_length if out == in_names[i]), None)
        if match is None:
            match = next((i for i in by_length if out.startswith(in_names[i] + "_")), None)
        if match is None:
            # Names such as "a b" or "a^2" (polynomial terms) involve several inputs.
            tokens = set(out.replace("^", " ").split())
            involved = [i for i in range(len(in_names)) if in_names[i] in tokens]
            if not involved:
                involved = [i for i in by_length if in_names[i] in out][:1]
            if not involved:
                involved = list(range(len(in_names)))
            weights[j, involved] = 1.0 / len(involved)
            continue
        weights[j, match] = 1.0
    return weights


def original_feature_weights(estimator: Any, feature_names: Sequence[str]) -> np.ndarray | None:
    """Return the weight matrix from the final step's inputs to ``feature_names``.

    ``feature_names`` may be in any order; the result's columns follow it.
    """
    names = [str(n) for n in feature_names]
    pre = preprocessor(estimator)
    if pre is None:
        return np.eye(len(names))
    trained = getattr(estimator, "feature_names_in_", None)
    order = [str(n) for n in trained] if trained is not None else names
    if sorted(order) != sorted(names):
        raise ValueError(f"feature_names {names[:8]} do not match the columns the model was trained on {order[:8]}.")
    weights = transformed_feature_weights(pre, order)
    if weights is None:
        return None
    position = {n: i for i, n in enumerate(order)}
    return weights[:, [position[n] for n in names]]


# ----------------------------------------------------------------------------
# importances
# ----------------------------------------------------------------------------

def permutation_importance_summary(estimator: Any, X: pd.DataFrame, y: Any, *, scoring: Any = None,
                                   n_repeats: int = 5, random_state: int = 0,
                                   max_samples: int | None = None) -> dict:
    """Permutation importance per original feature, sorted from most to least important.

    A thin, checked wrapper over :func:`sklearn.inspection.permutation_importance`:
    the values are exactly sklearn's on the same inputs. With ``max_samples``
    a seeded random subset of rows is taken first (``n_samples`` says how many
    rows were used).

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
    X : pandas.DataFrame
        Original feature columns.
    y : array-like
        True targets for ``X``.
    scoring : str, callable or None
        Passed to sklearn; None means the estimator's ``score`` (accuracy or R^2).
    n_repeats : int
    random_state : int
    max_samples : int or None
        Rows to sample before scoring; None uses every row.

    Returns
    -------
    dict
        ``features``, ``mean``, ``std`` (drop in score, higher = more
        important), ``scoring`` (a label), ``n_samples``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> model = DecisionTreeClassifier(random_state=0).fit(X, y)
    >>> result = permutation_importance_summary(model, X, y, n_repeats=2)
    >>> result["features"][0], result["n_samples"]
    ('petal width (cm)', 150)
    """
    if not isinstance(X, pd.DataFrame):
        raise ValueError(f"X must be a pandas DataFrame of the original features, not {type(X).__name__}.")
    y = np.asarray(y)
    if len(y) != len(X):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}.")
    if len(X) < 2:
        raise ValueError(f"permutation importance needs at least 2 rows; got {len(X)}.")
    if not isinstance(n_repeats, (int, np.integer)) or isinstance(n_repeats, bool) or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive integer; got {n_repeats!r}.")
    if max_samples is not None:
        if not isinstance(max_samples, (int, np.integer)) or isinstance(max_samples, bool) or max_samples < 2:
            raise ValueError(f"max_samples must be an integer >= 2 or None; got {max_samples!r}.")
        if max_samples < len(X):
            rows = np.sort(np.random.default_rng(random_state).choice(len(X), size=int(max_samples), replace=False))
            X, y = X.iloc[rows], y[rows]
    result = permutation_importance(estimator, X, y, scoring=scoring, n_repeats=int(n_repeats),
                                    random_state=random_state)
    label = scoring if isinstance(scoring, str) else (
        getattr(scoring, "__name__", "custom scorer") if scoring is not None
        else ("accuracy" if is_classifier(estimator) else "r2"))
    order = np.argsort(-result.importances_mean, kind="stable")
    return {
        "features": [str(X.columns[i]) for i in order],
        "mean": [float(result.importances_mean[i]) for i in order],
        "std": [float(result.importances_std[i]) for i in order],
        "scoring": label,
        "n_samples": int(len(X)),
        "n_repeats": int(n_repeats),
    }


def impurity_importance(estimator: Any, *, feature_names: Sequence[str]) -> dict | None:
    """Impurity (mean decrease in impurity) importance per original feature.

    Reads ``feature_importances_`` of the final step; importances of one-hot
    columns are summed back into their source column. For forests, ``std``
    is the spread of the per-tree importances. Returns None when the model
    has no ``feature_importances_`` or its columns cannot be mapped back.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> round(sum(impurity_importance(model, feature_names=list(X.columns))["mean"]), 6)
    1.0
    """
    names = [str(n) for n in feature_names]
    if not names:
        raise ValueError("feature_names must not be empty.")
    last = final_step(estimator)
    try:
        importances = getattr(last, "feature_importances_", None)
    except (AttributeError, ValueError):
        importances = None
    if importances is None:
        return None
    importances = np.asarray(importances, dtype=float)
    weights = original_feature_weights(estimator, names)
    if weights is None or weights.shape[0] != importances.shape[0]:
        logger.info("impurity importance: cannot map %d model columns back to %d features",
                    importances.shape[0], len(names))
        return None
    mean = importances @ weights
    std = None
    trees = getattr(last, "estimators_", None)
    if isinstance(trees, (list, np.ndarray)) and len(trees) > 1:
        per_tree = [np.asarray(getattr(t, "feature_importances_", []), dtype=float) for t in np.ravel(trees)]
        if all(p.shape == importances.shape for p in per_tree):
            std = np.std(np.vstack(per_tree) @ weights, axis=0)
    order = np.argsort(-mean, kind="stable")
    return {
        "features": [names[i] for i in order],
        "mean": [float(mean[i]) for i in order],
        "std": [float(std[i]) for i in order] if std is not None else None,
        "scoring": "mean decrease in impurity",
    }


def mean_abs_shap(shap_result: Mapping) -> dict:
    """Mean absolute SHAP value per feature, sorted descending.

    Parameters
    ----------
    shap_result : dict
        An :func:`app.ml.explain.explain_rows` (or ``shap_sample``) result.

    Returns
    -------
    dict
        ``features``, ``values`` (and the same numbers as ``mean`` for the
        importance figure), ``output_space``.

    Examples
    --------
    >>> mean_abs_shap({"features": ["a", "b"], "values": [[1.0, -3.0], [-1.0, 1.0]]})["features"]
    ['b', 'a']
    """
    if not isinstance(shap_result, Mapping) or "features" not in shap_result or "values" not in shap_result:
        raise ValueError("shap_result must be an explain_rows result with 'features' and 'values'.")
    features = [str(f) for f in shap_result["features"]]
    values = np.asarray(shap_result["values"], dtype=float)
    if values.ndim != 2 or values.shape[1] != len(features) or values.shape[0] == 0:
        raise ValueError(f"values must be a non-empty rows x {len(features)} table; got shape {values.shape}.")
    means = np.abs(values).mean(axis=0)
    order = np.argsort(-means, kind="stable")
    ranked = [float(means[i]) for i in order]
    return {
        "features": [features[i] for i in order],
        "values": ranked,
        "mean": ranked,
        "std": None,
        "output_space": shap_result.get("output_space"),
        "scoring": "mean |SHAP value|",
    }


# ----------------------------------------------------------------------------
# partial dependence
# ----------------------------------------------------------------------------

def _target_column(estimator: Any, average: np.ndarray, target_index: int | None) -> tuple[int, Any]:
    """Pick the output row of sklearn's (n_outputs, ...) array; return (row, class label)."""
    n_outputs = average.shape[0]
    classes = getattr(estimator, "classes_", None) if is_classifier(estimator) else None
    if classes is None:
        if target_index not in (None, 0):
            raise ValueError(f"target_index must be None for a regressor; got {target_index!r}.")
        return 0, None
    classes = [to_native(c) for c in classes]
    if len(classes) == 2 and n_outputs == 1:
        # sklearn reports the positive class only; class 0 is its complement.
        if target_index in (None, 1):
            return 0, classes[1]
        if target_index == 0:
            return -1, classes[0]
        raise ValueError(f"target_index must be 0 or 1 for a binary classifier; got {target_index!r}.")
    index = 0 if target_index is None else target_index
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool) or not 0 <= index < n_outputs:
        raise ValueError(f"target_index must be an integer in [0, {n_outputs - 1}]; got {target_index!r}.")
    return int(index), classes[int(index)]


def _pick(values: np.ndarray, column: int, *, probability: bool = True) -> np.ndarray:
    if column == -1:
        # Class 0 of a binary model: the complement of a probability, the negation of a margin.
        return 1.0 - values[0] if probability else -values[0]
    return values[column]


def _check_frame(X: Any, features: Sequence[Any]) -> None:
    if not isinstance(X, pd.DataFrame):
        raise ValueError(f"X must be a pandas DataFrame of the original features, not {type(X).__name__}.")
    if len(X) == 0:
        raise ValueError("X has no rows.")
    for feature in features:
        if feature not in X.columns:
            raise ValueError(f"feature {feature!r} is not a column of X.")


def partial_dependence_1d(estimator: Any, X: pd.DataFrame, feature: str, *, categorical: bool = False,
                          grid_resolution: int = 30, ice_samples: int = 50, target_index: int | None = None,
                          random_state: int = 0) -> dict:
    """Partial dependence (average) and ICE curves of one feature.

    The average is exactly :func:`sklearn.inspection.partial_dependence`
    (``method="brute"``) over all of ``X``; ICE curves are computed on a
    seeded sample of ``ice_samples`` rows over the same grid. Classifiers
    give probabilities: the positive class for binary models, class
    ``target_index`` (default 0) for multiclass.

    Returns
    -------
    dict
        ``feature``, ``grid``, ``average``, ``ice`` (list of curves),
        ``centered_ice`` (each curve minus its value at the first grid point),
        ``centered_average``, ``ice_rows`` (index labels of the sampled rows),
        ``kind`` ("categorical" or "numeric"), ``target`` (class label or None).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> model = DecisionTreeClassifier(random_state=0).fit(X, y)
    >>> pdp = partial_dependence_1d(model, X, "petal width (cm)", grid_resolution=5, target_index=2)
    >>> len(pdp["grid"]), len(pdp["ice"])
    (5, 50)
    """
    _check_frame(X, [feature])
    if not isinstance(grid_resolution, (int, np.integer)) or grid_resolution < 2:
        raise ValueError(f"grid_resolution must be an integer >= 2; got {grid_resolution!r}.")
    if not isinstance(ice_samples, (int, np.integer)) or ice_samples < 0:
        raise ValueError(f"ice_samples must be a non-negative integer; got {ice_samples!r}.")
    categorical_features = [feature] if categorical else None
    average = partial_dependence(estimator, X, [feature], categorical_features=categorical_features,
                                 grid_resolution=int(grid_resolution), method="brute", kind="average")
    column, target = _target_column(estimator, average["average"], target_index)
    grid = average["grid_values"][0]
    mean_curve = _pick(average["average"], column, probability=hasattr(estimator, "predict_proba"))
    ice_rows = []
    ice = np.zeros((0, len(grid)))
    if ice_samples > 0:
        size = min(int(ice_samples), len(X))
        rows = np.sort(np.random.default_rng(random_state).choice(len(X), size=size, replace=False))
        sample = X.iloc[rows]
        individual = partial_dependence(estimator, sample, [feature], categorical_features=categorical_features,
                                        custom_values={feature: grid}, method="brute", kind="individual")
        ice = _pick(individual["individual"], column, probability=hasattr(estimator, "predict_proba"))
        ice_rows = [to_native(i) for i in sample.index]
    centered = ice - ice[:, :1] if len(ice) else ice
    return {
        "feature": str(feature),
        "grid": [to_native(v) for v in grid],
        "average": [float(v) for v in mean_curve],
        "centered_average": [float(v - mean_curve[0]) for v in mean_curve],
        "ice": ice.tolist(),
        "centered_ice": centered.tolist(),
        "ice_rows": ice_rows,
        "kind": "categorical" if categorical else "numeric",
        "target": target,
        "n_samples": int(len(X)),
    }


def partial_dependence_2d(estimator: Any, X: pd.DataFrame, features: Sequence[str], *, grid_resolution: int = 15,
                          target_index: int | None = None, categorical: Sequence[bool] = (False, False)) -> dict:
    """Two-way partial dependence, exactly sklearn's ``partial_dependence`` (brute).

    Returns
    -------
    dict
        ``features``, ``grid_x``, ``grid_y``, ``values`` (``len(grid_x)``
        lists of ``len(grid_y)`` values: ``values[i][j]`` is at
        ``(grid_x[i], grid_y[j])``), ``target``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> model = DecisionTreeClassifier(random_state=0).fit(X, y)
    >>> pdp = partial_dependence_2d(model, X, list(X.columns[2:]), grid_resolution=4, target_index=1)
    >>> len(pdp["values"]), len(pdp["values"][0])
    (4, 4)
    """
    features = list(features)
    if len(features) != 2 or features[0] == features[1]:
        raise ValueError(f"features must be two different columns; got {features!r}.")
    _check_frame(X, features)
    if not isinstance(grid_resolution, (int, np.integer)) or grid_resolution < 2:
        raise ValueError(f"grid_resolution must be an integer >= 2; got {grid_resolution!r}.")
    flags = list(categorical)
    if len(flags) != 2:
        raise ValueError(f"categorical must be two flags; got {categorical!r}.")
    categorical_features = [f for f, flag in zip(features, flags) if flag] or None
    result = partial_dependence(estimator, X, features, categorical_features=categorical_features,
                                grid_resolution=int(grid_resolution), method="brute", kind="average")
    column, target = _target_column(estimator, result["average"], target_index)
    values = _pick(result["average"], column, probability=hasattr(estimator, "predict_proba"))
    return {
        "features": [str(f) for f in features],
        "grid_x": [to_native(v) for v in result["grid_values"][0]],
        "grid_y": [to_native(v) for v in result["grid_values"][1]],
        "values": values.tolist(),
        "target": target,
    }
