"""The why-pages: what-if predictions and explanations, feature-influence and explain callbacks, per demo model.

Run with ``python -m benchmarks.bench_explain`` (``--quick``: fewer repeats and the small test models of
``tests/browser/seed_explain.py`` instead of the demo models; ``--models iris diabetes`` to choose).

The five demo models of :mod:`data.demo` are trained and registered in a fresh SQLite database under a
temporary folder, and the analyses the feature-influence page reads are computed (the others are skipped).
Every callback is the page's module-level function, called in a Flask request context as an analyst, timed
over repeated calls after a first one, plus the JSON encoding Dash does before answering; p50 and p95 in ms.
The what-if prediction is also timed end to end through the Flask test client (gate, session, CSRF, Dash
dispatch), which is what the browser waits for minus the network.

Each what-if call moves one randomly chosen input to a random position of its control (a slider position
on the control's own grid, or another category), as a user dragging would.

The Markdown tables go to stdout and to ``benchmarks/out/explain.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).parent / "out" / "explain.md"
PASSWORD = "bench-Pass-123456"
log = logging.getLogger("bench_explain")


# -- set-up ------------------------------------------------------------------------------------------

def _app(folder: Path, names: list[str], quick: bool):
    """Return (app, {name: (task, seconds to build+register, seconds of analyses)})."""
    from app import create_app
    from app.security.users import create_user
    from data import explain_views
    from data.analysis_cache import claim_next, finish, run_claim
    from data.db import Base
    from data.registry import register_model
    from data.tables import import_all_tables

    app = create_app({"GLASSBOX_INSTANCE_PATH": str(folder / "instance"),
                      "GLASSBOX_DATABASE_URL": f"sqlite:///{folder / 'why.db'}",
                      "GLASSBOX_ARTIFACT_DIR": str(folder / "artifacts"), "GLASSBOX_RUN_JOBS": False,
                      "GLASSBOX_ENV": "development", "GLASSBOX_LOGIN_LIMIT_IP": 10_000})
    import_all_tables()
    db = app.extensions["glassbox.db"]
    Base.metadata.create_all(db.engine)
    with db.session() as s:
        create_user(s, "analyst", PASSWORD, role="analyst")
    builders = _builders(quick)
    setup = {}
    for name in names:
        build, target, positive, groups = builders[name]
        t0 = time.perf_counter()
        model, train, test = build()
        with app.app_context():
            version = register_model(model, train, test, name=name, target=target, positive_class=positive,
                                     group_columns=groups, created_by="analyst", db=db)
            registered = time.perf_counter() - t0
            t1 = time.perf_counter()
            while (claim := claim_next(db)) is not None:
                if claim.kind in explain_views.FEATURE_KINDS:
                    run_claim(db, claim)
                else:
                    finish(db, claim, error="skipped: not read by the why-pages")
        setup[name] = (version.task, registered, time.perf_counter() - t1)
        log.info("%s: registered in %.1f s, analyses %.1f s", name, registered, setup[name][2])
    return app, setup


def _builders(quick: bool) -> dict:
    if quick:
        from tests.browser import seed_explain as S

        return {name: (frames, target, positive, ()) for name, (frames, target, positive, _) in S.MODELS.items()}
    from data.demo import DEMO_MODELS

    return {d.name: (d.build, d.target, d.positive_class, d.group_columns) for d in DEMO_MODELS}


# -- timing ----------------------------------------------------------------------------------------------

def _json(value) -> str:
    from plotly.io.json import to_json_plotly

    return to_json_plotly(value)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return p50, p95


def _measure(fn: Callable[[], object], repeats: int) -> dict:
    """Return first-call ms, p50/p95 ms of the repeats (callback + JSON encoding) and the answer's size in KB.

    ``cpu50``/``cpu95`` are the same calls in CPU time of this process: what the work costs when the
    machine is shared with other jobs (wall time then includes waiting for a core).
    """
    t0 = time.perf_counter()
    out = fn()
    size = len(_json(out))
    first = (time.perf_counter() - t0) * 1000
    samples, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        _json(fn())
        samples.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    p50, p95 = _percentiles(samples)
    cpu50, cpu95 = _percentiles(cpu)
    return {"first": first, "p50": p50, "p95": p95, "cpu50": cpu50, "cpu95": cpu95, "kb": size / 1024}


class Mover:
    """Moves one random input of a what-if form per call (seeded)."""

    def __init__(self, spec: dict, meta: list[dict], seed: int = 0):
        from layouts import what_if as L

        self.L = L
        self.rng = random.Random(seed)
        self.meta = {m["name"]: m for m in meta}
        self.sliders = {f["name"]: f["base"] for f in spec["features"] if f["kind"] == "numeric"}
        self.choices = {f["name"]: f["base"] for f in spec["features"] if f["kind"] != "numeric"}

    def move(self) -> None:
        names = list(self.sliders) + list(self.choices)
        name = self.rng.choice(names)
        meta = self.meta[name]
        if name in self.sliders:
            lo, hi, step = self.L.slider_range(meta)
            steps = max(int(round((hi - lo) / step)), 1)
            self.sliders[name] = lo + step * self.rng.randint(0, steps) if hi > lo else lo
            self.sliders[name] = min(self.sliders[name], hi)
        else:
            self.choices[name] = self.rng.choice(meta["levels"])

    def args(self) -> tuple:
        L = self.L
        return ([*self.sliders.values()], [{"type": L.SLIDER, "feature": n} for n in self.sliders],
                [*self.choices.values()], [{"type": L.CHOICE, "feature": n} for n in self.choices])


def _user():
    from app.security.permissions import ROLES
    from app.security.users import CurrentUser

    return CurrentUser(id=1, username="analyst", session_version=1, active=True, global_permissions=ROLES["analyst"])


def _what_if(app, name: str, repeats: int) -> dict:
    from callbacks import what_if as C
    from data import explain_views as ev
    from data.registry import get_version

    user = _user()
    db = app.extensions["glassbox.db"]
    out = {}
    with app.test_request_context("/_dash-update-component", method="POST"):
        with db.session() as s:
            version = get_version(s, name)
        out["method"] = ev.explainer_method(version)
        out["features"] = len(version.features)
        out["build"] = _measure(lambda: C.build(None, name, None, None, "test", {}, user=user), max(repeats // 5, 3))
        _, spec, _ = C.build(None, name, None, None, "test", {}, user=user)
        mover = Mover(spec, ev.slider_meta(version))
        first = C.predict(name, None, *mover.args(), None, user=user)
        key = first[1]

        def patch():
            mover.move()
            result = C.predict(name, None, *mover.args(), key, user=user)
            assert result[4] is None, result[4]
            return result

        def full():
            mover.move()
            return C.predict(name, None, *mover.args(), None, user=user)

        def local():
            mover.move()
            trigger = C.L.EXPLAIN_GO if out["method"] == "kernel" else None
            return C.local(trigger, name, None, *mover.args(), user=user)

        out["patch"] = _measure(patch, repeats)
        out["full"] = _measure(full, max(repeats // 2, 5))
        out["local"] = _measure(local, repeats if out["method"] != "kernel" else max(repeats // 10, 3))
    out["http"] = _http(app, name, mover, key, repeats)
    return out


def _http(app, name: str, mover: Mover, key: str, repeats: int) -> dict:
    """Time the prediction callback through the Flask test client as the browser posts it."""
    from tests.conftest import csrf_headers, post_callback, sign_in

    client = app.test_client()
    sign_in(client, app.extensions["glassbox.db"], "analyst")
    headers = csrf_headers(client)
    output = next(k for k in app.extensions["glassbox.policy"].permissions if k.startswith("..whatif-proba"))

    def body():
        sv, sid, cv, cid = mover.args()
        items = [[{"id": i, "property": "drag_value", "value": v} for i, v in zip(sid, sv)],
                 [{"id": i, "property": "value", "value": v} for i, v in zip(sid, sv)],
                 [{"id": i, "property": "value", "value": v} for i, v in zip(cid, cv)]]
        state = [[{"id": i, "property": "id", "value": i} for i in sid],
                 [{"id": i, "property": "id", "value": i} for i in cid],
                 {"id": "whatif-model", "property": "value", "value": name},
                 {"id": "whatif-version", "property": "value", "value": None},
                 {"id": "whatif-figkey", "property": "data", "value": key}]
        return items, state

    def call():
        mover.move()
        items, state = body()
        response = post_callback(client, output, inputs=items, state=state, headers=headers, changed=[])
        assert response.status_code == 200, response.data[:200]
        return response

    call()
    samples, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        samples.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    p50, p95 = _percentiles(samples)
    cpu50, cpu95 = _percentiles(cpu)
    return {"p50": p50, "p95": p95, "cpu50": cpu50, "cpu95": cpu95}


def _features(app, name: str, repeats: int) -> dict:
    from callbacks import features as C
    from data import explain_views as ev
    from data.analysis_cache import get_result
    from data.registry import get_version

    user = _user()
    db = app.extensions["glassbox.db"]
    out = {}
    with app.test_request_context("/_dash-update-component", method="POST"):
        with db.session() as s:
            version = get_version(s, name)
            pdp = get_result(s, version.id, "pdp") or {}
        loaded = C.load(name, None, 0, user=user)
        ready = loaded[2]
        klass = loaded[5]
        cached = (pdp.get("features") or [version.features[0]])[0]
        uncached = next((f for f in version.features if f not in (pdp.get("features") or [])), None)
        out["load"] = _measure(lambda: C.load(name, None, 0, user=user), repeats)
        out["poll"] = _measure(lambda: C.load(name, None, 1, ready, user=user, polled=True), repeats)
        for method in ("permutation", "impurity", "shap"):
            out[f"importance: {method}"] = _measure(
                lambda m=method: C.update_importance(name, None, m, 15, klass, ready, user=user), repeats)
        out["pdp (cached feature)"] = _measure(
            lambda: C.update_pdp(name, None, cached, False, klass, ready, user=user), repeats)
        if uncached is not None:
            ev.clear_caches()
            out["pdp (other feature, on demand)"] = _measure(
                lambda: C.update_pdp(name, None, uncached, False, klass, ready, user=user), repeats)
        out["pdp 2-D (cached pair)"] = _measure(
            lambda: C.update_pdp2d(name, None, loaded[10], loaded[12], klass, ready, user=user), repeats)
        out["SHAP dependence"] = _measure(
            lambda: C.update_dependence(name, None, loaded[14], loaded[16], klass, ready, user=user), repeats)
    return out


def _explain(app, name: str, repeats: int) -> dict:
    from callbacks import explain as C

    user = _user()
    out = {}
    request = {"model": name, "split": "test", "source": "index", "row": 3}
    with app.test_request_context("/_dash-update-component", method="POST"):
        explanation = C.explain_row(request, name, None, user=user)[2]
        out["explain a row"] = _measure(lambda: C.explain_row(request, name, None, user=user),
                                        max(repeats // 5, 3))
        out["waterfall (top 8)"] = _measure(lambda: C.draw_waterfall(explanation, 8), repeats)
        out["nearest rows"] = _measure(lambda: C.nearest(request, name, None, "test", user=user), repeats)
        out["mistakes / largest errors"] = _measure(lambda: C.mistakes(name, None, "test", user=user), repeats)
        out["counterfactual"] = _measure(
            lambda: C.counterfactual(C.L.CF_GO, request, name, None, [], None, _target(app, name), user=user), 3)
    return out


def _target(app, name: str):
    from data import explain_views as ev
    from data.registry import get_version

    with app.extensions["glassbox.db"].session() as s:
        version = get_version(s, name)
    if version.task != "regression":
        return None
    return ev.predict(version, ev.split_row(version, "test", 3))["value"] * 1.2


# -- report ------------------------------------------------------------------------------------------------

def _cell(m: dict) -> str:
    return f"{m['p50']:.1f} / {m['p95']:.1f}"


def _cpu(m: dict) -> str:
    return f"{m['cpu50']:.1f} / {m['cpu95']:.1f}"


def _report(setup: dict, what_if: dict, features: dict, explain: dict, quick: bool, repeats: int) -> str:
    names = list(setup)
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
             f"load average at start {os.getloadavg()[0]:.1f}. "
             + ("Small test models (tests/browser/seed_explain.py), --quick." if quick else
                "The five demo models of data/demo.py.")
             + f" {repeats} timed calls per row unless noted.", ""]
    lines += ["### What-if (ms, p50 / p95: wall clock, and CPU time of the process)", "",
              "| Model | Task | Inputs | Explainer | Prediction: patch | same, CPU | HTTP round trip | same, CPU | "
              "Whole figure | Local explanation | same, CPU |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        w = what_if[name]
        local = _cell(w["local"]) + (" (on request)" if w["method"] == "kernel" else "")
        lines.append(f"| {name} | {setup[name][0]} | {w['features']} | {w['method']} | {_cell(w['patch'])} | "
                     f"{_cpu(w['patch'])} | {_cell(w['http'])} | {_cpu(w['http'])} | {_cell(w['full'])} | "
                     f"{local} | {_cpu(w['local'])} |")
    lines += ["", "Prediction: patch = the steady state (one input moved; the chart is patched: bars, colours, "
              "title; answer about 1 KB). HTTP round trip = the same through the gate, session and Dash "
              "dispatch (Flask test client). Whole figure = the first answer after the form is built for a "
              "model. CPU = CPU time of this process for the same calls: on a shared machine the wall clock "
              "also counts waiting for a core. Targets: prediction p95 < 30 ms; with the local explanation "
              "p95 < 100 ms for tree and linear models.", ""]
    lines += ["### Feature influence page (ms, p50 / p95; first call in brackets where it differs)", "",
              "| Callback | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for kind in dict.fromkeys(k for f in features.values() for k in f):
        cells = []
        for name in names:
            m = features[name].get(kind)
            if m is None:
                cells.append("–")
            elif m["first"] > 2 * m["p95"] + 5:
                cells.append(f"{_cell(m)} ({m['first']:.0f})")
            else:
                cells.append(_cell(m))
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += ["", "Target: p95 < 50 ms per callback reading the cache. The on-demand partial dependence of a "
              "feature the cache does not hold is computed once per process (first call in brackets) on "
              "at most 300 test rows, then served from memory.", ""]
    lines += ["### Explain page (ms, p50 / p95)", "",
              "| Callback | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for kind in next(iter(explain.values())):
        lines.append(f"| {kind} | " + " | ".join(_cell(explain[n][kind]) for n in names) + " |")
    lines += ["", "### Set-up (s)", "", "| Model | Task | Build and register | Feature analyses |", "|---|---|---|---|"]
    for name in names:
        task, registered, analysed = setup[name]
        lines.append(f"| {name} | {task} | {registered:.1f} | {analysed:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Build the models, time the callbacks, print and save the tables."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_explain")
    parser.add_argument("--quick", action="store_true", help="small test models, fewer repeats")
    parser.add_argument("--models", nargs="*", help="model names to run (default: all)")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:] if __name__ == "__main__" else [])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("glassbox", "data", "app", "werkzeug", "shap", "skops"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    repeats = args.repeats or (30 if args.quick else 100)
    names = args.models or list(_builders(args.quick))
    folder = Path(tempfile.mkdtemp(prefix="bench-explain-"))
    try:
        app, setup = _app(folder, names, args.quick)
        what_if, features, explain = {}, {}, {}
        for name in names:
            log.info("timing %s", name)
            what_if[name] = _what_if(app, name, repeats)
            features[name] = _features(app, name, max(repeats // 2, 10))
            explain[name] = _explain(app, name, max(repeats // 5, 5))
        report = _report(setup, what_if, features, explain, args.quick, repeats)
        print(report)
        if not args.quick:
            OUT.parent.mkdir(exist_ok=True)
            OUT.write_text("## The why-pages: what-if, feature influence, explain\n\n" + report)
        app.extensions["glassbox.db"].dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
