"""A shared world for the model-view callback tests: one app, users with global and per-model grants, models.

Built once per test module (callbacks only read, except saving a threshold,
which the tests undo). Models: ``cancer`` (binary, group column ``site``),
``iris`` (multiclass), ``diabetes`` (regression) and ``pending`` (binary,
analyses never run: the "still computing" state).
"""

from __future__ import annotations

import contextlib

from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

from app.security.users import create_user, find_user, grant_role, snapshot
from data.registry import get_version, register_model
from tests.browser.seed_models import (BINARY, GROUP, MULTICLASS, VIEW_KINDS, binary_frames, multiclass_frames,
                                       run_view_analyses)
from tests.conftest import _test_hash, build_test_app

#: username -> (role, model or None, extra grants)
USERS = {
    "viewer": ("viewer", None, ()),
    "analyst": ("analyst", None, ()),
    "admin": ("admin", None, ()),
    # Analyst on iris only: no access to cancer at all.
    "irisonly": ("analyst", MULTICLASS, ()),
    # Viewer everywhere, analyst on iris: passes the row-level gate, but not for cancer.
    "mixed": ("viewer", None, (("analyst", MULTICLASS),)),
}
REGRESSION = "diabetes"
PENDING = "pending"


def build_world(tmp, kinds=VIEW_KINDS):
    """Return an app with the users and models above (analyses ``kinds`` of all but ``pending`` computed)."""
    app = build_test_app(tmp)
    db = app.extensions["glassbox.db"]
    with db.session() as s:
        for name, (role, model, extra) in USERS.items():
            user = create_user(s, name, "placeholder-Pass-987", role=role, model=model)
            user.password_hash = _test_hash()
            for extra_role, extra_model in extra:
                grant_role(s, user, extra_role, model=extra_model)
    with app.app_context():
        model, train, test, _ = binary_frames()
        register_model(model, train, test, name=BINARY, target="target", positive_class=1, group_columns=[GROUP],
                       created_by="admin", db=db)
        model, train, test, _ = multiclass_frames()
        register_model(model, train, test, name=MULTICLASS, target="target", created_by="admin", db=db)
        data = load_diabetes(as_frame=True)
        frame = data.frame
        features = list(data.feature_names)
        train, test = frame.iloc[:300].reset_index(drop=True), frame.iloc[300:].reset_index(drop=True)
        reg = LinearRegression().fit(train[features], train["target"])
        register_model(reg, train, test, name=REGRESSION, target="target", created_by="admin", db=db)
        run_view_analyses(db, frozenset(kinds))
        model, train, test, _ = binary_frames()
        register_model(model, train, test, name=PENDING, target="target", positive_class=1, group_columns=[GROUP],
                       created_by="admin", db=db)
    return app


def user(app, name):
    """Return the CurrentUser snapshot of ``name`` (what policy.current_user() gives a callback)."""
    with app.extensions["glassbox.db"].session() as s:
        return snapshot(find_user(s, name))


def version(app, name, number=None):
    """Return a registered version (detached)."""
    with app.extensions["glassbox.db"].session() as s:
        return get_version(s, name, number)


@contextlib.contextmanager
def request(app):
    """A request context, as a callback runs in."""
    with app.test_request_context("/_dash-update-component", method="POST"):
        yield


def frame_of(name):
    """Return the (model, test frame, features) the world registered under ``name``."""
    if name == BINARY:
        model, _, test, features = binary_frames()
    else:
        model, _, test, features = multiclass_frames()
    return model, test, features


def find(component, component_id):
    """Return the component with ``component_id`` inside a Dash component tree (or a list of them)."""
    stack = list(component) if isinstance(component, (list, tuple)) else [component]
    while stack:
        node = stack.pop()
        if node is None or isinstance(node, (str, int, float)):
            continue
        if isinstance(node, (list, tuple)):
            stack.extend(node)
            continue
        if getattr(node, "id", None) == component_id:
            return node
        stack.append(getattr(node, "children", None))
    return None


def text_of(component) -> str:
    """Return all the text inside a component tree."""
    out = []
    stack = [component]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if isinstance(node, (str, int, float)):
            out.append(str(node))
        elif isinstance(node, (list, tuple)):
            stack.extend(reversed(node))
        else:
            stack.append(getattr(node, "children", None))
    return " ".join(out)


__all__ = ["BINARY", "GROUP", "MULTICLASS", "PENDING", "REGRESSION", "build_world", "find", "request",
           "frame_of", "text_of", "user", "version"]
