"""Headless Chromium on the why-pages: drill down to an explanation, what-if sliders, counterfactual to what-if.

Models: ``cancer`` and ``iris`` from seed_models.py; ``loans`` (categories, a log-scale income),
``houses`` (regression) and ``mlp`` (no fast explainer) from seed_explain.py.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import login, screenshot
from tests.browser.seed_explain import HOUSES, LOANS, MLP
from tests.browser.seed_models import BINARY, MULTICLASS

pytestmark = pytest.mark.browser


def open_page(page, server, user: str, path: str) -> None:
    """Sign in, then open ``path`` (query strings kept whole)."""
    login(page, server, user, path="/")
    page.goto(server.url + path)
    page.wait_for_selector("#shell-content .gb-page-header", state="attached")


def chart_title(page, graph: str, starts: str = "") -> str:
    """Return a chart's title once it is drawn (and starts with ``starts``)."""
    page.wait_for_function("([sel, starts]) => { const t = document.querySelector(sel);"
                           " return t && t.textContent.startsWith(starts); }", arg=[f"#{graph} .gtitle", starts])
    return page.text_content(f"#{graph} .gtitle")


def wait_title_change(page, graph: str, before: str) -> str:
    page.wait_for_function("([sel, before]) => { const t = document.querySelector(sel);"
                           " return t && t.textContent !== before; }", arg=[f"#{graph} .gtitle", before])
    return chart_title(page, graph)


def slider_thumb(page, feature: str):
    return page.locator(f'[id*="whatif-slider"][id*="\\"{feature}\\""] [role=slider]').first


def test_drill_down_from_the_confusion_matrix_opens_the_explanation(page, live_server):
    open_page(page, live_server, "analyst", f"/confusion-matrix?model={BINARY}")
    page.wait_for_selector("#cm-matrix .heatmaplayer")
    box = page.locator("#cm-matrix .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.75)
    page.wait_for_selector("#cm-rows-grid .ag-center-cols-container .ag-row")
    # The grid fetches its rows from the server and may redraw them once; click again if the first click
    # landed on a row that was being replaced.
    for attempt in range(3):
        page.locator("#cm-rows-grid .ag-center-cols-container .ag-row").first.click()
        try:
            page.wait_for_selector("#cm-details-body-explain", timeout=10_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    href = page.get_attribute("#cm-details-body-explain", "href")
    row = re.search(r"row=(\d+)", href).group(1)
    page.click("#cm-details-body-explain")
    page.wait_for_url(re.compile(r".*/explain\?.*row=" + row))
    page.wait_for_function("r => (document.querySelector('#explain-summary') || {}).textContent?.includes("
                           "'Row ' + r + ' of the test data')", arg=row)
    page.wait_for_selector("#explain-waterfall .waterfalllayer .trace")
    assert "This prediction" in page.text_content("#explain-waterfall")
    page.wait_for_selector("#explain-nearest table")
    screenshot(page, "explain-from-drill-down")


def test_explanation_opened_by_its_url_and_from_the_mistakes_list(page, live_server):
    open_page(page, live_server, "analyst", f"/explain?model={MULTICLASS}&split=test&row=3")
    page.wait_for_function("() => (document.querySelector('#explain-summary') || {}).textContent?.includes("
                           "'Row 3 of the test data')")
    page.wait_for_selector("#explain-waterfall .waterfalllayer .trace")
    page.click("text=Most confident mistakes")
    page.wait_for_selector("#explain-mistakes table")
    first = page.locator("#explain-mistakes tbody tr").first
    row = first.locator("td").first.inner_text().strip()
    first.locator("button").click()
    page.wait_for_function("r => (document.querySelector('#explain-summary') || {}).textContent?.includes("
                           "'Row ' + r + ' of the test data')", arg=row)
    assert "the model is wrong" in page.inner_text("#explain-summary")
    screenshot(page, "explain-mistake")


def test_moving_a_what_if_slider_changes_the_probabilities(page, live_server):
    open_page(page, live_server, "analyst", f"/what-if?model={LOANS}")
    before = chart_title(page, "whatif-proba", "Predicted:")
    thumb = slider_thumb(page, "credit_score")
    thumb.focus()
    thumb.press("End")
    after = wait_title_change(page, "whatif-proba", before)
    assert re.match(r"Predicted: \w+, \d+% vs \d+%", after)
    assert page.inner_text('[id*="whatif-shown"][id*="credit_score"]').strip() != ""
    page.wait_for_function("() => document.querySelector('#whatif-history-list').innerText.includes('credit_score')")
    page.wait_for_selector("#whatif-local .d-flex")  # the local explanation followed
    screenshot(page, "what-if-moved")
    page.click("#whatif-back")
    assert wait_title_change(page, "whatif-proba", after) == before
    thumb.focus()
    thumb.press("Home")
    moved = wait_title_change(page, "whatif-proba", before)
    page.click("#whatif-reset")
    assert wait_title_change(page, "whatif-proba", moved) == before


def test_probabilities_move_while_dragging_and_history_keeps_the_release(page, live_server):
    open_page(page, live_server, "analyst", f"/what-if?model={LOANS}")
    before = chart_title(page, "whatif-proba", "Predicted:")
    page.wait_for_function("() => document.querySelector('#whatif-json').textContent.includes('credit_score')")
    box = slider_thumb(page, "credit_score").bounding_box()
    track = page.locator('[id*="whatif-slider"][id*="\\"credit_score\\""]').first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    end = track["x"] + track["width"] - 2
    page.mouse.move(end, box["y"] + box["height"] / 2, steps=12)
    # Still holding the handle: the chart has already followed.
    during = wait_title_change(page, "whatif-proba", before)
    assert "credit_score" not in page.inner_text("#whatif-history-list")
    page.mouse.up()
    page.wait_for_function("() => document.querySelector('#whatif-history-list').innerText.includes('credit_score')")
    assert page.locator("#whatif-history-list li").count() == 1  # one release, one change
    assert during.startswith("Predicted:")


def test_a_log_slider_and_a_category_move_the_prediction(page, live_server):
    open_page(page, live_server, "analyst", f"/what-if?model={LOANS}")
    before = chart_title(page, "whatif-proba", "Predicted:")
    income = slider_thumb(page, "annual_income")
    income.focus()
    income.press("End")
    after = wait_title_change(page, "whatif-proba", before)
    shown = page.inner_text('[id*="whatif-shown"][id*="annual_income"]').replace(",", "")
    assert float(shown) > 100_000  # the log slider's top is the largest income, not log10 of it
    page.click('[id*="whatif-choice"][id*="employment_type"]')
    page.click("[role=option]:has-text('unemployed')")
    wait_title_change(page, "whatif-proba", after)


def test_counterfactual_applied_to_the_what_if_form_flips_the_answer(page, live_server):
    open_page(page, live_server, "analyst", f"/explain?model={LOANS}&split=test&row=3")
    page.wait_for_function("() => (document.querySelector('#explain-summary') || {}).textContent?.includes("
                           "'Row 3 of the test data')")
    predicted = re.search(r"Predicted (\w+)", page.inner_text("#explain-summary")).group(1)
    page.click("#explain-cf-go")
    page.wait_for_selector("#explain-cf-result table")
    assert "Would need to be" in page.text_content("#explain-cf-result")
    screenshot(page, "explain-counterfactual")
    page.wait_for_selector("#explain-cf-apply", state="visible")
    page.click("#explain-cf-apply")
    page.wait_for_url(re.compile(r".*/what-if\?.*values="))
    page.wait_for_function("() => (document.querySelector('#whatif-start-note') || {}).innerText?.includes("
                           "'values given in the link')")
    title = chart_title(page, "whatif-proba", "Predicted:")
    now = re.match(r"Predicted: (\w+),", title).group(1)
    assert now != predicted, (predicted, title)
    screenshot(page, "what-if-from-counterfactual")


def test_regression_what_if_shows_value_and_interval(page, live_server):
    open_page(page, live_server, "analyst", f"/what-if?model={HOUSES}")
    before = chart_title(page, "whatif-proba", "Predicted:")
    assert "interval" in before and "Predicted" in before
    thumb = slider_thumb(page, "living_area_m2")
    thumb.focus()
    thumb.press("End")
    assert wait_title_change(page, "whatif-proba", before) != before


def test_kernel_model_explains_on_request(page, live_server):
    open_page(page, live_server, "analyst", f"/what-if?model={MLP}")
    page.wait_for_selector("#whatif-explain-go", state="visible")
    assert "Kernel SHAP" in page.inner_text("#whatif-local-note")
    page.click("#whatif-explain-go")
    page.wait_for_selector("#whatif-local .d-flex")
    assert "estimate" in page.inner_text("#whatif-local-note")


def test_features_page_draws_every_chart(page, live_server):
    open_page(page, live_server, "analyst", f"/features?model={LOANS}")
    for graph in ("features-importance", "features-pdp", "features-pdp2d", "features-dep"):
        page.wait_for_selector(f"#{graph} .main-svg .xtick", state="attached")  # drawn axes: not a placeholder
    page.click("label:has-text('Mean |SHAP value|')")
    page.wait_for_function("() => document.querySelector('#features-importance .gtitle')"
                           ".textContent.includes('SHAP')")
    screenshot(page, "features-loans")
