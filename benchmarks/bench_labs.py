"""Server time per update of the two labs, at default and largest allowed sizes.

Run with ``python -m benchmarks.bench_labs`` (``--quick`` for fewer repeats).
Each row times the callback function itself (validate, fit, figures) and the
callback plus the JSON encoding Dash does before sending the answer, over
repeated calls after one warm-up call, and reports p50 and p95 in
milliseconds. Two further tables show how the boundary lab's cost grows with
the sample count (adaptive mesh) and with a forced mesh size, and how the
regression lab's grows with the sample count.

The Markdown tables go to stdout and to ``benchmarks/out/labs.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from plotly.io.json import to_json_plotly

from app.figures.labs import boundary_figure
from app.ml.boundary import BoundarySettings, run_boundary
from callbacks.labs_boundary import update_boundary
from callbacks.labs_regression import update_regression

OUT = Path(__file__).parent / "out" / "labs.md"

BOUNDARY_DEFAULT = dict(dataset="moons", n_samples=200, noise=0.25, seed=0, test_fraction=0.3, model="svm",
                        kernel="rbf", log_c=0.0, log_gamma=0.0, degree=3, k=15, max_depth=4)
BOUNDARY_CAP = dict(BOUNDARY_DEFAULT, n_samples=1000, noise=1.0, test_fraction=0.1)
REGRESSION_DEFAULT = dict(a0=0.0, a1=-2.0, a2=0.0, a3=0.3, a4=0.0, a5=0.0, x_range=[-3.0, 3.0], noise=0.5,
                          n_samples=60, seed=0, degree=3, penalty="none", log_alpha=-2.0, test_fraction=0.3)
REGRESSION_CAP = dict(REGRESSION_DEFAULT, n_samples=1000, degree=15, noise=3.0, test_fraction=0.1)

BOUNDARY_CASES = [
    ("default: SVM RBF, C=1, gamma=1, 200 samples", BOUNDARY_DEFAULT),
    ("default size: SVM linear", dict(BOUNDARY_DEFAULT, kernel="linear")),
    ("default size: SVM poly degree 3", dict(BOUNDARY_DEFAULT, kernel="poly")),
    ("default size: kNN k=15", dict(BOUNDARY_DEFAULT, model="knn")),
    ("default size: tree depth 4", dict(BOUNDARY_DEFAULT, model="tree")),
    ("default size: logistic regression", dict(BOUNDARY_DEFAULT, model="logreg")),
    ("default size: SVM RBF C=1000, gamma=100", dict(BOUNDARY_DEFAULT, log_c=3.0, log_gamma=2.0)),
    ("default size: SVM poly degree 5, C=1000, gamma=100 (iteration cap)",
     dict(BOUNDARY_DEFAULT, kernel="poly", degree=5, log_c=3.0, log_gamma=2.0)),
    ("cap: SVM RBF C=1000, gamma=100", dict(BOUNDARY_CAP, log_c=3.0, log_gamma=2.0)),
    ("cap: SVM RBF C=0.01, gamma=0.001 (every training point a support vector)",
     dict(BOUNDARY_CAP, log_c=-2.0, log_gamma=-3.0)),
    ("cap: SVM RBF C=1000, gamma=1 (stops at the iteration cap)", dict(BOUNDARY_CAP, log_c=3.0)),
    ("cap: SVM poly degree 5, C=1000, gamma=100", dict(BOUNDARY_CAP, kernel="poly", degree=5, log_c=3.0,
                                                      log_gamma=2.0)),
    ("cap: SVM linear C=1000", dict(BOUNDARY_CAP, kernel="linear", log_c=3.0)),
    ("cap: kNN k=50", dict(BOUNDARY_CAP, model="knn", k=50)),
    ("cap: tree depth 20", dict(BOUNDARY_CAP, model="tree", max_depth=20)),
    ("cap: logistic regression C=1000", dict(BOUNDARY_CAP, model="logreg", log_c=3.0)),
]
REGRESSION_CASES = [
    ("default: cubic, 60 samples, degree 3, no penalty", REGRESSION_DEFAULT),
    ("default size: degree 15, no penalty", dict(REGRESSION_DEFAULT, degree=15)),
    ("default size: degree 12, lasso alpha=1e-5", dict(REGRESSION_DEFAULT, degree=12, penalty="lasso",
                                                       log_alpha=-5.0)),
    ("cap: 1000 samples, degree 15, no penalty", REGRESSION_CAP),
    ("cap: 1000 samples, degree 15, ridge alpha=1e-5", dict(REGRESSION_CAP, penalty="ridge", log_alpha=-5.0)),
    ("cap: 1000 samples, degree 15, lasso alpha=1e-5", dict(REGRESSION_CAP, penalty="lasso", log_alpha=-5.0)),
    ("cap: 1000 samples, degree 15, elastic net alpha=1e-5",
     dict(REGRESSION_CAP, penalty="elasticnet", log_alpha=-5.0)),
    ("cap: 1000 samples, degree 15, lasso alpha=1000", dict(REGRESSION_CAP, penalty="lasso", log_alpha=3.0)),
]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    arr = np.asarray(samples) * 1000.0
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def _time(func: Callable[[], object], repeats: int) -> tuple[list[float], list[float], list[float]]:
    """Return wall seconds, wall seconds with JSON encoding, and process CPU seconds per call."""
    func()  # warm-up: imports, caches, first-call allocations
    bare, encoded, cpu = [], [], []
    for _ in range(repeats):
        cpu_start = time.process_time()
        start = time.perf_counter()
        out = func()
        mid = time.perf_counter()
        cpu_mid = time.process_time()
        to_json_plotly(out)
        end = time.perf_counter()
        bare.append(mid - start)
        encoded.append(end - start)
        cpu.append(cpu_mid - cpu_start)
    return bare, encoded, cpu


def _boundary_call(values: dict) -> Callable[[], object]:
    order = list(BOUNDARY_DEFAULT)
    return lambda: update_boundary(*(values[k] for k in order), False, None)


def _regression_call(values: dict) -> Callable[[], object]:
    order = list(REGRESSION_DEFAULT)
    return lambda: update_regression(*(values[k] for k in order))


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def bench_callbacks(repeats: int) -> str:
    """Time both callbacks over the named cases."""
    rows = []
    for name, values in BOUNDARY_CASES:
        bare, enc, cpu = _time(_boundary_call(values), repeats)
        settings_n = values["n_samples"]
        result = run_boundary(BoundarySettings(
            dataset=values["dataset"], n_samples=settings_n, noise=values["noise"], seed=values["seed"],
            test_fraction=values["test_fraction"], model=values["model"], kernel=values["kernel"],
            C=float(f"{10 ** values['log_c']:.4g}"), gamma=float(f"{10 ** values['log_gamma']:.4g}"),
            degree=values["degree"], k=values["k"], max_depth=values["max_depth"]))
        rows.append([f"boundary {name}", *_cells(bare, enc, cpu),
                     f"mesh {result.resolution}²" + (f", {result.n_support} SV" if result.n_support else "")])
    for name, values in REGRESSION_CASES:
        bare, enc, cpu = _time(_regression_call(values), repeats)
        rows.append([f"regression {name}", *_cells(bare, enc, cpu), "16 fits"])
    return _table(["Case", "p50 ms", "p95 ms", "p50 + JSON", "p95 + JSON", "CPU p50", "CPU p95", "Work"], rows)


def _cells(bare: list[float], enc: list[float], cpu: list[float]) -> list[str]:
    out = []
    for samples in (bare, enc, cpu):
        p50, p95 = _percentiles(samples)
        out += [f"{p50:.0f}", f"{p95:.0f}"]
    return out


def bench_boundary_growth(repeats: int) -> str:
    """Boundary lab: cost against sample count (adaptive mesh) and against a forced mesh size."""
    rows = []
    for n in (100, 250, 500, 750, 1000):
        values = dict(BOUNDARY_DEFAULT, n_samples=n, noise=0.5)
        bare, _, cpu = _time(_boundary_call(values), repeats)
        result = run_boundary(BoundarySettings(n_samples=n, noise=0.5))
        rows.append([f"samples {n}, adaptive mesh", str(result.resolution), str(result.n_support),
                     *_pair(bare), *_pair(cpu)])
    for res in (25, 50, 100, 200, 300):
        settings = BoundarySettings(n_samples=1000, noise=0.5)

        def call(settings=settings, res=res):
            return boundary_figure(run_boundary(settings, resolution=res).to_dict())

        bare, _, cpu = _time(call, repeats)
        n_sv = run_boundary(settings, resolution=10).n_support
        rows.append([f"samples 1000, forced mesh {res}²", str(res), str(n_sv), *_pair(bare), *_pair(cpu)])
    return _table(["SVM RBF (C=1, gamma=1, noise 0.5)", "Mesh per axis", "Support vectors", "p50 ms", "p95 ms",
                   "CPU p50", "CPU p95"], rows)


def _pair(samples: list[float]) -> list[str]:
    p50, p95 = _percentiles(samples)
    return [f"{p50:.0f}", f"{p95:.0f}"]


def bench_regression_growth(repeats: int) -> str:
    """Regression lab: cost against sample count at degree 15."""
    rows = []
    for n in (20, 100, 250, 500, 1000):
        for penalty, log_alpha in (("none", -2.0), ("lasso", -5.0)):
            values = dict(REGRESSION_DEFAULT, n_samples=n, degree=15, penalty=penalty, log_alpha=log_alpha)
            bare, _, cpu = _time(_regression_call(values), repeats)
            rows.append([f"samples {n}, degree 15, {penalty}" + (" alpha=1e-5" if penalty == "lasso" else ""),
                         *_pair(bare), *_pair(cpu)])
    return _table(["Regression lab", "p50 ms", "p95 ms", "CPU p50", "CPU p95"], rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and write the Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 repeats instead of 30 (10 for growth)")
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else 30
    growth_repeats = 3 if args.quick else 10
    try:
        load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except (AttributeError, OSError):
        load = "n/a"
    header = (f"## Labs: server time per update\n\n"
              f"Python {platform.python_version()}, {os.cpu_count()} CPU cores, load average at start {load}; "
              f"{repeats} calls per row after one warm-up (growth tables: {growth_repeats}). "
              f"Times are wall-clock milliseconds of the callback function called directly (validation, "
              f"fit, figures); '+ JSON' adds the encoding Dash does before answering; CPU is the process "
              f"CPU time of the callback, which other load on a shared host does not inflate.\n")
    started = time.perf_counter()
    sections = [
        header,
        "### Per update\n\n" + bench_callbacks(repeats),
        "### Boundary lab: growth with samples and mesh\n\n" + bench_boundary_growth(growth_repeats),
        "### Regression lab: growth with samples\n\n" + bench_regression_growth(growth_repeats),
        f"_Total benchmark time {time.perf_counter() - started:.0f} s._\n",
    ]
    text = "\n\n".join(sections)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
