"""Benchmark the registry and the analysis cache.

Measures, on a fresh SQLite database in a temporary folder:

* each demo model: time to train, to register (validation + files + rows), and to compute
  its analyses (one runner, as one gunicorn worker would), with the slowest analyses;
* the imbalanced demo model's settings with 100k and 1M test rows: the same timings;
* one threshold query from the cache: decoding the stored sweep, and counts at a threshold;
* resident memory of a process that opened every demo model (estimator, frames, every
  analysis payload), as a gunicorn worker does when all demo models are in use.

Writes a Markdown table to ``benchmarks/out/registry.md`` (git-ignored) and prints it.

    python -m benchmarks.bench_registry            # everything (several minutes on 2 cores)
    python -m benchmarks.bench_registry --no-large # demo models only
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OUT = ROOT / "benchmarks" / "out" / "registry.md"
log = logging.getLogger("bench_registry")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime


def _fresh_db(folder: Path):
    from data.db import Base, Database
    from data.tables import import_all_tables

    import_all_tables()
    db = Database(f"sqlite:///{folder / 'bench.db'}")
    Base.metadata.create_all(db.engine)
    return db


def _analyses(db, version_id: int) -> tuple[float, list[tuple[str, float]], int]:
    """Run the queue; return (wall seconds, per-kind durations, failures)."""
    from data.analysis_cache import run_pending, status_for

    started = time.perf_counter()
    run_pending(db)
    wall = time.perf_counter() - started
    with db.session() as s:
        status = status_for(s, version_id)
    durations = sorted(((i["kind"], i["duration_s"] or 0.0) for i in status["items"]), key=lambda kv: -kv[1])
    failed = [i for i in status["items"] if i["status"] != "ready"]
    for item in failed:
        log.warning("analysis %s failed: %s", item["kind"], item["error"])
    return wall, durations, len(failed)


def bench_demo(db, artifacts: Path) -> tuple[list[dict], dict]:
    """Train, register and analyse each demo model in turn."""
    from data.demo import DEMO_MODELS
    from data.registry import register_model

    rows = []
    wall0, cpu0 = time.perf_counter(), _cpu()
    for demo in DEMO_MODELS:
        t0 = time.perf_counter()
        model, train, test = demo.build()
        t1 = time.perf_counter()
        version = register_model(model, train, test, name=demo.name, target=demo.target, created_by="bench",
                                 positive_class=demo.positive_class, group_columns=demo.group_columns,
                                 description=demo.description, db=db, artifact_dir=artifacts)
        t2 = time.perf_counter()
        wall, durations, failed = _analyses(db, version.id)
        rows.append({"name": demo.name, "task": version.task, "train_rows": version.train_rows,
                     "test_rows": version.test_rows, "train_s": t1 - t0, "register_s": t2 - t1,
                     "analyses_s": wall, "slowest": durations[:3], "failed": failed,
                     "artifact_mb": version.artifact_bytes / 1e6})
        log.info("%s: train %.1f s, register %.1f s, analyses %.1f s", demo.name, t1 - t0, t2 - t1, wall)
    total = {"wall_s": time.perf_counter() - wall0, "cpu_s": _cpu() - cpu0}
    return rows, total


def _large_model(test_rows: int):
    """The imbalanced demo's data and tuned forest settings, with a test set of ``test_rows`` rows."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    n_train = 24000
    X, y = make_classification(n_samples=n_train + test_rows, n_features=20, n_informative=8, n_redundant=4,
                               weights=[0.9, 0.1], flip_y=0.02, class_sep=0.9, random_state=7)
    features = [f"feature_{i:02d}" for i in range(20)]
    frame = pd.DataFrame(X.astype(np.float64), columns=features)
    frame["is_fraud"] = y
    train, test = frame.iloc[:n_train].reset_index(drop=True), frame.iloc[n_train:].reset_index(drop=True)
    model = RandomForestClassifier(n_estimators=60, max_depth=12, min_samples_leaf=2, max_features="sqrt",
                                   max_samples=0.4, random_state=0, n_jobs=2)
    model.fit(train[features], train["is_fraud"])
    model.set_params(n_jobs=None)
    return model, train, test


def bench_large(db, artifacts: Path, sizes: list[int]) -> list[dict]:
    """Register the imbalanced model with big test sets and compute their analyses."""
    from data.registry import register_model

    rows = []
    for size in sizes:
        model, train, test = _large_model(size)
        t1 = time.perf_counter()
        version = register_model(model, train, test, name=f"bench-{size}", target="is_fraud", created_by="bench",
                                 positive_class=1, db=db, artifact_dir=artifacts)
        t2 = time.perf_counter()
        wall, durations, failed = _analyses(db, version.id)
        rows.append({"name": f"imbalanced, {size:,} test rows", "task": "binary", "train_rows": len(train),
                     "test_rows": size, "train_s": None, "register_s": t2 - t1, "analyses_s": wall,
                     "slowest": durations[:3], "failed": failed, "artifact_mb": version.artifact_bytes / 1e6,
                     "version_id": version.id})
        log.info("%s test rows: register %.1f s, analyses %.1f s", size, t2 - t1, wall)
        del model, train, test
    return rows


def bench_threshold(db, names_and_ids: list[tuple[str, int, int]]) -> list[dict]:
    """Time one threshold query from the cache: decode the stored sweep, then counts at a threshold."""
    import numpy as np

    from app.ml.threshold import ThresholdSweep
    from data.analysis_cache import clear_payload_cache, get_result

    rows = []
    for label, version_id, n in names_and_ids:
        clear_payload_cache()
        t0 = time.perf_counter()
        with db.session() as s:
            payload = get_result(s, version_id, "sweep_test")
        sweep = ThresholdSweep.from_dict(payload)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        with db.session() as s:
            payload = get_result(s, version_id, "sweep_test")
        warm_read = time.perf_counter() - t0
        thresholds = np.random.default_rng(0).random(2000)
        t0 = time.perf_counter()
        for t in thresholds:
            sweep.counts_at(float(t))
        per_query = (time.perf_counter() - t0) / len(thresholds)
        rows.append({"label": label, "n": n, "distinct": payload["n_values"], "cold_ms": cold * 1e3,
                     "warm_read_ms": warm_read * 1e3, "counts_us": per_query * 1e6})
    return rows


_RSS_SCRIPT = r"""
import json, os, sys, psutil
sys.path.insert(0, sys.argv[1])
proc = psutil.Process()
def mem():
    info = proc.memory_full_info()
    return {"rss_mb": info.rss / 2**20, "uss_mb": info.uss / 2**20}
from app import create_app
app = create_app({"GLASSBOX_DATABASE_URL": sys.argv[2], "GLASSBOX_ARTIFACT_DIR": sys.argv[3],
                  "GLASSBOX_INSTANCE_PATH": sys.argv[4], "GLASSBOX_RUN_JOBS": False})
steps = {"app created (every page imported)": mem()}
from data.analysis_cache import get_result, status_for
from data.registry import list_models, load_estimator, load_frames
names = sys.argv[5].split(",")
with app.app_context():
    db = app.extensions["glassbox.db"]
    with db.session() as s:
        versions = [r.latest for r in list_models(s) if r.name in names]
        for version in versions:
            load_estimator(version).predict(load_frames(version)[1][version.features].head(1))
        steps["+ every demo estimator and its frames"] = mem()
        for version in versions:
            for item in status_for(s, version.id)["items"]:
                get_result(s, version.id, item["kind"])
        steps["+ every cached analysis payload"] = mem()
print(json.dumps(steps))
"""


def bench_rss(folder: Path, artifacts: Path, names: list[str]) -> dict:
    """Resident memory of a fresh app process before and after opening every demo model."""
    result = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(ROOT), f"sqlite:///{folder / 'bench.db'}", str(artifacts),
         str(folder / "instance"), ",".join(names)],
        capture_output=True, text=True, check=True, env={**os.environ, "GLASSBOX_ENV": "development"})
    return json.loads(result.stdout.strip().splitlines()[-1])


def _fmt(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:.1f}"


def report(demo_rows, demo_total, large_rows, threshold_rows, rss, started_load, ended_load) -> str:
    """Return the Markdown report."""
    lines = ["# Registry and analysis cache benchmark", "",
             f"Machine: {os.cpu_count()} CPUs; load average {started_load:.1f} at start, {ended_load:.1f} at end "
             "(other work on the machine slows every number below).", "",
             "## Register and analyse (one runner thread, as in one gunicorn worker)", "",
             "| model | task | train / test rows | train (s) | register (s) | all analyses (s) | slowest analyses (s) "
             "| failed | model file (MB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in demo_rows + large_rows:
        slowest = ", ".join(f"{k} {d:.1f}" for k, d in r["slowest"])
        lines.append(f"| {r['name']} | {r['task']} | {r['train_rows']:,} / {r['test_rows']:,} | {_fmt(r['train_s'])} "
                     f"| {_fmt(r['register_s'])} | {_fmt(r['analyses_s'])} | {slowest} | {r['failed']} "
                     f"| {r['artifact_mb']:.1f} |")
    lines += ["", f"All five demo models, trained, registered and analysed: **{demo_total['wall_s']:.0f} s** wall, "
                  f"{demo_total['cpu_s']:.0f} s CPU (target: under 120 s on 2 cores).", ""]
    if threshold_rows:
        lines += ["## One threshold query from the cache", "",
                  "| test set | rows | distinct scores | read + decode + rebuild sweep (ms, first request of a "
                  "process) | read when decoded already (ms) | counts at a threshold (µs) |",
                  "|---|---|---|---|---|---|"]
        for r in threshold_rows:
            lines.append(f"| {r['label']} | {r['n']:,} | {r['distinct']:,} | {r['cold_ms']:.1f} | "
                         f"{r['warm_read_ms']:.2f} | {r['counts_us']:.1f} |")
        lines.append("")
    if rss:
        lines += ["## Memory of a worker process with every demo model open", "",
                  "| step | resident (MB) | unique to the process (MB) |", "|---|---|---|"]
        lines += [f"| {step} | {m['rss_mb']:.0f} | {m['uss_mb']:.0f} |" for step, m in rss.items()]
        lines += ["", "Target: under 250 MB resident per gunicorn worker. Resident memory counts shared library "
                      "pages once per process; the unique column is what each extra worker costs.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-large", action="store_true", help="Skip the 100k and 1M test-row runs.")
    parser.add_argument("--sizes", default="100000,1000000", help="Test-set sizes of the large runs.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder (printed).")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("data.analysis_cache", "data.registry", "data.demo", "shap", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    started_load = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="glassbox-bench-"))
    artifacts = folder / "artifacts"
    db = _fresh_db(folder)
    demo_rows, demo_total = bench_demo(db, artifacts)
    large_rows = [] if args.no_large else bench_large(db, artifacts, [int(s) for s in args.sizes.split(",") if s])
    from data.registry import get_version

    with db.session() as s:
        fraud = get_version(s, "fraud-imbalanced")
        targets = [("imbalanced demo", fraud.id, fraud.test_rows)]
    targets += [(r["name"], r["version_id"], r["test_rows"]) for r in large_rows]
    threshold_rows = bench_threshold(db, targets)
    rss = bench_rss(folder, artifacts, [r["name"] for r in demo_rows])
    text = report(demo_rows, demo_total, large_rows, threshold_rows, rss, started_load, os.getloadavg()[0])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    db.dispose()
    if args.keep:
        log.info("kept %s", folder)
    else:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
