"""Benchmark the model views (performance, threshold explorer, confusion matrix).

On a fresh instance in a temporary folder, registers a synthetic binary model
(LogisticRegression pipeline, 10 features, a group column) with 6k, 100k and
1M test rows and computes the analyses the views read. Then:

* every server callback of the three pages, called directly inside a request
  context as an admin: the first call in a fresh process cache ("cold": it
  decodes payloads, loads the model and predicts where rows are needed) and
  p50/p95 of the repeats, with the response size (JSON, as Dash sends it);
* the initial load of each page: bytes of the layout the router sends and of
  the first callback answers;
* the threshold slider in headless Chromium at 6k and 1M test rows: time from
  a key press on the slider to the moment every figure has redrawn
  (``performance.now()`` around the move, ended by the last ``plotly_afterplot``),
  with no server request. The matrix, bars and table are HTML; the curve markers follow.

Prints a Markdown table and writes it to ``benchmarks/out/views.md``.

    python -m benchmarks.bench_views                 # everything (several minutes on 2 cores)
    python -m benchmarks.bench_views --sizes 6000    # one size
    python -m benchmarks.bench_views --no-browser    # server callbacks only
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OUT = ROOT / "benchmarks" / "out" / "views.md"
SIZES = (6_000, 100_000, 1_000_000)
BROWSER_SIZES = (6_000, 1_000_000)
TRAIN_ROWS = 5_000
FEATURES = [f"f{i}" for i in range(10)]
PASSWORD = "bench-Views-2026!"
log = logging.getLogger("bench_views")


def _name(n: int) -> str:
    return f"bench-{n // 1000}k" if n < 1_000_000 else f"bench-{n // 1_000_000}m"


def build_instance(folder: Path, sizes):
    """Return an app on a fresh database with an admin, a viewer and one model per size (view analyses run)."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from app import create_app
    from app.security.users import create_user
    from data.db import Base
    from data.registry import register_model
    from data.tables import import_all_tables
    from tests.browser.seed_models import VIEW_KINDS, run_view_analyses

    app = create_app({"GLASSBOX_INSTANCE_PATH": str(folder / "instance"),
                      "GLASSBOX_DATABASE_URL": f"sqlite:///{folder / 'views.db'}",
                      "GLASSBOX_ARTIFACT_DIR": str(folder / "artifacts"), "GLASSBOX_RUN_JOBS": False,
                      "GLASSBOX_ENV": "development", "GLASSBOX_LOGIN_LIMIT_IP": 10_000})
    import_all_tables()
    db = app.extensions["glassbox.db"]
    Base.metadata.create_all(db.engine)
    with db.session() as s:
        for role in ("admin", "viewer"):
            create_user(s, role, PASSWORD, role=role)
    timings = {}
    for n in sizes:
        X, y = make_classification(n_samples=TRAIN_ROWS + n, n_features=len(FEATURES), n_informative=6,
                                   weights=[0.8, 0.2], flip_y=0.05, random_state=0)
        frame = pd.DataFrame(X, columns=FEATURES)
        frame["label"] = y
        frame["region"] = np.random.default_rng(0).choice(["north", "south", "east", "west"], size=len(frame))
        train = frame.iloc[:TRAIN_ROWS].reset_index(drop=True)
        test = frame.iloc[TRAIN_ROWS:].reset_index(drop=True)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(train[FEATURES], train["label"])
        t0 = time.perf_counter()
        with app.app_context():
            register_model(model, train, test, name=_name(n), target="label", positive_class=1,
                           group_columns=["region"], created_by="admin", db=db)
            registered = time.perf_counter() - t0
            run_view_analyses(db, VIEW_KINDS)
        timings[n] = (registered, time.perf_counter() - t0 - registered)
        log.info("registered %s in %.1f s, view analyses %.1f s", _name(n), *timings[n])
    return app, timings


def _json_bytes(value) -> int:
    from plotly.io.json import to_json_plotly

    return len(to_json_plotly(value))


def _clear_caches() -> None:
    from callbacks import confusion_matrix, performance, threshold
    from data import analysis_cache, registry, views

    views.clear_caches()
    registry.clear_caches()
    analysis_cache.clear_payload_cache()
    threshold._figures.cache_clear()
    threshold._cost_figure.cache_clear()
    threshold._fairness.cache_clear()
    performance._body.cache_clear()
    confusion_matrix._figure.cache_clear()


def _measure(fn, repeats: int) -> dict:
    """Return cold (first) ms, p50/p95 ms of repeats, and the response size in bytes."""
    t0 = time.perf_counter()
    out = fn()
    cold = (time.perf_counter() - t0) * 1000
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, max(0, round(0.95 * len(times)) - 1))]
    return {"cold": cold, "p50": statistics.median(times), "p95": p95, "bytes": _json_bytes(out)}


def bench_callbacks(app, n: int, repeats: int) -> list[tuple[str, dict]]:
    """Time every server callback of the three pages on the model with ``n`` test rows."""
    from app.security.users import find_user, snapshot
    from callbacks import confusion_matrix as CM
    from callbacks import performance as P
    from callbacks import threshold as T
    from data.registry import clear_threshold, get_version

    name = _name(n)
    db = app.extensions["glassbox.db"]
    with db.session() as s:
        admin = snapshot(find_user(s, "admin"))
        version_id = get_version(s, name).id
    results = []
    with app.test_request_context("/_dash-update-component", method="POST"):
        _clear_caches()
        current = {"t": 0.5}
        grid = T.load_model(name, None, "test", None, user=admin)[0]
        cell = CM.select_cell({"points": [{"x": "0", "y": "0"}]}, name, None, "test", user=admin)[0]
        request = {"startRow": 0, "endRow": 25, "sortModel": [], "filterModel": {}}
        sorted_request = {"startRow": 25, "endRow": 50, "sortModel": [{"colId": "score", "sort": "desc"}],
                          "filterModel": {"c0": {"filterType": "number", "type": "greaterThan", "filter": 0}}}
        signature = P.update(name, None, "test", None, None, user=admin)[4]
        _clear_caches()
        cases = [
            ("performance: page body", lambda: P.update(name, None, "test", None, None, user=admin)),
            ("performance: poll, nothing new",
             lambda: P.update(name, None, "test", 1, signature, user=admin, polled=True)),
            ("threshold: load model (grid + figures)", lambda: T.load_model(name, None, "test", None, user=admin)),
            ("threshold: exact value off the grid", lambda: T.exact_metrics({"t": 0.4237}, name, None, user=admin)),
            ("threshold: cost curve", lambda: T.cost_curve(1, 5, grid, "test", current, name, None, user=admin)),
            ("threshold: fairness at threshold",
             lambda: T.fairness_at(1, "region", current, name, None, "test", user=admin)),
            ("threshold: equalise TPR", lambda: T.equalise(1, "region", None, current, name, None, "test", user=admin)),
            ("threshold: save", lambda: T.save(1, name, None, {"t": 0.5}, "benchmark", user=admin)),
            ("confusion: matrix", lambda: CM.matrix(name, None, "test", "true", None, user=admin)),
            ("confusion: choose a cell", lambda: CM.select_cell({"points": [{"x": "0", "y": "0"}]}, name, None,
                                                                 "test", user=admin)),
            ("confusion: rows, first page", lambda: CM.get_rows(request, cell, name, None, user=admin)),
            ("confusion: rows, sorted + filtered page", lambda: CM.get_rows(sorted_request, cell, name, None,
                                                                            user=admin)),
            ("confusion: row details", lambda: CM.details_from_cell([{"row": 7}], cell, name, None, user=admin)),
            ("confusion: most confident mistakes", lambda: CM.mistakes(name, None, "test", user=admin)),
            ("confusion: CSV export of a cell", lambda: CM.export_rows(1, cell, request, name, None, user=admin)),
        ]
        for label, fn in cases:
            reps = max(3, repeats // 4) if "export" in label else repeats
            results.append((label, _measure(fn, reps)))
            log.info("%s @ %s: %s", label, n, results[-1][1])
    with db.session() as s:
        clear_threshold(s, version_id)
    return results


def bench_initial_load(app, n: int) -> list[tuple[str, int]]:
    """Bytes of each page's layout (as the router sends it) and of its first callback answers."""
    from flask import current_app

    from app.security.users import find_user, snapshot
    from callbacks import confusion_matrix as CM
    from callbacks import model_select
    from callbacks import performance as P
    from callbacks import threshold as T
    from callbacks.shell import render_page
    from app.security.permissions import Permission

    name = _name(n)
    out = []
    with app.test_request_context("/_dash-update-component", method="POST"):
        with app.extensions["glassbox.db"].session() as s:
            admin = snapshot(find_user(s, "admin"))
        pages = current_app.extensions["glassbox.pages"]
        for path, first in (("/performance", lambda: P.update(name, None, "test", None, None, user=admin)),
                            ("/threshold", lambda: T.load_model(name, None, "test", None, user=admin)),
                            ("/confusion-matrix", lambda: CM.matrix(name, None, "test", "none", None, user=admin))):
            body, _ = render_page(path, f"?model={name}", user=admin, pages=pages, contact="admin")
            selector = model_select.fill_selector(path, name, None, user=admin, permission=Permission.VIEW_METRICS)
            out.append((f"{path}: layout", _json_bytes(body)))
            out.append((f"{path}: selector + first page answer", _json_bytes(selector) + _json_bytes(first())))
    return out


# -- the browser --------------------------------------------------------------------------

MOVE_JS = """
async ([steps, key, pause]) => {
  const curves = ['threshold-roc', 'threshold-pr'].map(id => document.querySelector('#' + id + ' .js-plotly-plot'));
  const path = document.querySelector('#threshold-path');
  const thumb = document.querySelector('#threshold-slider [role=slider]');
  thumb.focus();
  const numbers = [], markers = [];
  for (let i = 0; i < steps; i++) {
    const before = path.innerText;
    // Numbers: the matrix, bars, table and path are rendered together; time to the frame that paints them.
    const painted = new Promise(resolve => {
      const obs = new MutationObserver(() => {
        if (path.innerText !== before) { obs.disconnect(); requestAnimationFrame(() => resolve(performance.now())); }
      });
      obs.observe(path, {subtree: true, childList: true, characterData: true});
    });
    // Curves: the ROC and PR operating points, redrawn by plotly just after.
    const drawn = Promise.all(curves.map(g => new Promise(res => g.once('plotly_afterplot', () => res(performance.now())))));
    const t0 = performance.now();
    thumb.dispatchEvent(new KeyboardEvent('keydown', {key: key, bubbles: true}));
    const t1 = await painted;
    numbers.push(t1 - t0);
    if (pause) {
      markers.push(Math.max(...await drawn) - t0);
      await new Promise(r => setTimeout(r, 50));
    }
  }
  if (!pause) { await new Promise(r => setTimeout(r, 1500)); }
  return {numbers, markers};
}
"""


FLOOR_JS = """
async ([steps]) => {
  const path = document.querySelector('#threshold-path');
  const thumb = document.querySelector('#threshold-slider [role=slider]');
  thumb.focus();
  const out = [];
  for (let i = 0; i < steps; i++) {
    const before = path.innerText;
    const painted = new Promise(resolve => {
      const obs = new MutationObserver(() => {
        if (path.innerText !== before) { obs.disconnect(); requestAnimationFrame(() => resolve(performance.now())); }
      });
      obs.observe(path, {subtree: true, childList: true, characterData: true});
    });
    const t0 = performance.now();
    thumb.dispatchEvent(new KeyboardEvent('keydown', {key: i % 2 ? 'ArrowLeft' : 'ArrowRight', bubbles: true}));
    out.push((await painted) - t0);
    await new Promise(r => setTimeout(r, 50));
  }
  return out;
}
"""


def _floor_app():
    """A bare Dash page: a slider and one clientside output (what any Dash slider costs on this machine)."""
    import dash
    from dash import Input, Output, dcc, html

    floor = dash.Dash("bench_floor", serve_locally=True)
    floor.layout = html.Div([dcc.Slider(id="threshold-slider", min=0, max=1, step=0.01, value=0.5,
                                        updatemode="drag"), html.Div(id="threshold-path", children="start")])
    floor.clientside_callback("function (v) { return 'Threshold ' + v; }", Output("threshold-path", "children"),
                              Input("threshold-slider", "value"))
    return floor.server


def bench_browser(app, sizes) -> list[tuple[str, dict]]:
    """Time slider moves in headless Chromium; fail if a move sends a request to the server."""
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    floor = make_server("127.0.0.1", 0, _floor_app(), threaded=True)
    threading.Thread(target=floor.serve_forever, daemon=True).start()
    results = []
    requests: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=os.environ.get("GLASSBOX_CHROMIUM", "/usr/bin/chromium"),
                                         args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(120_000)
            page.on("request", lambda r: requests.append(r.url) if "_dash-update-component" in r.url else None)
            page.goto(f"{url}/login")
            page.fill("#username", "admin")
            page.fill("#password", PASSWORD)
            page.click("#login-submit")
            page.wait_for_selector("#shell-content .gb-page-header", state="attached")
            for n in sizes:
                name = _name(n)
                page.goto(f"{url}/threshold?model={name}")
                page.wait_for_selector("#threshold-table-test-tp")
                if page.inner_text("#threshold-model-value").strip() != name:
                    page.click("#threshold-model")
                    page.click(f"[role=option]:has-text('{name}')")
                page.wait_for_function("n => document.querySelector('#threshold-model-value').innerText.trim() === n"
                                       " && document.querySelector('#threshold-path').innerText.includes('0.50')",
                                       arg=name)
                page.wait_for_timeout(1500)
                page.evaluate(MOVE_JS, [5, "ArrowRight", True])  # warm up
                requests.clear()
                runs = [page.evaluate(MOVE_JS, [20, "ArrowRight", True]),
                        page.evaluate(MOVE_JS, [20, "ArrowLeft", True])]
                drag = [page.evaluate(MOVE_JS, [20, "ArrowRight", False]),
                        page.evaluate(MOVE_JS, [20, "ArrowLeft", False])]
                for part, label, source in (("numbers", "matrix, bars, table (one step, then a pause)", runs),
                                            ("numbers", "matrix, bars, table (steps back to back, as a drag)",
                                             drag),
                                            ("markers", "ROC and PR markers (after the slider rests)", runs)):
                    times = sorted(source[0][part] + source[1][part])
                    results.append((f"{n:,} test rows: {label}", {
                        "p50": statistics.median(times), "p95": times[round(0.95 * len(times)) - 1],
                        "max": times[-1], "requests": len(requests), "moves": len(times)}))
                    log.info("browser %s: %s", n, results[-1][1])
            page.goto(f"http://127.0.0.1:{floor.server_port}/")
            page.wait_for_selector("#threshold-slider [role=slider]")
            page.wait_for_timeout(1500)
            page.evaluate(FLOOR_JS, [5])
            times = sorted(page.evaluate(FLOOR_JS, [40]))
            results.append(("floor: a bare Dash page (slider + one clientside output)", {
                "p50": statistics.median(times), "p95": times[round(0.95 * len(times)) - 1], "max": times[-1],
                "requests": 0, "moves": len(times)}))
            browser.close()
    finally:
        server.shutdown()
        floor.shutdown()
    return results


def _table(callbacks, loads, browser, timings, sizes) -> str:
    lines = ["### Model views: server callbacks (ms; one process, called directly in a request context)", ""]
    header = "| Callback | " + " | ".join(f"{n:,} rows: first / p50 / p95 (KB)" for n in sizes) + " |"
    lines += [header, "|---|" + "---|" * len(sizes)]
    labels = [label for label, _ in callbacks[sizes[0]]]
    for label in labels:
        cells = []
        for n in sizes:
            r = dict(callbacks[n])[label]
            cells.append(f"{r['cold']:.0f} / {r['p50']:.1f} / {r['p95']:.1f} ({r['bytes'] / 1024:.1f})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "First = first call in a fresh process cache (decodes cached payloads, loads the model and "
              "predicts the split where rows are needed); p50/p95 = repeats after it.", ""]
    lines += ["### Registration and view analyses (s)", "", "| Test rows | register | view analyses |", "|---|---|---|"]
    lines += [f"| {n:,} | {timings[n][0]:.1f} | {timings[n][1]:.1f} |" for n in sizes]
    lines += ["", "### Initial load (bytes, uncompressed JSON)", "", "| Page | " +
              " | ".join(f"{n:,} rows" for n in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for label in [label for label, _ in loads[sizes[0]]]:
        lines.append(f"| {label} | " + " | ".join(f"{dict(loads[n])[label]:,}" for n in sizes) + " |")
    if browser:
        lines += ["", "### Threshold slider in headless Chromium (ms from a key press on the slider)", "",
                  "Numbers: to the frame that paints the new matrix, bars, table and path. Markers: to the end of "
                  "plotly's redraw of both curves, which waits until the slider has rested 120 ms. Floor: the same "
                  "measurement on a bare Dash page with only a slider and one clientside output, in the same "
                  "browser at the same time: what any Dash slider costs on this machine.", "",
                  "| Case | p50 | p95 | max | moves | server requests |", "|---|---|---|---|---|---|"]
        for label, r in browser:
            lines.append(f"| {label} | {r['p50']:.1f} | {r['p95']:.1f} | {r['max']:.1f} | {r['moves']} | "
                         f"{r['requests']} |")
    load = os.getloadavg()
    lines += ["", f"Machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
              "while measuring (other work shares the machine)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write benchmarks/out/views.md."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_views")
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv if argv is not None else (sys.argv[1:] if __name__ == "__main__" else []))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("data.analysis_cache", "glassbox.audit", "werkzeug", "glassbox"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sizes = sorted(args.sizes)
    with tempfile.TemporaryDirectory(prefix="glassbox-bench-views-") as tmp:
        app, timings = build_instance(Path(tmp), sizes)
        callbacks = {n: bench_callbacks(app, n, args.repeats if n < 1_000_000 else max(5, args.repeats // 2))
                     for n in sizes}
        loads = {n: bench_initial_load(app, n) for n in sizes}
        browser = [] if args.no_browser else bench_browser(app, [n for n in sizes if n in BROWSER_SIZES] or sizes[:1])
        app.extensions["glassbox.db"].dispose()
    table = _table(callbacks, loads, browser, timings, sizes)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
