"""Self-contained HTML reports of a model over a period: metrics, confusion matrix, influence, monitoring.

A report is one HTML file with inline CSS and the figures embedded as
plotly figures with plotly.js inlined once (no CDN, no network): it opens
offline, in a mail attachment or an archive, years later. Reports are stored
in the database (compressed) so every web worker and host can serve them,
listed on the Reports page, and generated on a schedule by
``glassbox report --model NAME --period daily|weekly --out DIR``.

Periods end at 00:00 UTC of the given end day (default: today), so a cron job
shortly after midnight reports on the complete previous day or week; pass
``include_today`` to extend the period to now.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import logging
import re
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from sqlalchemy import select
from sqlalchemy.orm import Session

from data import alerts as A
from data import monitoring as M
from data.db import Database, utcnow

log = logging.getLogger(__name__)

PERIODS = {"daily": dt.timedelta(days=1), "weekly": dt.timedelta(days=7)}
PERIOD_BUCKET = {"daily": "hour", "weekly": "day"}
PLOT_CONFIG = {"displaylogo": False, "responsive": True}

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:#1f2933;
margin:0;background:#f4f6f9}
main{max-width:1100px;margin:0 auto;padding:24px 28px 48px;background:#fff}
header{border-bottom:3px solid #0b3d66;margin-bottom:18px;padding-bottom:10px}
h1{font-size:1.6rem;margin:0 0 4px;color:#102a43}h2{font-size:1.2rem;margin:28px 0 8px;color:#0b3d66}
.muted{color:#5b6877;font-size:.92rem}.stats{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.stat{border:1px solid #dde3ea;border-radius:8px;padding:10px 14px;min-width:150px}
.stat b{display:block;font-size:1.35rem;color:#102a43}.stat span{font-size:.75rem;text-transform:uppercase;
letter-spacing:.05em;color:#5b6877}
table{border-collapse:collapse;width:100%;margin:8px 0 4px;font-size:.9rem}
th,td{border-bottom:1px solid #e5e9ef;padding:5px 8px;text-align:left;vertical-align:top}
th{font-size:.75rem;text-transform:uppercase;letter-spacing:.04em;color:#5b6877}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.sig{color:#D55E00;font-weight:600}.mod{color:#9a6700;font-weight:600}
.note{background:#f7f9fb;border-left:3px solid #56B4E9;padding:8px 12px;margin:8px 0}
.figure{margin:6px 0 10px}footer{margin-top:32px;font-size:.8rem;color:#5b6877}
"""


class ReportError(ValueError):
    """The report cannot be made (unknown model, bad period); the message says why."""


def period_bounds(period: str, *, end: dt.date | dt.datetime | None = None,
                  include_today: bool = False) -> tuple[dt.datetime, dt.datetime]:
    """Return [start, end) of a daily or weekly period ending at 00:00 UTC of ``end`` (default today)."""
    if period not in PERIODS:
        raise ReportError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    now = utcnow()
    if include_today:
        stop = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    else:
        day = end if end is not None else now.date()
        if isinstance(day, dt.datetime):
            day = day.date()
        stop = dt.datetime.combine(day, dt.time())
    return stop - PERIODS[period], stop


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, spec: str = ".3f") -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, int):
        return f"{value:,}"
    return format(float(value), spec)


def _figure(fig: go.Figure, name: str, first: list[bool]) -> str:
    include = first[0]
    first[0] = False
    return '<div class="figure">' + pio.to_html(fig, include_plotlyjs=include, full_html=False, config=PLOT_CONFIG,
                                                div_id=f"fig-{name}", default_height=f"{fig.layout.height or 380}px",
                                                validate=False) + "</div>"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Iterable[int] = ()) -> str:
    numeric = set(numeric)
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _stats(items: Sequence[tuple[str, str]]) -> str:
    return '<div class="stats">' + "".join(f'<div class="stat"><span>{_e(k)}</span><b>{v}</b></div>'
                                           for k, v in items) + "</div>"


def render_report(session: Session, version, *, start: dt.datetime, end: dt.datetime, period: str,
                  created_by: str) -> str:
    """Return the HTML of the report of one model version over [start, end)."""
    from app.figures.influence import importance_figure
    from app.figures.performance import confusion_figure
    from app.monitoring import views as V
    from data.analysis_cache import get_result

    ref = M.reference_if_ready(session, version)
    if ref is None:
        raise ReportError(f"the reference data of {version.label} is still being computed; try again shortly")
    window = M.Window(ref.id, M.hour_of(start), max(M.hour_of(start) + 1, M.hour_of(end - dt.timedelta(seconds=1)) + 1),
                      PERIOD_BUCKET[period])
    first = [True]
    rows = V.bucket_rows(session, ref, window)
    perf = V.performance(rows, ref.task)
    overall = perf["overall"]
    counts = V.drift_counts(session, ref, window)
    drift = V.drift_table(ref, counts)
    events = A.list_events(session, ref.model_id, version_id=ref.id, start=start, end=end)
    comments = M.list_comments(session, ref.model_id, version_id=ref.id, start=start, end=end)
    summary = V.summary(rows, perf, drift, sum(1 for e in events if e["acknowledged_at"] is None))
    metric = V.PERFORMANCE[ref.task][0]
    parts: list[str] = []

    parts.append(f"<header><h1>{_e(ref.model)} &middot; version {ref.number}</h1>"
                 f"<div class='muted'>{_e(period.capitalize())} report for {start:%Y-%m-%d %H:%M} to "
                 f"{end:%Y-%m-%d %H:%M} UTC &middot; generated {utcnow():%Y-%m-%d %H:%M} UTC by {_e(created_by)}"
                 f"</div></header>")
    if version.description:
        parts.append(f"<p class='muted'>{_e(version.description)}</p>")

    # -- headline numbers
    parts.append("<h2>Summary</h2>")
    parts.append(_stats([("Predictions", _num(summary.n)), ("With ground truth", _pct(summary.label_share)),
                         (A.metric_label(metric).split(" (")[0], _num(overall.get(metric))),
                         ("Records with an anomaly", _pct(summary.anomaly_share)),
                         ("Alerts fired", _num(len(events))),
                         ("Features drifting", _num(len(summary.drifting)))]))
    if summary.n == 0:
        parts.append("<p class='note'>No predictions were logged in this period.</p>")

    # -- metrics: production period next to the held-out test set
    parts.append("<h2>Metrics</h2>")
    test_metrics = version.metrics or (get_result(session, ref.id, "metrics_test") or {}).get("metrics", {})
    keys = [k for k in V.PERFORMANCE[ref.task]]
    parts.append(_table(["Metric", "This period (labelled records)", "Test set at registration"],
                        [[_e(A.metric_label(k)), _num(overall.get(k)), _num(test_metrics.get(k))] for k in keys],
                        numeric=(1, 2)))
    parts.append(f"<p class='muted'>{_num(overall.get('n_labelled', 0))} of {_num(overall.get('n', 0))} records of "
                 "the period have ground truth so far; metrics use those only.</p>")
    parts.append(_figure(V.timeline(perf, ref, metric=metric, events=events, comments=comments, window=window),
                         "timeline", first))

    # -- confusion matrix of the period
    if ref.task != "regression":
        parts.append("<h2>Confusion matrix</h2>")
        pairs = M.confusion_counts(session, window)
        labels = list(ref.classes)
        matrix = [[pairs.get((t, p), 0) for p in labels] for t in labels]
        if sum(map(sum, matrix)):
            parts.append(_figure(confusion_figure(matrix, labels, title="Confusion matrix of the period's "
                                                                         "labelled records"), "confusion", first))
        else:
            parts.append("<p class='note'>No labelled records in this period yet.</p>")

    # -- feature influence
    parts.append("<h2>Feature influence</h2>")
    importance = get_result(session, ref.id, "permutation_importance")
    impurity = get_result(session, ref.id, "impurity_importance")
    if importance:
        parts.append(_figure(importance_figure(importance, method_label="Permutation importance (test set)",
                                               top_k=12), "influence", first))
    elif impurity and impurity.get("available"):
        parts.append(_figure(importance_figure(impurity, method_label="Impurity importance (training)", top_k=12),
                             "influence", first))
        parts.append("<p class='muted'>Permutation importance was not computed yet when this report was made; "
                     "the trees' impurity importance is shown instead.</p>")
    else:
        parts.append("<p class='note'>Feature influence has not been computed for this version yet.</p>")

    # -- drift
    parts.append("<h2>Input drift against the training data</h2>")
    parts.append(_figure(V.drift_bars(drift), "drift", first))
    drift_rows = []
    for r in drift:
        sev = {"significant": "sig", "moderate": "mod"}.get(r["severity"], "")
        drift_rows.append([_e(r["feature"]), _num(r["psi"]), f"<span class='{sev}'>{_e(r['severity'])}</span>",
                           _e(r["test"] + (" (binned)" if r.get("approximate") else "")), _num(r["statistic"]),
                           _num(r["p_value"], ".3g"), _num(r["n_current"])])
    parts.append(_table(["Feature", "PSI", "Drift", "Test", "Statistic", "p-value", "Records"], drift_rows,
                        numeric=(1, 4, 5, 6)))
    parts.append("<p class='muted'>PSI below 0.1: stable; 0.1 to 0.25: moderate; above 0.25: significant.</p>")

    # -- anomalies
    parts.append("<h2>Input anomalies</h2>")
    totals = {k: sum(r[f"n_{k}"] for r in rows) for k in V.ANOMALY_TYPES}
    parts.append(_table(["Below training minimum", "Above training maximum", "Unseen category", "Missing value",
                         "Outlier score above 1"], [[_num(totals[k]) for k in V.ANOMALY_TYPES]],
                        numeric=range(5)))
    if rows:
        parts.append(_figure(V.anomalies(rows), "anomalies", first))

    # -- alerts and comments
    parts.append("<h2>Alerts</h2>")
    if events:
        parts.append(_table(["Time (UTC)", "Rule", "Value", "Records", "Status"],
                            [[f"{e['time']:%Y-%m-%d %H:%M}", _e(e["rule"]), _num(e["value"]), _num(e["n"]),
                              _e(f"acknowledged by {e['acknowledged_by']}" if e["acknowledged_at"] else "open")]
                             for e in events], numeric=(2, 3)))
    else:
        parts.append("<p class='muted'>No alert fired in this period.</p>")
    parts.append("<h2>Comments</h2>")
    if comments:
        items = "".join(f"<li><b>{_e(c['author'])}</b> <span class='muted'>{c['created_at']:%Y-%m-%d %H:%M} UTC"
                        + (f", about {c['start']:%Y-%m-%d}" if c["start"] else "") + f"</span><br>{_e(c['text'])}</li>"
                        for c in comments)
        parts.append(f"<ul>{items}</ul>")
    else:
        parts.append("<p class='muted'>No comments on this period.</p>")

    parts.append("<footer>Glassbox monitoring report. Figures are interactive and work offline; numbers come from "
                 "the predictions logged through the Glassbox API.</footer>")
    title = f"{ref.model} v{ref.number} · {period} report · {start:%Y-%m-%d}"
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>" + "".join(parts)
            + "</main></body></html>")


def _pct(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:.1%}"


def _filename(model: str, number: int, period: str, start: dt.datetime) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-") or "model"
    return f"glassbox-{safe}-v{number}-{period}-{start:%Y%m%d}.html"


def generate_report(db: Database, model_name: str, *, period: str, created_by: str,
                    end: dt.date | dt.datetime | None = None, include_today: bool = False,
                    version: int | None = None) -> dict:
    """Render a report, store it, and return its summary (id, filename, size, period)."""
    from data.registry import get_version

    start, stop = period_bounds(period, end=end, include_today=include_today)
    with db.session() as s:
        found = get_version(s, model_name, version)
        if found is None:
            raise ReportError(f"there is no model called {model_name!r}" if version is None
                              else f"{model_name!r} has no version {version}")
        version_id = found.id
    try:
        M.load_reference(db, version_id)  # computes the bins now if no worker has yet
    except M.ReferenceNotReady as exc:
        raise ReportError(str(exc)) from None
    with db.session() as s:
        found = get_version(s, model_name, version)
        html_text = render_report(s, found, start=start, end=stop, period=period, created_by=created_by)
        data = html_text.encode("utf-8")
        row = M.Report(model_id=found.model_id, version_id=found.id, period=period, period_start=start,
                       period_end=stop, created_by=created_by,
                       filename=_filename(model_name, found.number, period, start), size_bytes=len(data),
                       sha256=hashlib.sha256(data).hexdigest(), content=zlib.compress(data, 6))
        s.add(row)
        s.flush()
        out = {"id": row.id, "filename": row.filename, "size_bytes": row.size_bytes, "period": period,
               "start": start, "end": stop, "model": model_name, "version": found.number}
    log.info("report %s generated (%d bytes)", out["filename"], out["size_bytes"])
    return out


def list_reports(session: Session, *, model_ids: Iterable[int] | None = None, limit: int = 200) -> list[dict]:
    """Return stored reports (without content), newest first."""
    from data.registry import ModelRecord, ModelVersion

    query = (select(M.Report.id, M.Report.period, M.Report.period_start, M.Report.period_end, M.Report.created_at,
                    M.Report.created_by, M.Report.filename, M.Report.size_bytes, ModelRecord.name,
                    ModelVersion.number)
             .join(ModelRecord, ModelRecord.id == M.Report.model_id)
             .join(ModelVersion, ModelVersion.id == M.Report.version_id))
    if model_ids is not None:
        query = query.where(M.Report.model_id.in_(list(model_ids)))
    rows = session.execute(query.order_by(M.Report.created_at.desc(), M.Report.id.desc()).limit(limit)).all()
    return [{"id": r.id, "model": r.name, "version": r.number, "period": r.period, "start": r.period_start,
             "end": r.period_end, "created_at": r.created_at, "created_by": r.created_by, "filename": r.filename,
             "size_bytes": r.size_bytes} for r in rows]


def report_content(session: Session, report_id: int) -> tuple[str, str, str] | None:
    """Return (model name, filename, HTML) of a stored report, or None if there is none with this id."""
    from data.registry import ModelRecord

    row = session.execute(select(M.Report.filename, M.Report.content, M.Report.sha256, ModelRecord.name)
                          .join(ModelRecord, ModelRecord.id == M.Report.model_id)
                          .where(M.Report.id == report_id)).first()
    if row is None:
        return None
    data = zlib.decompress(row.content)
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise ReportError(f"stored report {report_id} is damaged (checksum mismatch)")
    return row.name, row.filename, data.decode("utf-8")


def model_has_report(session: Session, model_id: int, period: str) -> bool:
    """Return whether a report of this period exists for the model."""
    return session.scalar(select(M.Report.id).where(M.Report.model_id == model_id, M.Report.period == period)
                          .limit(1)) is not None


__all__ = ["PERIODS", "ReportError", "generate_report", "list_reports", "model_has_report", "period_bounds",
           "render_report", "report_content"]
