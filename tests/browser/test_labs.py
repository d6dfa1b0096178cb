"""Labs in headless Chromium: sliders refit the model, the URL reproduces the setup."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import login, screenshot

pytestmark = pytest.mark.browser


def _stat(page, root: str, label: str) -> str:
    """Return the value of the stat card called ``label`` under ``root``."""
    return page.locator(f"{root} .card-body", has_text=label).locator(".gb-stat").inner_text().strip()


def _wait_for_stat_change(page, root: str, label: str, before: str) -> str:
    page.wait_for_function(
        """([root, label, before]) => {
            for (const body of document.querySelectorAll(root + ' .card-body')) {
                if (body.innerText.toLowerCase().includes(label.toLowerCase())) {
                    const v = body.querySelector('.gb-stat').innerText.trim();
                    return v !== before && v !== '–';
                }
            }
            return false;
        }""", arg=[root, label, before])
    return _stat(page, root, label)


def _wait_text(page, selector: str, text: str) -> None:
    """Wait until the element exists and its text contains ``text``."""
    page.wait_for_function("([sel, text]) => (document.querySelector(sel)?.innerText || '').includes(text)",
                           arg=[selector, text])


def _wait_stats(page, selector: str) -> None:
    """Wait until the stat cards hold numbers rather than dashes."""
    page.wait_for_function("sel => (document.querySelector(sel)?.innerText || '–').indexOf('–') < 0",
                           arg=selector)


def _press(page, slider_id: str, key: str, times: int = 1) -> None:
    thumb = page.locator(f"#{slider_id} [role=slider]").first
    thumb.focus()
    for _ in range(times):
        thumb.press(key)


def test_moving_c_and_gamma_refits_the_boundary(page, live_server):
    login(page, live_server, "analyst", path="/labs/boundary?noise=0.3")
    page.wait_for_selector("#boundary-graph .main-svg")
    _wait_stats(page, "#boundary-stats")
    test_before = _stat(page, "#boundary-stats", "Test accuracy")
    reading_before = page.inner_text("#boundary-reading")
    screenshot(page, "labs-boundary-default")

    _press(page, "boundary-log-c", "End")
    page.wait_for_url(re.compile(r".*C=1000.*"))
    _press(page, "boundary-log-gamma", "End")
    page.wait_for_url(re.compile(r".*gamma=100.*"))
    test_after = _wait_for_stat_change(page, "#boundary-stats", "Test accuracy", test_before)
    _wait_text(page, "#boundary-reading", "memorising")
    assert float(test_after.rstrip("%")) < float(test_before.rstrip("%"))
    assert _stat(page, "#boundary-stats", "Train accuracy") == "100.0%"
    assert page.inner_text("#boundary-reading") != reading_before
    assert page.inner_text("#boundary-log-c-value").strip() == "1000"
    screenshot(page, "labs-boundary-memorising")

    # A colleague opening the same URL gets the same lab.
    url = page.url
    other = page.context.new_page()
    other.goto(url)
    _wait_text(other, "#boundary-reading", "memorising")
    assert _stat(other, "#boundary-stats", "Test accuracy") == test_after


def test_compare_draws_the_previous_boundary(page, live_server):
    login(page, live_server, "analyst", path="/labs/boundary")
    page.wait_for_selector("#boundary-graph .main-svg")
    _wait_stats(page, "#boundary-stats")
    page.click("#boundary-compare")
    _press(page, "boundary-log-gamma", "End")
    page.wait_for_selector("#boundary-graph .legendtext >> text=Previous boundary")
    screenshot(page, "labs-boundary-compare")


def test_raising_the_degree_shows_overfitting(page, live_server):
    login(page, live_server, "analyst", path="/labs/regression")
    page.wait_for_selector("#reglab-validation-graph .main-svg")
    _wait_text(page, "#reglab-diagnosis", "Good fit")
    test_rmse = float(_stat(page, "#reglab-stats", "Test RMSE"))
    screenshot(page, "labs-regression-default")
    _press(page, "reglab-degree", "End")
    page.wait_for_url(re.compile(r".*degree=15.*"))
    _wait_text(page, "#reglab-diagnosis", "Overfitting")
    assert float(_stat(page, "#reglab-stats", "Test RMSE")) > test_rmse
    screenshot(page, "labs-regression-overfitting")


def test_lasso_preset_and_penalty(page, live_server):
    login(page, live_server, "analyst", path="/labs/regression?degree=12")
    page.wait_for_selector("#reglab-coef-graph .main-svg")
    page.select_option("#reglab-preset", "sine")
    page.wait_for_url(re.compile(r".*coef=0,2,0,-0.3333,0,0.01667.*"))
    page.select_option("#reglab-penalty", "lasso")
    page.wait_for_function("() => !document.querySelector('#reglab-log-alpha [role=slider]')"
                           ".hasAttribute('data-disabled')")
    page.wait_for_selector("#reglab-coef-graph .gtitle >> text=exactly 0")
    screenshot(page, "labs-regression-lasso")


def test_viewer_cannot_open_the_labs(page, live_server):
    login(page, live_server, "viewer", path="/labs/boundary")
    page.wait_for_selector("#shell-forbidden")
    assert "use labs" in page.inner_text("#shell-forbidden")
