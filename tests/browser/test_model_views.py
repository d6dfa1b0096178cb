"""Headless Chromium on the model views: the threshold slider, the confusion matrix drill-down, performance.

The numbers the browser renders are read back and compared with scikit-learn
on the seeded model's own test scores (tests/browser/seed_models.py).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, matthews_corrcoef, precision_score, recall_score

from tests.browser.conftest import login, screenshot
from tests.browser.seed_models import BINARY, MULTICLASS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def cancer_scores(live_server):
    """True labels and positive-class scores of the registered binary model on its test data."""
    from data.registry import get_version, load_estimator, load_frames

    with live_server.app.app_context():
        with live_server.db.session() as s:
            version = get_version(s, BINARY)
        model = load_estimator(version)
        _, test = load_frames(version)
        score = model.predict_proba(test[list(version.features)])[:, list(model.classes_).index(1)]
        return test["target"].to_numpy(), score


def choose_model(page, prefix: str, name: str) -> None:
    """Pick ``name`` in a page's model dropdown unless it is already chosen."""
    value = f"#{prefix}-model-value"
    page.wait_for_selector(value)
    if page.inner_text(value).strip() != name:
        page.click(f"#{prefix}-model")
        page.click(f"[role=option]:has-text('{name}')")
        page.wait_for_function("([sel, name]) => document.querySelector(sel).innerText.trim() === name",
                               arg=[value, name])


def _number(page, selector: str) -> float:
    return float(page.inner_text(selector).replace(",", "").strip())


def _read_test_numbers(page) -> dict:
    keys = ("tp", "fp", "tn", "fn", "precision", "recall", "f1", "mcc")
    return {k: _number(page, f"#threshold-table-test-{k}") for k in keys}


def _expected(y, score, t) -> dict:
    pred = (score >= t).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn, "precision": precision_score(y, pred, zero_division=0),
            "recall": recall_score(y, pred, zero_division=0), "f1": f1_score(y, pred, zero_division=0),
            "mcc": matthews_corrcoef(y, pred)}


def _assert_equal(shown: dict, expected: dict, t) -> None:
    for key in ("tp", "fp", "tn", "fn"):
        assert shown[key] == expected[key], (t, key, shown, expected)
    for key in ("precision", "recall", "f1", "mcc"):
        assert shown[key] == pytest.approx(round(float(expected[key]), 4), abs=1e-9), (t, key)


def _wait_for_threshold(page, text: str) -> None:
    page.wait_for_function("t => (document.querySelector('#threshold-path') || {}).innerText?.includes(t)",
                           arg=text)


def test_slider_moves_the_matrix_in_the_browser_and_equals_sklearn(page, live_server, cancer_scores):
    y, score = cancer_scores
    login(page, live_server, "viewer", path="/threshold")
    choose_model(page, "threshold", BINARY)
    page.wait_for_selector("#threshold-table-test-tp")
    _wait_for_threshold(page, "Threshold 0.50")
    _assert_equal(_read_test_numbers(page), _expected(y, score, 0.5), 0.5)
    heat_before = page.inner_text("#threshold-heatmap")

    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "_dash-update-component" in r.url else None)
    handle = page.locator("#threshold-slider [role=slider]")
    handle.focus()
    # 0.50 -> 0.29 (the float trap: 0.29 * 100 = 28.999999999999996) -> 0.71, all in the browser.
    for target, key, presses in ((0.29, "ArrowLeft", 21), (0.71, "ArrowRight", 42)):
        for _ in range(presses):
            page.keyboard.press(key)
        _wait_for_threshold(page, f"Threshold {target:.2f}:")
        _assert_equal(_read_test_numbers(page), _expected(y, score, target), target)
        assert "no server request" in page.inner_text("#threshold-path")
    assert requests == [], "moving the slider must not call the server"
    assert page.inner_text("#threshold-heatmap") != heat_before
    assert page.input_value("#threshold-box") == "0.71"
    screenshot(page, "threshold-slider")


def test_typed_threshold_between_steps_is_answered_exactly_by_the_server(page, live_server, cancer_scores):
    y, score = cancer_scores
    login(page, live_server, "analyst", path="/threshold")
    choose_model(page, "threshold", BINARY)
    _wait_for_threshold(page, "Threshold 0.50")
    t = float(np.sort(score)[len(score) // 3])  # exactly a score: a tie at the threshold
    page.fill("#threshold-box", repr(t))
    page.press("#threshold-box", "Enter")
    _wait_for_threshold(page, "computed on the server")
    _assert_equal(_read_test_numbers(page), _expected(y, score, t), t)
    assert page.locator("#threshold-slider [role=slider]").get_attribute("aria-valuenow") == \
        str(round(t, 2)).rstrip("0").rstrip(".")


def test_jump_to_best_f1_and_back_to_default(page, live_server, cancer_scores):
    y, score = cancer_scores
    login(page, live_server, "viewer", path="/threshold")
    choose_model(page, "threshold", BINARY)
    _wait_for_threshold(page, "Threshold 0.50")
    page.click("#threshold-jump-f1")
    page.wait_for_function("() => !document.querySelector('#threshold-path').innerText.includes('0.50')")
    _wait_for_threshold(page, "Threshold")
    best = max(f1_score(y, (score >= t).astype(int)) for t in np.unique(score))
    page.wait_for_function("() => document.querySelector('#threshold-table-test-f1') !== null")
    assert _number(page, "#threshold-table-test-f1") == pytest.approx(round(best, 4), abs=1e-9)
    page.click("#threshold-jump-default")
    _wait_for_threshold(page, "Threshold 0.50")


def test_analyst_clicks_a_cell_reads_its_rows_and_opens_one(page, live_server, cancer_scores):
    y, score = cancer_scores
    login(page, live_server, "analyst", path="/confusion-matrix")
    choose_model(page, "cm", BINARY)
    page.wait_for_selector("#cm-matrix .heatmaplayer")
    box = page.locator("#cm-matrix .nsewdrag").first.bounding_box()
    # Bottom-right cell: true 1, predicted 1.
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.75)
    page.wait_for_selector("#cm-cell-info-count")
    tp = int(((y == 1) & (score >= 0.5)).sum())
    assert page.inner_text("#cm-cell-info-count").startswith(f"{tp:,} rows")
    rows_js = ("() => [...document.querySelectorAll('#cm-rows-grid .ag-pinned-left-cols-container .ag-row')]"
               ".sort((a, b) => +a.getAttribute('row-index') - +b.getAttribute('row-index'))"
               ".map(r => (r.querySelector('[col-id=row]') || {}).innerText || '')")
    page.wait_for_function(f"() => {{ const r = ({rows_js})(); return r.length >= 5 && r.slice(0, 5).every(x => x); }}")
    first_rows = page.evaluate(rows_js)
    expected = np.flatnonzero((y == 1) & (score >= 0.5))
    assert [int(r) for r in first_rows[:5]] == expected[:5].tolist()
    screenshot(page, "confusion-rows")
    page.locator("#cm-rows-grid .ag-center-cols-container .ag-row").first.click()
    page.wait_for_selector("#cm-details-body-title")
    assert page.inner_text("#cm-details-body-title").startswith(f"Row {expected[0]:,} of the test data")
    href = page.get_attribute("#cm-details-body-explain", "href")
    assert re.fullmatch(rf"/explain\?model={BINARY}&version=1&split=test&row={expected[0]}", href)
    screenshot(page, "confusion-details")


def test_viewer_sees_counts_only_and_why(page, live_server):
    login(page, live_server, "viewer", path="/confusion-matrix")
    choose_model(page, "cm", BINARY)
    page.wait_for_selector("#cm-matrix .heatmaplayer")
    box = page.locator("#cm-matrix .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.75)
    page.wait_for_selector("#cm-rows-locked")
    assert "view row-level data" in page.inner_text("#cm-rows-locked")
    assert page.locator("#cm-rows-grid").count() == 0 and page.locator("#cm-mistakes-grid").count() == 0


def test_performance_page_shows_train_and_test(page, live_server):
    login(page, live_server, "viewer", path="/performance")
    choose_model(page, "performance", MULTICLASS)
    page.wait_for_selector("#performance-metrics-accuracy")
    page.wait_for_selector("#performance-per-class-table")
    page.wait_for_selector("#performance-roc .scatterlayer")
    screenshot(page, "performance-iris")
