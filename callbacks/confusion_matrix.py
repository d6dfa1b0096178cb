"""Callbacks of the confusion-matrix page.

The matrix (counts) needs 'view confusion matrix'. Everything that shows
individual rows -- the grid behind a cell, a row's details, the CSV export,
the most confident mistakes -- is registered with 'view row-level data', so
the gate refuses those requests from a user without it, and each callback
checks the permission again on the model asked for (grants can be per model).
The grid's sort, filter and page requests are validated in
:mod:`data.views`; the binary threshold always comes from the registry,
never from the browser.
"""

from __future__ import annotations

import functools
import math
from typing import Any
from urllib.parse import urlencode

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback_context, dcc, html, no_update

from app.audit import record_event
from app.figures.performance import confusion_figure
from app.security.permissions import Permission
from callbacks.model_select import register_selector, resolve
from callbacks.validate import InvalidInput, choice, error_alert
from data import views
from data.db import get_db
from data.registry import ModelVersion
from layouts import confusion_matrix as L
from layouts.model_views import fmt, placeholder, progress_block

TASKS = ("binary", "multiclass")
EXPLAIN_PATH = "/explain"
_NORMALISE = {"none": None, "true": "true", "pred": "pred"}


def _hint() -> Any:
    return html.P("Click a cell of the matrix to see the rows behind it.", className="gb-help mb-0")


def _version(model, version, user, permission=Permission.VIEW_CONFUSION_MATRIX) -> ModelVersion:
    return resolve(model, version, user=user, permission=permission, tasks=TASKS)


def _split(split) -> str:
    return choice(split, name="Data", options=("train", "test"))


def _key(version: ModelVersion) -> str:
    return f"{version.name}:{version.number}"


def _threshold(version: ModelVersion) -> float | None:
    return views.saved_threshold(version) if version.task == "binary" else None


def threshold_note(version: ModelVersion) -> str:
    """Say which threshold a binary matrix uses."""
    if version.task != "binary":
        return "Each row is labelled with the class the model gives the highest probability."
    saved = version.threshold if isinstance(version.threshold, dict) else None
    if saved:
        return (f"At the saved threshold {views.saved_threshold(version):.4g} (set by {saved.get('set_by', '?')}): "
                f"rows scoring at or above it are predicted {version.positive_class}.")
    return (f"At the default threshold 0.5 (no threshold is saved): rows scoring at or above it are predicted "
            f"{version.positive_class}.")


@functools.lru_cache(maxsize=32)
def _figure(db, version_id: int, storage_dir: str, split: str, normalise: str, threshold: float | None) -> dict | None:
    """Return the matrix figure (memoised per process), or None while the data is being computed."""
    with db.session() as s:
        version = s.get(ModelVersion, version_id)
    cm = views.confusion(db, version, split, threshold=threshold)
    if cm["matrix"] is None:
        return None
    where = f"{split} data" + (f", threshold {threshold:.4g}" if threshold is not None else "")
    fig = confusion_figure(cm["matrix"], cm["labels"], normalize=_NORMALISE[normalise],
                           title=f"Confusion matrix ({where})")
    fig.update_layout(clickmode="event")
    return fig.to_plotly_json()


def matrix(model, version, split, normalise, n_intervals, *, user, polled: bool = False):
    """Outputs: figure, threshold note, status, interval disabled, message, cell, cell info, rows area."""
    skip = (no_update,) * 8
    try:
        found = _version(model, version, user)
        split = _split(split)
        normalise = choice(normalise, name="Normalisation", options=tuple(_NORMALISE))
    except InvalidInput as exc:
        if polled:
            return skip[:3] + (True,) + skip[4:]
        return (placeholder(str(exc), title="Confusion matrix"), None, None, True, error_alert(str(exc)), None,
                None, None)
    db = get_db()
    kinds = views.CONFUSION_KINDS[found.task]
    with db.session() as s:
        ready = views.readiness(s, found.id, kinds)
    status = progress_block(ready)
    computing = ready["state"] == "computing"
    fig = None
    if found.task == "multiclass" or not computing:
        fig = _figure(db, found.id, found.storage_dir, split, normalise, _threshold(found))
    if fig is None:
        if polled:
            return skip[:2] + (status, not computing) + skip[4:]
        why = ("The counts of this model are still being computed; the matrix appears when they are ready."
               if computing else "The counts of this model are not available (see above).")
        return (placeholder(why, title="Confusion matrix"), threshold_note(found), status, not computing, None, None,
                _hint(), None)
    return fig, threshold_note(found), status, True, None, None, _hint(), None


def _cell_from_click(click: Any) -> tuple[Any, Any]:
    if not isinstance(click, dict) or not isinstance(click.get("points"), list) or not click["points"]:
        raise InvalidInput("Click a cell of the matrix.")
    point = click["points"][0]
    if not isinstance(point, dict):
        raise InvalidInput("Click a cell of the matrix.")
    custom = point.get("customdata")
    if isinstance(custom, list) and len(custom) == 2:
        return custom[0], custom[1]
    # Heatmap clicks carry the cell's category names: y is the true class, x the predicted one.
    if "x" in point and "y" in point:
        return point["y"], point["x"]
    raise InvalidInput("Click a cell of the matrix.")


def column_defs(version: ModelVersion) -> list[dict]:
    """Return AG Grid column definitions for the row grids (safe field ids, server-side filters)."""
    defs = []
    for c in views.grid_columns(version):
        numeric = c["kind"] == "numeric"
        d = {"field": c["id"], "headerName": c["header"], "sortable": True,
             "filter": "agNumberColumnFilter" if numeric else "agTextColumnFilter",
             "filterParams": {"maxNumConditions": 2, "buttons": ["reset"]}}
        if c["id"] == "row":
            d.update(pinned="left", width=90)
        if c["id"] in ("true", "pred"):
            d["pinned"] = "left"
            d["width"] = 110
        defs.append(d)
    return defs


def rows_grid(version: ModelVersion) -> Any:
    """Return a fresh infinite-row grid (a new grid asks for its first page at once)."""
    return dag.AgGrid(
        id=L.ROWS_GRID, rowModelType="infinite", columnDefs=column_defs(version),
        defaultColDef={"resizable": True, "minWidth": 90},
        dashGridOptions={"pagination": True, "paginationPageSize": L.PAGE_SIZE, "cacheBlockSize": L.PAGE_SIZE,
                         "maxBlocksInCache": 8, "paginationPageSizeSelector": False, "animateRows": False,
                         "rowSelection": {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True},
                         "suppressCellFocus": True},
        style={"height": "420px"})


def select_cell(click, model, version, split, *, user):
    """A clicked cell: its count, and its rows grid (or why not). Outputs: cell store, cell info, rows area."""
    try:
        found = _version(model, version, user)
        split = _split(split)
        true_raw, pred_raw = _cell_from_click(click)
        true_label = views.class_label(found, true_raw)
        pred_label = views.class_label(found, pred_raw)
    except (InvalidInput, views.ViewError) as exc:
        return None, error_alert(str(exc)), None
    threshold = _threshold(found)
    cm = views.confusion(get_db(), found, split, threshold=threshold)
    if cm["matrix"] is None:
        return None, error_alert("The counts are still being computed."), None
    labels = list(cm["labels"])
    i, j = labels.index(true_label), labels.index(pred_label)
    count = int(cm["matrix"][i][j])
    row_total = sum(cm["matrix"][i])
    share = f" ({count / row_total:.1%} of the rows that are truly {true_label})" if row_total else ""
    kind = "correct" if true_label == pred_label else "mistake"
    info = html.Div([
        html.Span("Correct" if kind == "correct" else "Mistake",
                  className="badge me-2 " + ("text-bg-success" if kind == "correct" else "text-bg-warning")),
        html.Strong(f"True {true_label}, predicted {pred_label}: "),
        html.Span(f"{count:,} rows{share}", id=f"{L.CELL_INFO}-count"),
        html.Span(f" \u00b7 {split} data", className="text-muted"),
    ])
    cell = {"key": _key(found), "split": split, "true": true_label, "pred": pred_label, "count": count}
    if not user.can(Permission.VIEW_ROWS, model=found.name):
        why = html.P([html.I(className="bi bi-lock me-2"),
                      "You see the count only: the rows themselves need the permission 'view row-level data' on "
                      f"{found.name}. Ask an administrator if you need them."],
                     className="gb-help mb-0", id=f"{L.ROWS}-locked")
        return cell, info, why
    if count == 0:
        return cell, info, html.P("No rows fall in this cell.", className="gb-help mb-0")
    return cell, info, html.Div([
        rows_grid(found),
        html.Div([dbc.Button([html.I(className="bi bi-download me-1"), "Export these rows (CSV)"], id=L.EXPORT,
                             color="secondary", outline=True, size="sm"),
                  html.Span("Sort and filter in the column headers; the export follows them. Click a row for its "
                            "details.", className="gb-help small text-muted ms-2")], className="mt-2"),
        html.Div(id=L.EXPORT_MESSAGE, className="mt-2"),
    ])


def _cell(cell: Any, found: ModelVersion) -> dict:
    if not isinstance(cell, dict) or cell.get("key") != _key(found):
        raise InvalidInput("Click a cell of the matrix first.")
    split = _split(cell.get("split"))
    return {"split": split, "true": views.class_label(found, cell.get("true")),
            "pred": views.class_label(found, cell.get("pred"))}


def _display(value: Any) -> Any:
    """Round floats for the grid (the server filters and sorts on full precision)."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.6g}")
    return value


def _request(request: Any) -> tuple[int, int, Any, Any]:
    if not isinstance(request, dict):
        raise InvalidInput("The grid's request is malformed.")
    start, end = request.get("startRow"), request.get("endRow")
    if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or not isinstance(end, int) \
            or start < 0 or end <= start or start > 10**9:
        raise InvalidInput("The grid asked for a malformed page of rows.")
    return start, end, request.get("sortModel"), request.get("filterModel")


def get_rows(request, cell, model, version, *, user):
    """One page of the rows in the chosen cell. Outputs: getRowsResponse, message."""
    empty = {"rowData": [], "rowCount": 0}
    try:
        found = _version(model, version, user, permission=Permission.VIEW_ROWS)
        chosen = _cell(cell, found)
        start, end, sort_model, filter_model = _request(request)
        page = views.cell_rows(found, chosen["split"], true_label=chosen["true"], pred_label=chosen["pred"],
                               threshold=_threshold(found), start=start, end=end, sort_model=sort_model,
                               filter_model=filter_model)
    except (InvalidInput, views.ViewError) as exc:
        return empty, error_alert(str(exc))
    rows = [{k: _display(v) for k, v in r.items()} for r in page["rows"]]
    return {"rowData": rows, "rowCount": page["count"]}, None


def _detail_rows(items: list[dict]) -> list:
    return [html.Tr([html.Th(str(i["name"]), className="fw-normal text-muted"),
                     html.Td(str(fmt(i["value"], ".6g")) if isinstance(i["value"], float) else str(i["value"]),
                             className="text-end font-monospace")]) for i in items]


def details_panel(found: ModelVersion, detail: dict) -> Any:
    """Return the side panel's content for one row."""
    split, row = detail["split"], detail["row"]
    query = urlencode({"model": found.name, "version": found.number, "split": split, "row": row})
    outcome = html.Span("Correct" if detail["correct"] else "Mistake",
                        className="badge " + ("text-bg-success" if detail["correct"] else "text-bg-warning"))
    summary = [
        {"name": "True class", "value": detail["true"]},
        {"name": "Predicted class", "value": detail["pred"]},
        {"name": "Confidence (probability of the predicted class)", "value": detail["confidence"]},
    ]
    if "score" in detail:
        summary.append({"name": f"Score for {found.positive_class} (threshold {detail['threshold']:.4g})",
                        "value": detail["score"]})
    parts = [
        html.H3([f"Row {row:,} of the {split} data ", outcome], className="h6", id=f"{L.DETAILS_BODY}-title"),
        dbc.Table(html.Tbody(_detail_rows(summary)), size="sm", className="mb-3"),
        html.H4("Inputs", className="h6"),
        dbc.Table(html.Tbody(_detail_rows(detail["features"])), size="sm", className="mb-3",
                  id=f"{L.DETAILS_BODY}-features"),
    ]
    if detail["groups"]:
        parts += [html.H4("Group columns (not used by the model)", className="h6"),
                  dbc.Table(html.Tbody(_detail_rows(detail["groups"])), size="sm", className="mb-3")]
    parts.append(dcc.Link([html.I(className="bi bi-lightbulb me-1"), "Explain this prediction"],
                          href=f"{EXPLAIN_PATH}?{query}", id=f"{L.DETAILS_BODY}-explain",
                          className="btn btn-outline-primary btn-sm"))
    return html.Div(parts)


def row_details(selected, split, model, version, *, user):
    """Open the side panel with one selected row. Outputs: panel open, panel content."""
    if not selected:
        return no_update, no_update
    try:
        found = _version(model, version, user, permission=Permission.VIEW_ROWS)
        split = _split(split)
        if not isinstance(selected, list) or not isinstance(selected[0], dict):
            raise InvalidInput("Choose a row in the grid.")
        row = selected[0].get("row")
        detail = views.row_details(found, split, row, threshold=_threshold(found))
    except (InvalidInput, views.ViewError) as exc:
        return True, error_alert(str(exc))
    return True, details_panel(found, detail)


def details_from_cell(selected, cell, model, version, *, user):
    """A row clicked in the cell's grid (its split is the cell's)."""
    split = cell.get("split") if isinstance(cell, dict) else None
    return row_details(selected, split, model, version, user=user)


def export_rows(n_clicks, cell, request, model, version, *, user):
    """Send the cell's rows (filtered and sorted like the grid) as CSV; audited. Outputs: download, message."""
    if not n_clicks:
        return no_update, no_update
    try:
        found = _version(model, version, user, permission=Permission.VIEW_ROWS)
        chosen = _cell(cell, found)
        sort_model = request.get("sortModel") if isinstance(request, dict) else None
        filter_model = request.get("filterModel") if isinstance(request, dict) else None
        out = views.cell_csv(found, chosen["split"], true_label=chosen["true"], pred_label=chosen["pred"],
                             threshold=_threshold(found), sort_model=sort_model, filter_model=filter_model)
    except (InvalidInput, views.ViewError) as exc:
        record_event("export.rows", target=str(model)[:120], outcome="failure", detail=str(exc)[:300])
        return no_update, error_alert(str(exc))
    detail = (f"{out['rows']} rows of {chosen['split']} data, true {chosen['true']}, predicted {chosen['pred']}"
              + (f", filters {sorted(filter_model)}" if isinstance(filter_model, dict) and filter_model else ""))
    record_event("export.rows", target=found.label, detail=detail)
    name = f"{found.name}-v{found.number}-{chosen['split']}-true-{chosen['true']}-pred-{chosen['pred']}.csv"
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    message = (f"Exported {out['rows']:,} rows." if not out["truncated"] else
               f"Exported the first {out['rows']:,} of {out['total']:,} rows (the export limit); filter to narrow.")
    return {"content": out["csv"], "filename": name, "type": "text/csv"}, html.Span(message, className="small")


def mistakes(model, version, split, *, user):
    """The most confident mistakes. Outputs: rowData, columnDefs, message."""
    try:
        found = _version(model, version, user, permission=Permission.VIEW_ROWS)
        split = _split(split)
    except InvalidInput as exc:
        return [], [], error_alert(str(exc))
    rows = views.confident_mistakes(found, split, threshold=_threshold(found), limit=L.MISTAKES_LIMIT)
    defs = [dict(d, filter=False, sortable=False) for d in column_defs(found)]
    data = [{k: _display(v) for k, v in r.items()} for r in rows]
    note = None if rows else html.P(f"The model makes no mistakes on the {split} data.", className="gb-help mb-1")
    return data, defs, note


def register(dash_app, policy) -> None:
    """Register the selector, the matrix (view confusion matrix) and the row-level callbacks (view rows)."""
    register_selector(policy, L.PREFIX, permission=Permission.VIEW_CONFUSION_MATRIX, tasks=TASKS)
    from layouts.model_select import SelectorIds

    ids = SelectorIds(L.PREFIX)

    def _matrix(model, version, split, normalise, n_intervals):
        polled = callback_context.triggered_id == L.INTERVAL
        return matrix(model, version, split, normalise, n_intervals, user=policy.current_user(), polled=polled)

    policy.callback(Output(L.MATRIX, "figure"), Output(L.THRESHOLD_NOTE, "children"), Output(L.STATUS, "children"),
                    Output(L.INTERVAL, "disabled"), Output(L.MESSAGE, "children"), Output(L.CELL, "data"),
                    Output(L.CELL_INFO, "children"), Output(L.ROWS, "children"),
                    Input(ids.model, "value"), Input(ids.version, "value"), Input(ids.split, "value"),
                    Input(L.NORMALISE, "value"), Input(L.INTERVAL, "n_intervals"),
                    permission=Permission.VIEW_CONFUSION_MATRIX)(_matrix)

    def _select(click, model, version, split):
        return select_cell(click, model, version, split, user=policy.current_user())

    policy.callback(Output(L.CELL, "data", allow_duplicate=True),
                    Output(L.CELL_INFO, "children", allow_duplicate=True),
                    Output(L.ROWS, "children", allow_duplicate=True),
                    Input(L.MATRIX, "clickData"), State(ids.model, "value"), State(ids.version, "value"),
                    State(ids.split, "value"), prevent_initial_call=True,
                    permission=Permission.VIEW_CONFUSION_MATRIX)(_select)

    def _rows(request, cell, model, version):
        return get_rows(request, cell, model, version, user=policy.current_user())

    policy.callback(Output(L.ROWS_GRID, "getRowsResponse"), Output(L.ROWS_MESSAGE, "children"),
                    Input(L.ROWS_GRID, "getRowsRequest"), State(L.CELL, "data"), State(ids.model, "value"),
                    State(ids.version, "value"), prevent_initial_call=True,
                    permission=Permission.VIEW_ROWS)(_rows)

    def _cell_details(selected, cell, model, version):
        return details_from_cell(selected, cell, model, version, user=policy.current_user())

    policy.callback(Output(L.DETAILS, "is_open"), Output(L.DETAILS_BODY, "children"),
                    Input(L.ROWS_GRID, "selectedRows"), State(L.CELL, "data"), State(ids.model, "value"),
                    State(ids.version, "value"), prevent_initial_call=True,
                    permission=Permission.VIEW_ROWS)(_cell_details)

    def _mistake_details(selected, split, model, version):
        return row_details(selected, split, model, version, user=policy.current_user())

    policy.callback(Output(L.DETAILS, "is_open", allow_duplicate=True),
                    Output(L.DETAILS_BODY, "children", allow_duplicate=True),
                    Input(L.MISTAKES_GRID, "selectedRows"), State(ids.split, "value"), State(ids.model, "value"),
                    State(ids.version, "value"), prevent_initial_call=True,
                    permission=Permission.VIEW_ROWS)(_mistake_details)

    def _export(n_clicks, cell, request, model, version):
        return export_rows(n_clicks, cell, request, model, version, user=policy.current_user())

    policy.callback(Output(L.DOWNLOAD, "data"), Output(L.EXPORT_MESSAGE, "children"),
                    Input(L.EXPORT, "n_clicks"), State(L.CELL, "data"), State(L.ROWS_GRID, "getRowsRequest"),
                    State(ids.model, "value"), State(ids.version, "value"), prevent_initial_call=True,
                    permission=Permission.VIEW_ROWS)(_export)

    def _mistakes(model, version, split):
        return mistakes(model, version, split, user=policy.current_user())

    policy.callback(Output(L.MISTAKES_GRID, "rowData"), Output(L.MISTAKES_GRID, "columnDefs"),
                    Output(L.MISTAKES_MESSAGE, "children"),
                    Input(ids.model, "value"), Input(ids.version, "value"), Input(ids.split, "value"),
                    permission=Permission.VIEW_ROWS)(_mistakes)
