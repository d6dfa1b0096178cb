/* Threshold explorer: every slider move is answered here, in the browser.
 *
 * The server sends once per model the exact confusion counts at every 0.01
 * threshold (k / 100, k = 0..100) for train and test. A threshold t on that
 * grid is looked up at index Math.round(t * 100): never truncate, since
 * 0.29 * 100 is 28.999999999999996. Metrics use the same formulas, in the
 * same order of operations, as app/ml/threshold.py, so the numbers are
 * identical to the server's (and to scikit-learn's). A value typed off the
 * grid is sent to the server, which answers from the exact sweep.
 *
 * Speed. Every Dash prop update costs time in proportion to the number of
 * components on the page, and a plotly redraw takes longer than a frame. So a
 * move is one clientside callback whose only Dash outputs are the slider and
 * the box; the confusion matrix, the bars, the table and the notes are drawn
 * straight into DOM nodes that React leaves empty (built with createElement
 * and textContent, never innerHTML); the ROC, PR and cost figures, built on
 * the server, get their markers patched (dash_clientside.Patch through
 * set_props) once the slider has rested for QUIET_MS, so a drag never waits
 * for plotly.
 */
(function () {
  "use strict";
  var dc = (window.dash_clientside = window.dash_clientside || {});
  var NAMES = { train: "Train", test: "Test" };
  var SPLITS = ["train", "test"];
  var COUNTS = ["tp", "fp", "tn", "fn"];
  var GAP_FLAG = 0.05;
  var ID = {
    slider: "threshold-slider",
    box: "threshold-box",
    jump: "threshold-jump",
    jumpDefault: "threshold-jump-default",
    jumpF1: "threshold-jump-f1",
    jumpCost: "threshold-jump-cost",
    jumpSaved: "threshold-jump-saved",
    grid: "threshold-grid",
    exact: "threshold-exact",
    cost: "threshold-cost-store",
    fair: "threshold-fair-store",
    roc: "threshold-roc",
    pr: "threshold-pr",
    costGraph: "threshold-cost-graph",
    heatmap: "threshold-heatmap",
    bars: "threshold-bars",
    table: "threshold-table",
    path: "threshold-path",
    fairNote: "threshold-fair-note"
  };

  function nu() { return dc.no_update; }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function clamp01(v) { return Math.min(1, Math.max(0, v)); }
  function triggered() {
    var ctx = dc.callback_context;
    return ctx ? ctx.triggered_id : undefined;
  }

  /* Same as app/ml/threshold.py _ratio: 0 when the denominator is 0. */
  function ratio(num, den) { return den !== 0 ? num / den : 0; }

  function metricsFromCounts(c) {
    var tp = c.tp, fp = c.fp, tn = c.tn, fn = c.fn;
    var n = tp + fp + tn + fn;
    var mccDen = Math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
    return {
      tp: tp, fp: fp, tn: tn, fn: fn,
      precision: ratio(tp, tp + fp),
      recall: ratio(tp, tp + fn),
      f1: ratio(2 * tp, 2 * tp + fp + fn),
      accuracy: (tp + tn) / n,
      specificity: ratio(tn, tn + fp),
      mcc: ratio(tp * tn - fp * fn, mccDen),
      predicted_positive_rate: (tp + fp) / n,
      fpr: ratio(fp, fp + tn)
    };
  }

  function countsAt(split, k) {
    var c = {};
    COUNTS.forEach(function (key) { c[key] = split[key][k]; });
    return c;
  }

  function tText(t, onGrid) { return onGrid ? t.toFixed(2) : String(Number(t.toPrecision(6))); }
  function sig3(t) { return String(Number(t.toPrecision(3))); }
  function int(v) { return Number(v).toLocaleString("en-US"); }
  function pct(v) { return (v * 100).toFixed(1) + "%"; }
  function f4(v) { return v === null || v === undefined ? "n/a" : v.toFixed(4); }

  /* -- the threshold a trigger asks for ------------------------------------------ */

  /* {t, grid, k, source}, or null to leave everything alone. The box always holds the current threshold. */
  function nextThreshold(trig, slider, box, jump) {
    var t, source;
    if (trig === ID.jump) {
      if (!jump || !isNum(jump.t)) { return null; }
      t = jump.t; source = jump.source || "jump";
    } else if (trig === ID.box) {
      if (!isNum(box) || box < 0 || box > 1) { return null; }
      t = box; source = "box";
    } else if (trig === ID.slider) {
      if (!isNum(slider)) { return null; }
      t = slider; source = "slider";
    } else {
      t = isNum(box) ? box : (isNum(slider) ? slider : 0.5);
      source = "current";
    }
    t = clamp01(t);
    var k = Math.round(t * 100);
    var onGrid = Math.abs(t * 100 - k) < 1e-9;
    if (onGrid) { t = k / 100; }
    return { t: t, grid: onGrid, k: k, source: source };
  }

  /* Per split metrics at the threshold: from the grid, or the server's exact answer. */
  function resolve(current, grid, exact) {
    var t = current.t;
    if (current.grid) {
      var k = Math.round(t * grid.steps);
      var per = {};
      SPLITS.forEach(function (s) {
        if (grid.splits[s]) { per[s] = metricsFromCounts(countsAt(grid.splits[s], k)); }
      });
      return { per: per, path: "grid" };
    }
    if (exact && exact.key === grid.key && exact.t === t) {
      if (exact.error) { return { error: exact.error }; }
      return { per: { train: exact.train, test: exact.test }, path: "exact" };
    }
    return { pending: true };
  }

  /* -- DOM drawing (no Dash components: see the note at the top) ------------------ */

  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (key === "style") { Object.assign(node.style, value); }
      else if (key === "text") { node.textContent = value; }
      else if (key === "className") { node.className = value; }
      else { node.setAttribute(key, value); }
    });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function paint(id, node) {
    if (typeof document === "undefined") { return; }
    var box = document.getElementById(id);
    if (!box) { return; }
    if (node === null) { box.replaceChildren(); } else { box.replaceChildren(node); }
  }

  /* Sequential blues, as app/figures/common.py SEQUENTIAL: light (0) to dark (1). */
  var SCALE = [[0, [247, 251, 255]], [0.5, [107, 174, 214]], [1, [8, 48, 107]]];
  var BAR_COLOURS = { precision: "#0072B2", recall: "#E69F00", f1: "#009E73" };
  var BAR_LABELS = { precision: "Precision", recall: "Recall", f1: "F1" };
  var CAPTION = { fontSize: "15px", fontWeight: "500", marginBottom: "0.5rem", color: "#2a3f5f" };
  var HEAD = { fontWeight: "500", fontSize: "13px", color: "#444", padding: "0.25rem 0.5rem" };

  function colour(v) {
    v = Math.min(1, Math.max(0, v));
    var lo = v <= 0.5 ? SCALE[0] : SCALE[1], hi = v <= 0.5 ? SCALE[1] : SCALE[2];
    var f = (v - lo[0]) / (hi[0] - lo[0]);
    var rgb = [0, 1, 2].map(function (i) { return Math.round(lo[1][i] + f * (hi[1][i] - lo[1][i])); });
    return "rgb(" + rgb.join(",") + ")";
  }

  /* The confusion matrix as a table: rows the true class, columns the prediction, colour the row share. */
  function matrixNode(m, labels, title) {
    var counts = [[m.tn, m.fp], [m.fn, m.tp]];
    var rows = [0, 1].map(function (i) {
      var total = counts[i][0] + counts[i][1];
      var cells = [h("th", { scope: "row", style: Object.assign({ textAlign: "right" }, HEAD),
                             text: "True " + labels[i] })];
      [0, 1].forEach(function (j) {
        var share = total !== 0 ? counts[i][j] / total : 0;
        cells.push(h("td", {
          id: ID.heatmap + "-" + i + "-" + j,
          title: "True " + labels[i] + ", predicted " + labels[j] + ": " + int(counts[i][j]) + " rows, " +
                 pct(share) + " of the rows that are truly " + labels[i],
          style: { width: "42%", height: "6.5rem", textAlign: "center", verticalAlign: "middle",
                   border: "2px solid #ffffff", fontVariantNumeric: "tabular-nums",
                   backgroundColor: colour(share), color: share > 0.5 ? "#ffffff" : "#1a1a1a" }
        }, [h("div", { style: { fontSize: "20px", fontWeight: "600" }, text: int(counts[i][j]) }),
            h("div", { style: { fontSize: "13px" }, text: pct(share) + " of true " + labels[i] })]));
      });
      return h("tr", {}, cells);
    });
    return h("figure", { className: "mb-0" }, [
      h("figcaption", { style: CAPTION, text: title }),
      h("table", { style: { width: "100%", borderCollapse: "collapse", tableLayout: "fixed" } }, [
        h("thead", {}, [h("tr", {}, [
          h("th", { style: { width: "16%" } }),
          h("th", { scope: "col", style: Object.assign({ textAlign: "center" }, HEAD), text: "Predicted " + labels[0] }),
          h("th", { scope: "col", style: Object.assign({ textAlign: "center" }, HEAD), text: "Predicted " + labels[1] })
        ])]),
        h("tbody", {}, rows)
      ]),
      h("div", { className: "gb-help small text-muted mt-2",
                 text: "Rows: the true class. Columns: what the model says. Colour: share of the true class." })
    ]);
  }

  /* Precision, recall and F1 as bars with their values, on a 0 to 1 scale. */
  function barsNode(m, title) {
    var rows = ["precision", "recall", "f1"].map(function (key) {
      var v = m[key];
      return h("div", { style: { display: "flex", alignItems: "center", margin: "0.6rem 0" } }, [
        h("div", { style: { width: "5.5rem", fontSize: "14px" }, text: BAR_LABELS[key] }),
        h("div", { style: { flex: "1 1 auto", height: "1.6rem", background: "#eef2f7" } }, [
          h("div", { style: { width: (100 * v).toFixed(2) + "%", height: "100%", background: BAR_COLOURS[key] } })
        ]),
        h("div", { id: ID.bars + "-" + key, className: "font-monospace",
                   style: { width: "4.5rem", textAlign: "right", fontSize: "14px" }, text: v.toFixed(3) })
      ]);
    });
    var ticks = h("div", { style: { display: "flex", marginLeft: "5.5rem", marginRight: "4.5rem", fontSize: "12px",
                                     color: "#666", justifyContent: "space-between" } },
                  ["0", "0.25", "0.5", "0.75", "1"].map(function (t) { return h("span", { text: t }); }));
    return h("figure", { className: "mb-0" }, [h("figcaption", { style: CAPTION, text: title })].concat(rows, [
      ticks, h("div", { className: "gb-help small text-muted mt-1 text-center",
                        text: "Score from 0 to 1 (higher is better)" })]));
  }

  function tableNode(grid, per) {
    var right = "text-end font-monospace";
    var head = h("thead", {}, [h("tr", {}, [
      h("th", { text: "Metric" }), h("th", { className: "text-end", text: "Train" }),
      h("th", { className: "text-end", text: "Test" }),
      h("th", { className: "text-end", title: "Train minus test", text: "Gap" })])]);
    var rows = grid.order.map(function (key) {
      var info = grid.info[key] || { label: key, meaning: "" };
      var a = per.train ? per.train[key] : null, b = per.test ? per.test[key] : null;
      var gap = isNum(a) && isNum(b) ? a - b : null;
      var flag = gap !== null && key !== "predicted_positive_rate" && gap > GAP_FLAG;
      return h("tr", {}, [
        h("td", { title: info.meaning, text: info.label }),
        h("td", { id: ID.table + "-train-" + key, className: right, text: f4(a) }),
        h("td", { id: ID.table + "-test-" + key, className: right, text: f4(b) }),
        h("td", { className: right + (flag ? " table-warning fw-semibold" : ""),
                  title: flag ? "Train is clearly better than test at this threshold." : "",
                  text: gap === null ? "n/a" : (gap > 0 ? "+" : "") + gap.toFixed(4) })
      ]);
    });
    var labels = { tp: "True positives", fp: "False positives", tn: "True negatives", fn: "False negatives" };
    COUNTS.forEach(function (key) {
      rows.push(h("tr", { className: "text-muted" }, [
        h("td", { text: labels[key] }),
        h("td", { id: ID.table + "-train-" + key, className: right, text: per.train ? int(per.train[key]) : "n/a" }),
        h("td", { id: ID.table + "-test-" + key, className: right, text: per.test ? int(per.test[key]) : "n/a" }),
        h("td", {})
      ]));
    });
    return h("table", { className: "table table-sm table-hover mb-0", id: ID.table + "-grid" },
             [head, h("tbody", {}, rows)]);
  }

  function note(text, path) {
    return h("span", path ? { "data-path": path, text: text } : { text: text });
  }

  /* -- figures drawn by plotly: markers patched after the numbers are painted ------- */

  /* Plotly redraws take longer than a frame: while the slider moves they wait; once it has rested for
   * QUIET_MS the newest patch of each figure is applied (each patch assigns absolute values). */
  var QUIET_MS = 120;
  var pendingFigures = {};
  var flushTimer = null;
  function flushFigures() {
    flushTimer = null;
    var todo = pendingFigures;
    pendingFigures = {};
    Object.keys(todo).forEach(function (id) {
      if (typeof dc.set_props === "function") { dc.set_props(id, { figure: todo[id] }); }
    });
  }
  function deferFigure(id, patch) {
    if (patch === null || typeof dc.Patch !== "function") { return; }
    pendingFigures[id] = patch;
    if (flushTimer !== null) { clearTimeout(flushTimer); }
    flushTimer = setTimeout(flushFigures, QUIET_MS);
  }

  function markerPatch(indices, per, t) {
    var p = new dc.Patch(), any = false;
    SPLITS.forEach(function (s) {
      var idx = indices ? indices.idx[s] : undefined;
      if (idx === undefined || idx === null || !per[s]) { return; }
      var m = per[s];
      var x = indices.kind === "roc" ? m.fpr : m.recall;
      var y = indices.kind === "roc" ? m.recall : (m.tp + m.fp === 0 ? null : m.precision);  // nothing flagged
      var label = "t = " + sig3(t);
      p.assign(["data", idx, "x"], [x]).assign(["data", idx, "y"], [y])
        .assign(["data", idx, "text"], [label]).assign(["data", idx, "name"], NAMES[s] + " at " + label);
      any = true;
    });
    return any ? p.build() : null;
  }

  function costPatch(current, cost) {
    if (!current || !isNum(current.t) || !cost || cost.shape === null || cost.shape === undefined) { return null; }
    var t = current.t;
    var p = new dc.Patch().assign(["layout", "shapes", cost.shape, "x0"], t)
      .assign(["layout", "shapes", cost.shape, "x1"], t);
    if (cost.annotation !== null && cost.annotation !== undefined) {
      p.assign(["layout", "annotations", cost.annotation, "x"], t)
        .assign(["layout", "annotations", cost.annotation, "text"], "threshold " + tText(t, current.grid));
    }
    return p.build();
  }

  /* -- drawing a threshold --------------------------------------------------------------- */

  function draw(current, grid, exact, split) {
    if (!grid || !grid.splits) {
      [ID.heatmap, ID.bars, ID.table, ID.path].forEach(function (id) { paint(id, null); });
      return;
    }
    split = split === "train" ? "train" : "test";
    var t = current.t;
    var shown = tText(t, current.grid);
    var r = resolve(current, grid, exact);
    if (r.error) { paint(ID.path, note("Could not get the exact numbers: " + r.error, "error")); return; }
    if (r.pending) {
      paint(ID.path, note("t = " + shown + " is between the 0.01 steps: asking the server for the exact " +
                          "numbers\u2026", "pending"));
      return;
    }
    var m = r.per[split];
    var where = " at threshold " + shown + " (" + split + " data)";
    if (m) {
      paint(ID.heatmap, matrixNode(m, grid.labels, "Confusion matrix" + where));
      paint(ID.bars, barsNode(m, "Precision, recall and F1" + where));
    }
    paint(ID.table, tableNode(grid, r.per));
    paint(ID.path, note(r.path === "grid" ?
      "Threshold " + shown + ": computed in your browser from the exact counts at every 0.01 step " +
      "(no server request)." :
      "Threshold " + shown + " is between the 0.01 steps: computed on the server from the exact sweep.", r.path));
    var markers = grid.markers || {};
    deferFigure(ID.roc, markerPatch({ kind: "roc", idx: markers.roc }, r.per, t));
    deferFigure(ID.pr, markerPatch({ kind: "pr", idx: markers.pr }, r.per, t));
  }

  /* Say when the fairness numbers were computed at another threshold than the current one. */
  function drawFairnessNote(current, fair) {
    if (!fair || !isNum(fair.t) || !current || !isNum(current.t)) { paint(ID.fairNote, null); return; }
    if (Math.abs(fair.t - current.t) < 1e-12) {
      paint(ID.fairNote, h("span", { className: "text-muted", text: "Rates at the current threshold, " +
                                      tText(fair.t, current.grid) + " (" + fair.split + " data)." }));
      return;
    }
    paint(ID.fairNote, h("span", { className: "text-warning-emphasis" }, [
      h("i", { className: "bi bi-exclamation-circle me-1" }),
      "These rates are at threshold " + String(Number(fair.t.toPrecision(6))) + "; the threshold is now " +
      tText(current.t, current.grid) + ". Press \u201cUpdate at the current threshold\u201d to refresh them."
    ]));
  }

  dc.glassbox_threshold = {
    /* Exposed for the tests that compare these numbers with the server's. */
    _metrics: metricsFromCounts,
    _next: nextThreshold,

    /* The one callback a slider move runs. Returns [slider, box, exact request]; draws the rest itself.
     * The server's exact answer is drawn by exactAnswer (an input here would close a loop through the server). */
    move: function (slider, box, jump, grid, split, cost, fair, exact) {
      var trig = triggered();
      var keep = [nu(), nu(), nu()];
      var next = nextThreshold(trig, slider, box, jump);
      if (next === null) { return keep; }
      if (trig === ID.cost) { deferFigure(ID.costGraph, costPatch(next, cost)); return keep; }
      if (trig === ID.fair) { drawFairnessNote(next, fair); return keep; }
      var moved = trig === ID.box || !(isNum(box) && box === next.t);
      draw(next, grid, exact, split);
      if (moved || trig === ID.grid || trig === ID.jump) {
        deferFigure(ID.costGraph, costPatch(next, cost));
        drawFairnessNote(next, fair);
      }
      var ask = !next.grid && grid && (moved || trig === ID.jump || trig === ID.grid || trig === ID.box);
      return [
        trig === ID.slider || (isNum(slider) && slider === next.k / 100) ? nu() : next.k / 100,
        trig === ID.box || !moved ? nu() : next.t,
        ask && !(exact && grid && exact.key === grid.key && exact.t === next.t) ?
          { t: next.t, source: next.source, at: Date.now() } : nu()
      ];
    },

    /* Draw the server's exact answer for a threshold between the 0.01 steps. Returns a draw counter. */
    exactAnswer: function (exact, grid, split, box, drawn) {
      var next = nextThreshold(undefined, null, box, null);
      if (!exact || next === null || next.grid) { return nu(); }
      draw(next, grid, exact, split);
      return (drawn || 0) + 1;
    },

    /* Jump buttons: 0.5, best F1 and lowest cost on the chosen data, the saved threshold. */
    jump: function (nDefault, nF1, nCost, nSaved, grid, cost, saved, split) {
      var trig = triggered();
      split = split === "train" ? "train" : "test";
      var t = null;
      if (trig === ID.jumpDefault) {
        t = 0.5;
      } else if (trig === ID.jumpF1) {
        t = grid && grid.best_f1 && grid.best_f1[split] ? grid.best_f1[split].threshold : null;
      } else if (trig === ID.jumpCost) {
        t = cost && cost.optimum ? cost.optimum.threshold : null;
      } else if (trig === ID.jumpSaved) {
        t = saved;
      }
      if (!isNum(t)) { return nu(); }
      return { t: clamp01(t), source: trig, at: Date.now() };
    }
  };
})();
