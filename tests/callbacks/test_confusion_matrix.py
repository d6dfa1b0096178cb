"""Confusion-matrix callbacks: counts equal scikit-learn; rows only with the row-level permission, on that model."""

from __future__ import annotations

import base64
import csv
import io
import json

import numpy as np
import pytest
from dash import no_update
from sklearn.metrics import confusion_matrix

from callbacks import confusion_matrix as C
from data import views
from data.models import AuditEvent
from data.registry import clear_threshold, save_threshold
from layouts import confusion_matrix as L
from tests.browser.seed_models import binary_frames
from tests.callbacks.views_world import (BINARY, MULTICLASS, PENDING, build_world, find, frame_of, request, text_of,
                                        user, version)
from tests.conftest import csrf_headers, post_callback, sign_in


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    kinds = set(views.CONFUSION_KINDS["binary"]) | set(views.CONFUSION_KINDS["multiclass"])
    app = build_world(tmp_path_factory.mktemp("cm"), kinds=kinds)
    yield app
    app.extensions["glassbox.db"].dispose()


@pytest.fixture(scope="module")
def cancer():
    model, test, features = frame_of(BINARY)
    return test["target"].to_numpy(), model.predict_proba(test[features])[:, 1], test


def z(fig) -> list:
    """Return a heatmap's z as nested lists (plotly ships numpy arrays as base64 typed arrays)."""
    value = fig["data"][0]["z"]
    if isinstance(value, dict) and "bdata" in value:
        shape = [int(n) for n in str(value["shape"]).split(",")]
        value = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)
    return np.asarray(value).tolist()


def matrix(world, model=BINARY, split="test", normalise="none", name="viewer", polled=False):
    with request(world):
        return C.matrix(model, None, split, normalise, None, user=user(world, name), polled=polled)


def click(true, pred):
    return {"points": [{"curveNumber": 0, "x": str(pred), "y": str(true), "z": 1}]}


def select(world, true, pred, name="analyst", model=BINARY, split="test"):
    with request(world):
        return C.select_cell(click(true, pred), model, None, split, user=user(world, name))


def rows(world, cell, name="analyst", model=BINARY, start=0, end=25, sort=None, filters=None):
    req = {"startRow": start, "endRow": end, "sortModel": sort or [], "filterModel": filters or {}}
    with request(world):
        return C.get_rows(req, cell, model, None, user=user(world, name))


# -- the matrix ------------------------------------------------------------------------

def test_binary_matrix_equals_sklearn_at_the_saved_threshold(world, cancer):
    y, score, _ = cancer
    fig, note, status, interval_off, message, cell, info, area = matrix(world)
    assert message is None and interval_off is True and "default threshold 0.5" in note
    assert z(fig) == confusion_matrix(y, score >= 0.5).tolist()
    assert cell is None and area is None and "Click a cell" in text_of(info)  # a new matrix clears the cell
    with world.extensions["glassbox.db"].session() as s:
        save_threshold(s, version(world, BINARY).id, value=0.8, reason="fewer false alarms", set_by="analyst")
    try:
        fig, note, *_ = matrix(world)
        assert "saved threshold 0.8 (set by analyst)" in note
        assert z(fig) == confusion_matrix(y, score >= 0.8).tolist()
        assert "threshold 0.8" in fig["layout"]["title"]["text"]
    finally:
        with world.extensions["glassbox.db"].session() as s:
            clear_threshold(s, version(world, BINARY).id)


def test_multiclass_matrix_normalised_both_ways(world):
    model, test, features = frame_of(MULTICLASS)
    expected = confusion_matrix(test["target"], model.predict(test[features]), labels=[0, 1, 2])
    counts = matrix(world, model=MULTICLASS)[0]
    assert z(counts) == expected.tolist()
    by_true = np.array(z(matrix(world, model=MULTICLASS, normalise="true")[0]))
    assert np.allclose(by_true, expected / expected.sum(axis=1, keepdims=True))
    by_pred = np.array(z(matrix(world, model=MULTICLASS, normalise="pred")[0]))
    assert np.allclose(by_pred, expected / expected.sum(axis=0, keepdims=True))


def test_train_split(world):
    model, train, _, features = binary_frames()
    score = model.predict_proba(train[features])[:, 1]
    fig = matrix(world, split="train")[0]
    assert z(fig) == confusion_matrix(train["target"], score >= 0.5).tolist()


@pytest.mark.parametrize("model, split, normalise, says", [
    (BINARY, "test", "log", "Normalisation must be one of"), (BINARY, ["test"], "none", "Data must be one of"),
    ({"$gt": ""}, "test", "none", "Choose a model"), ("diabetes", "test", "none", "regressor"),
])
def test_forged_selection_gives_a_message(world, model, split, normalise, says):
    fig, note, status, interval_off, message, *_ = matrix(world, model=model, split=split, normalise=normalise)
    assert fig["data"] == [] and says in text_of(message)


def test_pending_counts_poll(world):
    fig, note, status, interval_off, *_ = matrix(world, model=PENDING)
    assert interval_off is False and "Computing" in text_of(status) and fig["data"] == []
    polled = matrix(world, model=PENDING, polled=True)
    assert polled[0] is no_update and polled[3] is False


def test_user_with_a_grant_on_another_model_sees_no_counts(world):
    fig, *_, message, cell, info, area = matrix(world, name="irisonly")
    assert fig["data"] == [] and "do not have access" in text_of(message)


# -- choosing a cell ----------------------------------------------------------------------

def test_cell_gives_its_count_and_for_an_analyst_its_rows_grid(world, cancer):
    y, score, _ = cancer
    cell, info, area = select(world, 1, 0)
    fn = int(((y == 1) & (score < 0.5)).sum())
    assert cell == {"key": f"{BINARY}:1", "split": "test", "true": 1, "pred": 0, "count": fn}
    assert f"{fn:,} rows" in text_of(info) and "Mistake" in text_of(info)
    grid = find(area, L.ROWS_GRID)
    assert grid is not None and grid.rowModelType == "infinite"
    assert [c["headerName"] for c in grid.columnDefs][:2] == ["Row", "mean radius"]


@pytest.mark.parametrize("name", ["viewer", "mixed"])
def test_without_row_permission_on_the_model_the_cell_says_why(world, name):
    cell, info, area = select(world, 1, 0, name=name)
    assert cell["count"] >= 0 and "rows" in text_of(info)
    assert find(area, L.ROWS_GRID) is None
    assert "view row-level data" in text_of(area)


@pytest.mark.parametrize("data", [None, {}, {"points": "x"}, {"points": []}, {"points": [{"x": {"a": 1}, "y": 1}]},
                                  {"points": [{"x": "0", "y": "7"}]}, {"points": [{"customdata": [0]}]}])
def test_forged_clicks_give_a_message(world, data):
    with request(world):
        cell, info, area = C.select_cell(data, BINARY, None, "test", user=user(world, "analyst"))
    assert cell is None and area is None and info is not None


# -- rows ---------------------------------------------------------------------------------

def test_rows_of_a_cell_sorted_and_filtered_on_the_server(world, cancer):
    y, score, test = cancer
    cell = select(world, 1, 1)[0]
    response, message = rows(world, cell, sort=[{"colId": "score", "sort": "asc"}], start=0, end=5)
    tp = np.flatnonzero((y == 1) & (score >= 0.5))
    assert message is None and response["rowCount"] == len(tp)
    expected = tp[np.argsort(score[tp], kind="stable")][:5]
    assert [r["row"] for r in response["rowData"]] == expected.tolist()
    assert all(r["true"] == 1 and r["pred"] == 1 for r in response["rowData"])
    big = test["mean radius"].to_numpy() > 15
    response, _ = rows(world, cell, end=500, filters={"c0": {"filterType": "number", "type": "greaterThan",
                                                             "filter": 15}})
    assert response["rowCount"] == int(big[tp].sum())


@pytest.mark.parametrize("req, cell, says", [
    ({"startRow": -5, "endRow": 10}, "good", "malformed page"),
    ({"startRow": 0, "endRow": "all"}, "good", "malformed page"),
    ("give me everything", "good", "malformed"),
    ({"startRow": 0, "endRow": 10, "sortModel": [{"colId": "passwords", "sort": "asc"}]}, "good", "no column"),
    ({"startRow": 0, "endRow": 10, "filterModel": {"c0": {"type": "eval", "filter": 1}}}, "good", "unknown number"),
    ({"startRow": 0, "endRow": 10}, {"key": f"{MULTICLASS}:1", "split": "test", "true": 0, "pred": 0}, "first"),
    ({"startRow": 0, "endRow": 10}, {"key": f"{BINARY}:1", "split": "prod", "true": 1, "pred": 1}, "Data must"),
    ({"startRow": 0, "endRow": 10}, None, "first"),
])
def test_forged_row_requests_are_refused(world, req, cell, says):
    if cell == "good":
        cell = select(world, 1, 1)[0]
    with request(world):
        response, message = C.get_rows(req, cell, BINARY, None, user=user(world, "analyst"))
    assert response == {"rowData": [], "rowCount": 0} and says in text_of(message)


@pytest.mark.parametrize("name, says", [("viewer", "view row-level data"), ("mixed", "view row-level data"),
                                        ("irisonly", "do not have access")])
def test_rows_callback_refuses_users_without_row_permission_on_that_model(world, name, says):
    cell = select(world, 1, 1)[0]
    response, message = rows(world, cell, name=name)
    assert response == {"rowData": [], "rowCount": 0} and says in text_of(message)


def _rows_key(world):
    return next(k for k in world.extensions["glassbox.policy"].permissions if "cm-rows-grid.getRowsResponse" in k)


@pytest.mark.parametrize("name, status", [("viewer", 403), ("analyst", 200), ("mixed", 200)])
def test_gate_refuses_the_rows_callback_to_a_viewer(world, name, status):
    """A viewer cannot get rows by any request; 'mixed' passes the gate (rows on iris) but gets none of cancer."""
    client = world.test_client()
    sign_in(client, world.extensions["glassbox.db"], name)
    cell = {"key": f"{BINARY}:1", "split": "test", "true": 1, "pred": 1, "count": 1}
    response = post_callback(
        client, _rows_key(world),
        inputs=[{"id": L.ROWS_GRID, "property": "getRowsRequest", "value": {"startRow": 0, "endRow": 10}}],
        state=[{"id": L.CELL, "property": "data", "value": cell},
               {"id": "cm-model", "property": "value", "value": BINARY},
               {"id": "cm-version", "property": "value", "value": None}], headers=csrf_headers(client))
    assert response.status_code == status
    if status == 200:
        data = response.get_json()["response"][L.ROWS_GRID]["getRowsResponse"]
        assert (data["rowCount"] > 0) == (name == "analyst")


# -- details, export, mistakes ------------------------------------------------------------------

def test_row_details_panel_links_to_the_explanation(world, cancer):
    y, score, test = cancer
    with request(world):
        is_open, body = C.details_from_cell([{"row": 5}], {"split": "test"}, BINARY, None,
                                            user=user(world, "analyst"))
    assert is_open is True
    text = text_of(body)
    assert "Row 5 of the test data" in text and f"{test.loc[5, 'mean radius']:.6g}" in text
    link = find(body, f"{L.DETAILS_BODY}-explain")
    assert link.href == f"/explain?model={BINARY}&version=1&split=test&row=5"
    assert f"{score[5]:.6g}" in text


@pytest.mark.parametrize("selected, says", [([{"row": 10**9}], "no row"), ([{"row": "5"}], "no row"),
                                            (["5"], "Choose a row"), ({"row": 1}, "Choose a row")])
def test_forged_row_selection(world, selected, says):
    with request(world):
        is_open, body = C.details_from_cell(selected, {"split": "test"}, BINARY, None, user=user(world, "analyst"))
    assert says in text_of(body)


def test_details_refused_without_row_permission(world):
    with request(world):
        is_open, body = C.row_details([{"row": 1}], "test", BINARY, None, user=user(world, "mixed"))
    assert "view row-level data" in text_of(body)
    with request(world):
        assert C.row_details([], "test", BINARY, None, user=user(world, "analyst")) == (no_update, no_update)


def test_export_writes_the_cell_as_csv_and_audits_it(world, cancer):
    y, score, test = cancer
    cell = select(world, 0, 0)[0]
    req = {"startRow": 0, "endRow": 25, "sortModel": [{"colId": "row", "sort": "desc"}],
           "filterModel": {"c0": {"filterType": "number", "type": "lessThan", "filter": 13}}}
    with request(world):
        download, message = C.export_rows(1, cell, req, BINARY, None, user=user(world, "analyst"))
    records = list(csv.reader(io.StringIO(download["content"])))
    expected = np.flatnonzero((y == 0) & (score < 0.5) & (test["mean radius"].to_numpy() < 13))[::-1]
    assert [int(r[0]) for r in records[1:]] == expected.tolist()
    assert download["filename"] == f"{BINARY}-v1-test-true-0-pred-0.csv" and download["type"] == "text/csv"
    assert f"Exported {len(expected):,} rows" in text_of(message)
    with world.extensions["glassbox.db"].session() as s:
        events = s.query(AuditEvent).filter_by(action="export.rows", outcome="success").all()
        assert any(e.target == f"{BINARY} v1" and f"{len(expected)} rows" in e.detail for e in events)


def test_export_refused_and_audited_for_a_user_without_rows_on_the_model(world):
    cell = select(world, 0, 0)[0]
    with request(world):
        download, message = C.export_rows(1, cell, None, BINARY, None, user=user(world, "mixed"))
    assert download is no_update and "view row-level data" in text_of(message)
    with world.extensions["glassbox.db"].session() as s:
        assert s.query(AuditEvent).filter_by(action="export.rows", outcome="failure").count() >= 1


def test_most_confident_mistakes(world, cancer):
    y, score, _ = cancer
    with request(world):
        data, defs, note = C.mistakes(BINARY, None, "test", user=user(world, "analyst"))
    wrong = (score >= 0.5) != (y == 1)
    assert len(data) == min(L.MISTAKES_LIMIT, int(wrong.sum())) and note is None
    assert all(r["true"] != r["pred"] for r in data)
    assert data[0]["confidence"] == pytest.approx(float(f"{np.maximum(score, 1 - score)[wrong].max():.6g}"))
    assert all(d["filter"] is False for d in defs)
    with request(world):
        data, defs, note = C.mistakes(BINARY, None, "test", user=user(world, "viewer"))
    assert data == [] and "view row-level data" in text_of(note)


def test_layout_holds_no_row_grid_for_a_viewer(world):
    from layouts.page import PageContext

    def ctx(name):
        u = user(world, name)
        return PageContext(username=name, role=u.role, query={}, can=u.can, visible_models=u.visible_models)

    viewer = json.dumps(L.layout(ctx("viewer")).to_plotly_json(), default=str)
    analyst = json.dumps(L.layout(ctx("analyst")).to_plotly_json(), default=str)
    assert L.MISTAKES_GRID not in viewer and L.DOWNLOAD not in viewer
    assert L.MISTAKES_GRID in analyst and L.DOWNLOAD in analyst
