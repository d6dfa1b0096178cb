"""Counterfactuals: the smallest change to a row that changes the model's answer.

Search (every step predicts a whole batch of candidates in one call, and the
total number of candidate rows predicted is bounded by ``max_evals``):

1. a sweep of single-feature changes over each unlocked feature's range;
2. if no single change works, greedy coordinate steps: apply the change that
   moves the model furthest towards the goal, then sweep again;
3. random candidates around the row in growing radii (several features at
   once);
4. a minimisation pass on the best candidates: revert every change that is
   not needed, then pull each remaining numeric change back towards the
   original value as far as the goal still holds.

Distance: for numeric features ``|change| / scale`` (scale = IQR, else the
range), and 1 for each changed categorical feature.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from app.ml.predict import (check_feature_meta, check_task, classes_of, column_order, feature_scale,
                            frame_from_arrays, proba_summary, to_native, validate_row)

RADII = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
SHRINK = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


class _Budget:
    """Counts model evaluations (candidate rows predicted)."""

    def __init__(self, total: int):
        self.total = total
        self.used = 0

    @property
    def left(self) -> int:
        return self.total - self.used


class _Problem:
    """The row, the goal and the batched model calls, in an internal numeric encoding.

    A candidate is a float vector: numeric features hold their value,
    categorical features the index of their level.
    """

    def __init__(self, estimator, clean, feature_meta, task, locked, desired_class, target_value, direction,
                 budget):
        self.estimator = estimator
        self.meta = list(feature_meta)
        self.names = [m["name"] for m in self.meta]
        self.order = column_order(estimator, self.meta)
        self.task = task
        self.budget = budget
        self.numeric = np.array([m["kind"] == "numeric" for m in self.meta])
        self.integer = np.array([bool(m.get("integer")) and m["kind"] == "numeric" for m in self.meta])
        self.levels = [[to_native(v) for v in m["levels"]] if m["kind"] == "categorical" else None
                       for m in self.meta]
        self.lo = np.array([float(m["min"]) if m["kind"] == "numeric" else 0.0 for m in self.meta])
        self.hi = np.array([float(m["max"]) if m["kind"] == "numeric" else len(m["levels"]) - 1.0
                            for m in self.meta])
        self.lo = np.where(self.integer, np.ceil(self.lo), self.lo)
        self.hi = np.where(self.integer, np.floor(self.hi), self.hi)
        self.scale = np.array([feature_scale(m) if m["kind"] == "numeric" else 1.0 for m in self.meta])
        self.free = np.array([m["name"] not in locked for m in self.meta])
        self.x0 = self.encode(clean)
        self.desired_class = desired_class
        self.target_value = target_value
        self.direction = direction
        self.classes = classes_of(estimator) if task != "regression" else None
        self.original_class = None
        self.score0 = -np.inf

    def encode(self, row: Mapping) -> np.ndarray:
        out = np.empty(len(self.meta))
        for j, meta in enumerate(self.meta):
            value = row[meta["name"]]
            out[j] = float(value) if self.numeric[j] else float(self.levels[j].index(value))
        return out

    def decode(self, x: np.ndarray) -> dict:
        row = {}
        for j, meta in enumerate(self.meta):
            if self.numeric[j]:
                row[meta["name"]] = int(round(x[j])) if self.integer[j] else float(x[j])
            else:
                row[meta["name"]] = self.levels[j][int(round(x[j]))]
        return row

    def tidy(self, Z: np.ndarray) -> np.ndarray:
        """Clip to the ranges, round integers and level indices, keep locked features."""
        Z = np.clip(Z, self.lo, self.hi)
        Z = np.where(self.integer | ~self.numeric, np.round(Z), Z)
        return np.where(self.free, Z, self.x0)

    def distance(self, Z: np.ndarray) -> np.ndarray:
        diff = np.abs(Z - self.x0)
        cost = np.where(self.numeric, diff / self.scale, (diff > 0).astype(float))
        return cost.sum(axis=1)

    def predict(self, Z: np.ndarray) -> np.ndarray:
        """Return the model's output rows (probabilities or values) for candidates ``Z``."""
        self.budget.used += len(Z)
        columns = {}
        for j, name in enumerate(self.names):
            if self.numeric[j]:
                columns[name] = Z[:, j]
            else:
                levels = np.empty(len(self.levels[j]), dtype=object)
                levels[:] = self.levels[j]
                columns[name] = levels[Z[:, j].astype(int)]
        frame = frame_from_arrays(columns, feature_meta=self.meta, order=self.order)
        if self.task == "regression":
            return np.asarray(self.estimator.predict(frame), dtype=float).reshape(-1, 1)
        if hasattr(self.estimator, "predict_proba"):
            return np.asarray(self.estimator.predict_proba(frame), dtype=float)
        predicted = self.estimator.predict(frame)
        onehot = np.zeros((len(Z), len(self.classes)))
        position = {c: i for i, c in enumerate(self.classes)}
        onehot[np.arange(len(Z)), [position[to_native(c)] for c in predicted]] = 1.0
        return onehot

    def score(self, out: np.ndarray) -> np.ndarray:
        """How far past the goal each candidate is: > 0 (or >= 0 for regression) means reached."""
        if self.task == "regression":
            value = out[:, 0]
            return value - self.target_value if self.direction == "above" else self.target_value - value
        if self.desired_class is not None:
            d = self.classes.index(self.desired_class)
            others = np.delete(out, d, axis=1)
            return out[:, d] - others.max(axis=1)
        o = self.original_class
        others = np.delete(out, o, axis=1)
        return others.max(axis=1) - out[:, o]

    def reached(self, out: np.ndarray) -> np.ndarray:
        if self.task == "regression":
            return self.score(out) >= 0
        predicted = np.argmax(out, axis=1)
        if self.desired_class is not None:
            return predicted == self.classes.index(self.desired_class)
        return predicted != self.original_class

    def summary(self, out_row: np.ndarray) -> dict:
        if self.task == "regression":
            return {"value": float(out_row[0])}
        return proba_summary(self.classes, out_row)


class _Pool:
    """Every candidate evaluated so far, with its distance, score and success."""

    def __init__(self, n_features: int):
        self.Z = np.zeros((0, n_features))
        self.out = None
        self.dist = np.zeros(0)
        self.score = np.zeros(0)
        self.ok = np.zeros(0, dtype=bool)

    def add(self, problem: _Problem, Z: np.ndarray) -> np.ndarray:
        """Evaluate ``Z`` (trimmed to the budget) and return the success mask of what was evaluated."""
        Z = Z[: max(problem.budget.left, 0)]
        if len(Z) == 0:
            return np.zeros(0, dtype=bool)
        out = problem.predict(Z)
        ok = problem.reached(out)
        self.Z = np.vstack([self.Z, Z])
        self.out = out if self.out is None else np.vstack([self.out, out])
        self.dist = np.concatenate([self.dist, problem.distance(Z)])
        self.score = np.concatenate([self.score, problem.score(out)])
        self.ok = np.concatenate([self.ok, ok])
        return ok

    def best(self, m: int = 1) -> np.ndarray:
        """Indices of the ``m`` closest successful candidates."""
        idx = np.flatnonzero(self.ok)
        return idx[np.argsort(self.dist[idx], kind="stable")[:m]]


def find_counterfactual(estimator: Any, row: Mapping, *, feature_meta: Sequence[Mapping], task: str,
                        locked: Sequence[str] = (), desired_class: Any = None, target_value: float | None = None,
                        direction: str | None = None, max_evals: int = 2000, random_state: int = 0) -> dict:
    """Find a small change to ``row`` that changes the model's prediction.

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
        Takes a DataFrame of the original feature columns.
    row : dict
        The row to change (validated with :func:`app.ml.predict.validate_row`).
    feature_meta : list of dict
        Kinds, ranges, integer flags and levels; candidates respect them all.
    task : {"binary", "multiclass", "regression"}
    locked : sequence of str
        Features that must not change.
    desired_class : class label, optional
        Classifiers: the class to reach; default any class other than the
        current prediction.
    target_value : float, optional
        Regressors (required): the value to reach.
    direction : {"above", "below"}, optional
        Regressors: reach ``prediction >= target_value`` ("above") or
        ``<= target_value`` ("below"); default: the side of ``target_value``
        away from the current prediction.
    max_evals : int
        The most candidate rows the model may predict (in batches).
    random_state : int

    Returns
    -------
    dict
        ``found``, ``counterfactual`` (the full row), ``changes`` (list of
        ``feature``/``before``/``after``), ``distance``, ``prediction_before``,
        ``prediction_after`` (``predicted``/``proba``/... or ``value``),
        ``n_evals`` and ``message``. When nothing is found, ``counterfactual``
        is the candidate that came closest to the goal.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> model = LogisticRegression(max_iter=500).fit(X, y)
    >>> meta = [{"name": c, "kind": "numeric", "min": float(X[c].min()), "max": float(X[c].max()),
    ...          "q25": float(X[c].quantile(.25)), "q75": float(X[c].quantile(.75))} for c in X.columns]
    >>> result = find_counterfactual(model, X.iloc[0].to_dict(), feature_meta=meta, task="multiclass",
    ...                              desired_class=1, max_evals=500)
    >>> result["found"], result["prediction_after"]["predicted"]
    (True, 1)
    """
    check_task(task)
    feature_meta = check_feature_meta(feature_meta)
    clean, messages = validate_row(row, feature_meta=feature_meta)
    if messages:
        raise ValueError("Invalid row: " + " ".join(messages))
    names = [m["name"] for m in feature_meta]
    if isinstance(locked, (str, bytes)):
        locked = [locked]
    unknown = [f for f in locked if f not in names]
    if unknown:
        raise ValueError(f"locked names unknown features: {unknown[:8]}.")
    if not isinstance(max_evals, (int, np.integer)) or isinstance(max_evals, bool) or max_evals < 2:
        raise ValueError(f"max_evals must be an integer >= 2; got {max_evals!r}.")
    if task == "regression":
        if desired_class is not None:
            raise ValueError("desired_class is for classifiers; give target_value for a regression.")
        if isinstance(target_value, bool) or not isinstance(target_value, (int, float, np.number)) \
                or not math.isfinite(float(target_value)):
            raise ValueError(f"target_value must be a finite number for a regression; got {target_value!r}.")
        if direction not in (None, "above", "below"):
            raise ValueError(f"direction must be 'above', 'below' or None; got {direction!r}.")
        target_value = float(target_value)
    else:
        if target_value is not None or direction is not None:
            raise ValueError("target_value and direction are for regressions; give desired_class for a classifier.")
        classes = classes_of(estimator)
        if desired_class is not None:
            desired_class = to_native(desired_class)
            matches = [c for c in classes if c == desired_class or str(c) == str(desired_class)]
            if not matches:
                raise ValueError(f"desired_class {desired_class!r} is not one of the classes {classes}.")
            desired_class = matches[0]

    budget = _Budget(int(max_evals))
    problem = _Problem(estimator, clean, feature_meta, task, set(locked), desired_class, target_value,
                       direction, budget)
    out0 = problem.predict(problem.x0[None, :])
    before = problem.summary(out0[0])
    if task == "regression":
        if problem.direction is None:
            problem.direction = "above" if target_value > out0[0, 0] else "below"
    else:
        problem.original_class = int(np.argmax(out0[0]))
    problem.score0 = float(problem.score(out0)[0])
    if problem.reached(out0)[0]:
        return _result(problem, problem.x0, out0[0], before, True,
                       "The model already gives this answer; nothing needs to change.")
    if not problem.free.any():
        return _result(problem, problem.x0, out0[0], before, False,
                       "Every feature is locked, so nothing can change.")

    rng = np.random.default_rng(random_state)
    pool = _Pool(len(names))
    _search(problem, pool, rng)
    if pool.ok.any():
        _minimise(problem, pool)
        best = pool.best(1)[0]
        z, out = pool.Z[best], pool.out[best]
        z, out = _prettify(problem, pool, z, out)
        return _result(problem, z, out, before, True, _found_message(problem, z))
    if len(pool.score):
        closest = _simplify_closest(problem, pool, int(np.lexsort((pool.dist, -pool.score))[0]))
        z, out = pool.Z[closest], pool.out[closest]
    else:
        z, out = problem.x0, out0[0]
    return _result(problem, z, out, before, False,
                   f"No counterfactual found within {budget.total} model evaluations"
                   + (f" with {', '.join(locked)} locked" if locked else "")
                   + "; showing the candidate that came closest.")


# ----------------------------------------------------------------------------
# search steps
# ----------------------------------------------------------------------------

def _sweep_values(problem: _Problem, j: int, x: np.ndarray, points: int) -> np.ndarray:
    if not problem.numeric[j]:
        return np.array([v for v in range(len(problem.levels[j])) if v != x[j]], dtype=float)
    meta = problem.meta[j]
    grid = np.linspace(problem.lo[j], problem.hi[j], points)
    quantiles = [float(meta[q]) for q in ("q01", "q25", "median", "q75", "q99")
                 if isinstance(meta.get(q), (int, float)) and math.isfinite(float(meta[q]))]
    values = np.concatenate([grid, quantiles])
    values = np.clip(values, problem.lo[j], problem.hi[j])
    if problem.integer[j]:
        values = np.round(values)
    values = np.unique(values)
    return values[values != x[j]]


def _sweep(problem: _Problem, pool: _Pool, x: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate every single-feature change of ``x``; return the candidates and their pool indices."""
    blocks = []
    for j in np.flatnonzero(problem.free):
        values = _sweep_values(problem, j, x, points)
        if len(values) == 0:
            continue
        block = np.repeat(x[None, :], len(values), axis=0)
        block[:, j] = values
        blocks.append(block)
    if not blocks:
        return np.zeros((0, len(x))), np.zeros(0, dtype=int)
    Z = problem.tidy(np.vstack(blocks))
    start = len(pool.dist)
    pool.add(problem, Z)
    return Z, np.arange(start, len(pool.dist))


def _search(problem: _Problem, pool: _Pool, rng: np.random.Generator) -> None:
    budget = problem.budget
    n_free = int(problem.free.sum())
    n_numeric = int((problem.free & problem.numeric).sum())
    levels = sum(len(problem.levels[j]) - 1 for j in np.flatnonzero(problem.free & ~problem.numeric))
    # Use at most about a third of the budget for one sweep.
    points = int(np.clip((budget.left / 3 - levels) / max(n_numeric, 1) - 5, 3, 25))

    _, indices = _sweep(problem, pool, problem.x0, points)
    x, x_score = problem.x0.copy(), problem.score0
    # Greedy coordinate steps towards the goal while no candidate reaches it.
    while not pool.ok.any() and budget.left > budget.total * 0.4 and len(indices):
        step = indices[np.argmax(pool.score[indices])]
        if pool.score[step] <= x_score:
            break
        x, x_score = pool.Z[step].copy(), pool.score[step]
        _, indices = _sweep(problem, pool, x, points)

    # Random candidates in growing radii around the row (and around the greedy end point).
    batch = int(np.clip(budget.left // 8, 16, 256))
    rounds_after_success = 0
    for round_, radius in enumerate(RADII):
        if budget.left <= budget.total * 0.2 or rounds_after_success >= 2:
            break
        if pool.ok.any():
            rounds_after_success += 1
        centre = x if (round_ % 2 and not pool.ok.any()) else problem.x0
        pool.add(problem, _random_candidates(problem, centre, radius, batch, n_free, rng))


def _random_candidates(problem: _Problem, centre: np.ndarray, radius: float, m: int, n_free: int,
                       rng: np.random.Generator) -> np.ndarray:
    free = np.flatnonzero(problem.free)
    Z = np.repeat(centre[None, :], m, axis=0)
    # Each candidate changes a few features: about 1 + radius of them.
    p_change = min(1.0, (1.0 + radius) / max(n_free, 1))
    change = rng.random((m, len(free))) < p_change
    empty = ~change.any(axis=1)
    change[empty, rng.integers(0, len(free), size=int(empty.sum()))] = True
    for k, j in enumerate(free):
        rows = np.flatnonzero(change[:, k])
        if len(rows) == 0:
            continue
        if problem.numeric[j]:
            Z[rows, j] = centre[j] + rng.normal(0.0, radius * problem.scale[j], size=len(rows))
        else:
            n_levels = len(problem.levels[j])
            if n_levels > 1:
                shift = rng.integers(1, n_levels, size=len(rows))
                Z[rows, j] = (centre[j] + shift) % n_levels
    return problem.tidy(Z)


def _minimise(problem: _Problem, pool: _Pool, keep: int = 3) -> None:
    """Revert needless changes and shrink the others, for the best few successes."""
    for start in pool.best(keep):
        z = pool.Z[start].copy()
        z_dist = pool.dist[start]
        for _ in range(2 * len(z)):
            if problem.budget.left <= 0:
                return
            changed = np.flatnonzero(z != problem.x0)
            if len(changed) == 0:
                break
            candidates = []
            for j in changed:
                for fraction in SHRINK if problem.numeric[j] else (0.0,):
                    c = z.copy()
                    c[j] = problem.x0[j] + fraction * (z[j] - problem.x0[j])
                    candidates.append(c)
            Z = problem.tidy(np.array(candidates))
            Z = Z[problem.distance(Z) < z_dist - 1e-12]
            if len(Z) == 0:
                break
            first = len(pool.dist)
            ok = pool.add(problem, Z)
            if not ok.any():
                break
            indices = first + np.flatnonzero(ok)
            best = indices[np.argmin(pool.dist[indices])]
            z, z_dist = pool.Z[best].copy(), pool.dist[best]


def _simplify_closest(problem: _Problem, pool: _Pool, index: int) -> int:
    """Revert changes of the closest failed candidate that do not bring it nearer the goal."""
    for _ in range(len(problem.names)):
        z = pool.Z[index]
        changed = np.flatnonzero(z != problem.x0)
        if len(changed) == 0 or problem.budget.left <= 0:
            break
        Z = np.repeat(z[None, :], len(changed), axis=0)
        Z[np.arange(len(changed)), changed] = problem.x0[changed]
        first = len(pool.dist)
        pool.add(problem, Z)
        new = np.arange(first, len(pool.dist))
        good = new[pool.score[new] >= pool.score[index] - 1e-12]
        if len(good) == 0:
            break
        index = int(good[np.argmax(pool.score[good])])
    return index


def _prettify(problem: _Problem, pool: _Pool, z: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Round changed non-integer values to a readable precision if the goal still holds."""
    changed = np.flatnonzero((z != problem.x0) & problem.numeric & ~problem.integer)
    if len(changed) == 0 or problem.budget.left <= 0:
        return z, out
    pretty = z.copy()
    for j in changed:
        decimals = max(0, 2 - int(math.floor(math.log10(problem.scale[j]))))
        rounded = round(float(z[j]), decimals)
        # Round away from the original value so the change does not shrink below what is needed.
        step = 10.0 ** -decimals
        if abs(rounded - problem.x0[j]) < abs(z[j] - problem.x0[j]):
            rounded += step * np.sign(z[j] - problem.x0[j])
        pretty[j] = rounded
    pretty = problem.tidy(pretty[None, :])
    first = len(pool.dist)
    ok = pool.add(problem, pretty)
    if len(ok) and ok[0]:
        return pool.Z[first], pool.out[first]
    return z, out


# ----------------------------------------------------------------------------
# result
# ----------------------------------------------------------------------------

def _found_message(problem: _Problem, z: np.ndarray) -> str:
    n = int((z != problem.x0).sum())
    what = "one feature" if n == 1 else f"{n} features"
    if problem.task == "regression":
        return f"Changing {what} moves the prediction {problem.direction} {problem.target_value:g}."
    return f"Changing {what} changes the predicted class."


def _result(problem: _Problem, z: np.ndarray, out: np.ndarray, before: dict, found: bool, message: str) -> dict:
    original = problem.decode(problem.x0)
    counterfactual = problem.decode(z)
    changes = [{"feature": name, "before": original[name], "after": counterfactual[name]}
               for name in problem.names if original[name] != counterfactual[name]]
    return {
        "found": bool(found),
        "counterfactual": counterfactual,
        "changes": changes,
        "distance": float(problem.distance(z[None, :])[0]),
        "prediction_before": before,
        "prediction_after": problem.summary(out),
        "n_evals": int(problem.budget.used),
        "message": message,
    }
