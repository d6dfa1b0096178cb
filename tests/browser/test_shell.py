"""Each role signs in and sees exactly its navigation; logout works; admins create users."""

from __future__ import annotations

import re

import pytest

from app.security.permissions import ROLES
from tests.browser.conftest import login, screenshot

pytestmark = pytest.mark.browser


def _nav_ids(page) -> set[str]:
    return set(page.eval_on_selector_all("#shell-nav a", "els => els.map(e => e.id)"))


@pytest.mark.parametrize("role", ["viewer", "analyst", "admin"])
def test_each_role_sees_exactly_its_navigation(page, live_server, role):
    login(page, live_server, role)
    pages = live_server.app.extensions["glassbox.pages"]
    expected = {p.nav_id for p in pages if p.spec.permission in ROLES[role] and p.spec.nav}
    page.wait_for_function("n => document.querySelectorAll('#shell-nav a').length === n", arg=len(expected))
    assert _nav_ids(page) == expected
    assert page.inner_text(".gb-role").strip().lower() == role
    screenshot(page, f"shell-{role}")


def test_forbidden_page_explains_the_missing_permission(page, live_server):
    login(page, live_server, "viewer", path="/admin/users")
    page.wait_for_selector("#shell-forbidden")
    assert "manage users" in page.inner_text("#shell-forbidden")


def test_unknown_page_is_friendly(page, live_server):
    login(page, live_server, "viewer", path="/no-such-page")
    page.wait_for_selector("#shell-not-found")


def test_logout_ends_the_session(page, live_server):
    login(page, live_server, "analyst")
    page.click("#shell-logout")
    page.wait_for_url(re.compile(r".*/login$"))
    page.goto(live_server.url + "/")
    assert "/login" in page.url


def test_admin_creates_a_viewer_who_sees_only_viewer_pages(page, live_server, browser):
    login(page, live_server, "admin", path="/admin/users")
    page.wait_for_selector("#admin-users-accounts")
    page.fill("#admin-users-new-username", "newviewer")
    page.click("#admin-users-create")
    page.wait_for_selector("#admin-users-password")
    password = page.inner_text("#admin-users-password").strip()
    page.wait_for_selector("#admin-users-accounts >> text=newviewer")
    screenshot(page, "admin-users")

    other = browser.new_context().new_page()
    login(other, live_server, "newviewer", password)
    pages = live_server.app.extensions["glassbox.pages"]
    expected = {p.nav_id for p in pages if p.spec.permission in ROLES["viewer"] and p.spec.nav}
    other.wait_for_function("n => document.querySelectorAll('#shell-nav a').length === n", arg=len(expected))
    assert _nav_ids(other) == expected
    other.context.close()


def test_audit_log_lists_events(page, live_server):
    login(page, live_server, "admin", path="/admin/audit")
    page.wait_for_selector("#audit-events >> text=login")
    screenshot(page, "audit-log")
