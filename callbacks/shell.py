"""The shell's router: renders the page for the URL after checking the user may open it."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from dash import Input, Output, State, set_props
from flask import current_app

from app.audit import record_event
from app.security.permissions import Permission
from layouts import shell as L
from layouts.page import Page, PageContext

log = logging.getLogger("glassbox.router")

MAX_QUERY_LENGTH = 2000


def parse_query(search: str | None) -> dict[str, str]:
    """Return the first value of each query parameter (bounded; untrusted)."""
    if not isinstance(search, str):
        return {}
    pairs = parse_qsl(search.lstrip("?")[:MAX_QUERY_LENGTH], keep_blank_values=False)
    query: dict[str, str] = {}
    for key, value in pairs:
        query.setdefault(key[:64], value[:500])
    return query


def find_page(pages: list[Page], pathname: str | None) -> Page | None:
    """Return the page registered at ``pathname``."""
    if not isinstance(pathname, str):
        return None
    path = pathname.rstrip("/") or "/"
    return next((p for p in pages if p.spec.path == path), None)


def render_page(pathname, search, *, user, pages: list[Page], contact: str):
    """Return (page content, navigation) for ``pathname`` as seen by ``user``."""
    visible = [p for p in pages if user.can(p.spec.permission)]
    nav = L.nav_links(visible, pathname if isinstance(pathname, str) else None)
    page = find_page(pages, pathname)
    if page is None:
        return L.not_found(str(pathname or "")), nav
    if not user.can(page.spec.permission):
        record_event("page", target=page.spec.path, outcome="denied",
                     detail=f"missing permission {page.spec.permission.value}")
        return L.forbidden(page.spec.title, page.spec.permission.label, contact), nav
    ctx = PageContext(username=user.username, role=user.role, query=parse_query(search),
                      can=user.can, visible_models=user.visible_models)
    body = page.module.layout(ctx)
    return [L.page_header(page.spec.title, page.spec.description), body], nav


def show_error(exc: Exception):
    """Log an unexpected callback error and tell the user, without a traceback."""
    log.exception("callback failed", exc_info=exc)
    set_props(L.ERROR_TOAST, {"is_open": True,
                              "children": "This view could not be updated. The error has been logged; "
                                          "try again or change the input."})


def register(dash_app, policy, *, pages: list[Page]) -> None:
    """Bind the URL to the page content and navigation."""

    def route(pathname, search):
        return render_page(pathname, search, user=policy.current_user(), pages=pages,
                           contact=current_app.config["GLASSBOX_ADMIN_CONTACT"])

    policy.callback(Output(L.CONTENT, "children"), Output(L.NAV, "children"),
                    Input(L.URL, "pathname"), State(L.URL, "search"),
                    permission=Permission.AUTHENTICATED)(route)
    titles = {p.spec.path: p.spec.title for p in pages}
    policy.clientside_callback(
        "function(p){var t=" + _js_object(titles) + ";"
        "document.title=(t[(p||'/').replace(/\\/$/,'')||'/']||'Glassbox')+' · Glassbox';"
        "return window.dash_clientside.no_update;}",
        Output(L.URL, "hash"), Input(L.URL, "pathname"),
    )


def _js_object(mapping: dict[str, str]) -> str:
    import json

    return json.dumps(mapping)
