"""Headless Chromium: the monitoring page with simulated drift, the records grid, reports and the overview badge."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import login, screenshot
from tests.browser.seed_monitoring import MODEL, drift_feature

pytestmark = pytest.mark.browser


def _open(page, live_server, user):
    login(page, live_server, user, path=f"/monitoring?model={MODEL}")
    page.goto(f"{live_server.url}/monitoring?model={MODEL}")
    page.wait_for_selector("#mon-drift-grid .ag-center-cols-container .ag-row", timeout=30_000)


def test_drifted_feature_is_at_the_top_and_the_alert_is_shown(page, live_server):
    feature = drift_feature(live_server.app)
    _open(page, live_server, "viewer")
    # The feature column is pinned left, so its cells sit in AG Grid's pinned container.
    first = page.locator("#mon-drift-grid .ag-pinned-left-cols-container .ag-row[row-index='0'] [col-id='feature']")
    assert first.inner_text().strip() == feature
    psi = page.locator("#mon-drift-grid .ag-center-cols-container .ag-row[row-index='0'] [col-id='psi']")
    second = page.locator("#mon-drift-grid .ag-center-cols-container .ag-row[row-index='1'] [col-id='psi']")
    assert float(psi.inner_text()) > 2 * float(second.inner_text())
    assert page.locator("#mon-drift-grid .ag-floating-bottom [col-id='feature']").inner_text().strip() == \
        "(prediction)"
    alerts = page.locator("#mon-alerts")
    alerts.get_by_text(f"Input drift in {feature}").first.wait_for()
    assert "open" in alerts.inner_text()
    # The timeline carries the alert marker and the viewer's comment.
    page.wait_for_function("document.querySelector('#mon-timeline .js-plotly-plot') && "
                           "document.querySelector('#mon-timeline').innerText.includes('Comment: viewer')")
    assert page.locator("#mon-comments").get_by_text("New referral clinic").count() == 1
    assert re.match(r"\d", page.locator("#mon-stat-n").inner_text().replace(",", ""))
    # Viewers do not get row-level records.
    assert page.locator("#mon-records-denied").count() == 1
    screenshot(page, "monitoring-viewer")


def test_clicking_a_day_lists_its_records(page, live_server):
    _open(page, live_server, "analyst")
    page.wait_for_selector("#mon-timeline .js-plotly-plot .barlayer .point")
    page.locator("#mon-timeline .barlayer .point").nth(3).click(force=True)
    page.wait_for_selector("#mon-records .ag-center-cols-container .ag-row", timeout=20_000)
    assert page.locator("#mon-records-title").inner_text().startswith("Records of")
    assert re.match(r"Rows 1–\d+ of [\d,]+", page.locator("#mon-records-info").inner_text())
    link = page.locator("#mon-records a[href^='/explain?model=cancer']").first
    assert "record=sim-" in link.get_attribute("href")
    screenshot(page, "monitoring-records")


def test_pausing_auto_refresh_disables_the_interval(page, live_server):
    _open(page, live_server, "viewer")
    page.locator("#mon-live").uncheck()
    page.wait_for_function("!document.querySelector('#mon-updated') || true")
    assert page.locator("#mon-live").is_checked() is False


def test_a_report_is_generated_and_listed(page, live_server):
    login(page, live_server, "viewer", path=f"/reports?model={MODEL}")
    page.goto(f"{live_server.url}/reports?model={MODEL}")
    page.wait_for_selector("#rep-list")
    page.click("#rep-generate")
    page.wait_for_selector("#rep-table", timeout=60_000)
    with page.expect_download() as download:
        page.locator("#rep-table button").first.click()
    assert download.value.suggested_filename.startswith("glassbox-cancer-v1-")


def test_overview_shows_the_open_alert(page, live_server):
    login(page, live_server, "viewer", path="/")
    badge = page.locator(f"#overview-alerts-{MODEL} .gb-alert-badge")
    badge.wait_for()
    assert "open alert" in badge.inner_text()
    badge.click()
    page.wait_for_url(re.compile(r"/monitoring\?model=cancer"))
