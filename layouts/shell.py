"""The shell around every page: top bar, navigation, content area, error toast."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts.page import SECTIONS, Page

URL = "url"
CONTENT = "shell-content"
NAV = "shell-nav"
ERROR_TOAST = "shell-error-toast"
USER_BADGE = "shell-user"
LOGOUT = "shell-logout"


def nav_links(pages: list[Page], pathname: str | None) -> list:
    """Return the sidebar for the pages the user may open, grouped by section."""
    items: list = []
    for section in SECTIONS:
        in_section = [p for p in pages if p.spec.section == section and p.spec.nav]
        if not in_section:
            continue
        if section != "Main":
            items.append(html.Div(section, className="gb-nav-section"))
        for page in in_section:
            active = pathname == page.spec.path
            items.append(
                dcc.Link(
                    [html.I(className=f"bi {page.spec.icon} me-2"), page.spec.title],
                    href=page.spec.path,
                    id=page.nav_id,
                    className="gb-nav-link" + (" active" if active else ""),
                )
            )
    return items


def shell(*, username: str, role: str, pages: list[Page], csrf_token: str) -> html.Div:
    """Return the layout every signed-in user receives; it holds only their own navigation."""
    topbar = html.Header(
        [
            dcc.Link([html.I(className="bi bi-box me-2"), "Glassbox"], href="/", className="gb-brand"),
            html.Div(
                [
                    html.Span([html.I(className="bi bi-person-circle me-1"), username],
                              className="gb-username"),
                    dbc.Badge(role, color="light", text_color="dark", className="ms-2 gb-role",
                              id=USER_BADGE),
                    html.Form(
                        [
                            dcc.Input(type="hidden", name="csrf_token", value=csrf_token),
                            html.Button([html.I(className="bi bi-box-arrow-right me-1"), "Log out"],
                                        type="submit", id=LOGOUT,
                                        className="btn btn-sm btn-outline-light ms-3"),
                        ],
                        action="/logout",
                        method="POST",
                        className="d-inline",
                    ),
                ],
                className="d-flex align-items-center",
            ),
        ],
        className="gb-topbar",
    )
    return html.Div(
        [
            dcc.Location(id=URL, refresh="callback-nav"),
            topbar,
            html.Div(
                [
                    html.Nav(nav_links(pages, None), id=NAV, className="gb-sidebar"),
                    html.Main(dcc.Loading(html.Div(id=CONTENT), type="dot", delay_show=400,
                                          overlay_style={"visibility": "visible", "opacity": 0.6}),
                              className="gb-main"),
                ],
                className="gb-body",
            ),
            dbc.Toast(id=ERROR_TOAST, header="Something went wrong", icon="danger", is_open=False,
                      dismissable=True, duration=8000, className="gb-toast"),
        ]
    )


def page_header(title: str, description: str = "") -> html.Div:
    """Return the title block at the top of a page."""
    return html.Div([html.H1(title, className="gb-page-title"),
                     html.P(description, className="gb-page-desc") if description else None],
                    className="gb-page-header")


def forbidden(title: str, permission_label: str, contact: str) -> html.Div:
    """Return the message shown instead of a page the user may not open."""
    return html.Div(
        [
            page_header(title),
            dbc.Alert(
                [
                    html.H2([html.I(className="bi bi-shield-lock me-2"), "You do not have access to this page"],
                            className="h5"),
                    html.P(["Opening ", html.Strong(title), " needs the permission ",
                            html.Strong(permission_label), "."]),
                    html.P(f"Ask {contact} to grant it.", className="mb-0"),
                ],
                color="warning",
                id="shell-forbidden",
            ),
        ]
    )


def not_found(pathname: str) -> html.Div:
    """Return the friendly 404 page."""
    return html.Div(
        [
            page_header("Page not found"),
            dbc.Alert(
                [
                    html.P(["There is no page at ", html.Code(pathname[:200]), "."]),
                    dcc.Link("Go to the overview", href="/", className="btn btn-primary btn-sm"),
                ],
                color="light",
                id="shell-not-found",
            ),
        ]
    )
