"""Fixtures for the API tests: an app with a registered binary model and a token for it."""

from __future__ import annotations

import pytest

from data.monitoring import create_token
from tests.api.helpers import register_binary, register_regression


@pytest.fixture
def churn(app, db, tmp_path):
    """The registered binary model 'churn' (version 1)."""
    return register_binary(db, tmp_path / "artifacts")


@pytest.fixture
def token(app, db, churn):
    """An active token for 'churn'."""
    with db.session() as s:
        _, text = create_token(s, "churn", name="tests", created_by="tests")
    return text


@pytest.fixture
def auth(token):
    """Headers with the churn token."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def price(app, db, tmp_path):
    """The registered regression model 'price'."""
    return register_regression(db, tmp_path / "artifacts")
