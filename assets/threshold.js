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
 * Figures are built on the server; here only the parts that change are
 * patched (dash_clientside.Patch): marker positions, cell values, titles.
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
    table: "threshold-table"
  };

  function nu() { return dc.no_update; }
  function newPatch() { return new dc.Patch(); }
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

  function el(type, props, children) {
    var p = props || {};
    if (children !== undefined) { p.children = children; }
    return { type: type, namespace: "dash_html_components", props: p };
  }

  /* Per split metrics at the current threshold: from the grid, or the server's exact answer. */
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

  function heatmapPatch(m, labels, title) {
    var counts = [[m.tn, m.fp], [m.fn, m.tp]];
    var z = [], text = [], zmax = 0;
    for (var i = 0; i < 2; i++) {
      var row = counts[i][0] + counts[i][1];
      z.push([]); text.push([]);
      for (var j = 0; j < 2; j++) {
        var share = row !== 0 ? counts[i][j] / row : 0;
        z[i].push(share);
        text[i].push(int(counts[i][j]) + "<br>" + pct(share));
        zmax = Math.max(zmax, share);
      }
    }
    var annotations = [];
    for (i = 0; i < 2; i++) {
      for (j = 0; j < 2; j++) {
        var dark = zmax > 0 && z[i][j] / zmax > 0.5;
        annotations.push({ x: labels[j], y: labels[i], text: text[i][j], showarrow: false,
                           font: { color: dark ? "#ffffff" : "#1a1a1a", size: 13 } });
      }
    }
    return newPatch().assign(["data", 0, "z"], z).assign(["data", 0, "text"], text)
      .assign(["layout", "annotations"], annotations).assign(["layout", "title", "text"], title).build();
  }

  function markerPatch(indices, per, t, xKey, yKey) {
    var p = newPatch(), any = false;
    SPLITS.forEach(function (s) {
      var idx = indices ? indices[s] : undefined;
      if (idx === undefined || idx === null || !per[s]) { return; }
      var m = per[s];
      var y = m[yKey];
      if (yKey === "precision" && m.tp + m.fp === 0) { y = null; }  // nothing flagged: precision undefined
      var x = xKey === "fpr" ? m.fpr : m[xKey];
      var label = "t = " + sig3(t);
      p.assign(["data", idx, "x"], [x]).assign(["data", idx, "y"], [y])
        .assign(["data", idx, "text"], [label]).assign(["data", idx, "name"], NAMES[s] + " at " + label);
      any = true;
    });
    return any ? p.build() : nu();
  }

  function table(grid, per) {
    var head = el("Thead", {}, el("Tr", {}, [
      el("Th", {}, "Metric"), el("Th", { className: "text-end" }, "Train"),
      el("Th", { className: "text-end" }, "Test"),
      el("Th", { className: "text-end", title: "Train minus test" }, "Gap")
    ]));
    var rows = grid.order.map(function (key) {
      var info = grid.info[key] || { label: key, meaning: "" };
      var a = per.train ? per.train[key] : null, b = per.test ? per.test[key] : null;
      var gap = isNum(a) && isNum(b) ? a - b : null;
      var flag = gap !== null && key !== "predicted_positive_rate" && gap > GAP_FLAG;
      return el("Tr", {}, [
        el("Td", { title: info.meaning }, info.label),
        el("Td", { id: ID.table + "-train-" + key, className: "text-end font-monospace" }, f4(a)),
        el("Td", { id: ID.table + "-test-" + key, className: "text-end font-monospace" }, f4(b)),
        el("Td", { className: "text-end font-monospace" + (flag ? " table-warning fw-semibold" : ""),
                   title: flag ? "Train is clearly better than test at this threshold." : "" },
           gap === null ? "n/a" : (gap > 0 ? "+" : "") + gap.toFixed(4))
      ]);
    });
    var labels = { tp: "True positives", fp: "False positives", tn: "True negatives", fn: "False negatives" };
    COUNTS.forEach(function (key) {
      rows.push(el("Tr", { className: "text-muted" }, [
        el("Td", {}, labels[key]),
        el("Td", { id: ID.table + "-train-" + key, className: "text-end font-monospace" },
           per.train ? int(per.train[key]) : "n/a"),
        el("Td", { id: ID.table + "-test-" + key, className: "text-end font-monospace" },
           per.test ? int(per.test[key]) : "n/a"),
        el("Td", {}, "")
      ]));
    });
    return el("Table", { className: "table table-sm table-hover mb-0", id: ID.table + "-grid" },
              [head, el("Tbody", {}, rows)]);
  }

  dc.glassbox_threshold = {
    /* Exposed for the tests that compare these numbers with the server's. */
    _metrics: metricsFromCounts,

    /* Keep slider, box and the current threshold in step. Returns [slider, box, current, exactRequest]. */
    sync: function (slider, box, jump) {
      var trig = triggered();
      var t, source;
      if (trig === ID.jump) {
        if (!jump || !isNum(jump.t)) { return [nu(), nu(), nu(), nu()]; }
        t = jump.t; source = jump.source || "jump";
      } else if (trig === ID.box) {
        if (!isNum(box) || box < 0 || box > 1) { return [nu(), nu(), nu(), nu()]; }
        t = box; source = "box";
      } else {
        t = isNum(slider) ? slider : 0.5; source = "slider";
      }
      t = clamp01(t);
      var k = Math.round(t * 100);
      var onGrid = Math.abs(t * 100 - k) < 1e-9;
      if (onGrid) { t = k / 100; }
      var current = { t: t, grid: onGrid, k: k, source: source };
      return [
        trig === ID.slider ? nu() : k / 100,
        trig === ID.box ? nu() : t,
        current,
        onGrid ? nu() : { t: t, source: source, at: Date.now() }
      ];
    },

    /* Heatmap, bars, table, ROC and PR markers, and which path answered. */
    render: function (current, grid, exact, split) {
      var none = [nu(), nu(), nu(), nu(), nu(), nu()];
      if (!grid || !grid.splits || !current || !isNum(current.t)) { return none; }
      split = split === "train" ? "train" : "test";
      var t = current.t;
      var r = resolve(current, grid, exact);
      var shown = tText(t, current.grid);
      if (r.error) { return [nu(), nu(), nu(), nu(), nu(), "Could not get the exact numbers: " + r.error]; }
      if (r.pending) {
        return [nu(), nu(), nu(), nu(), nu(), "t = " + shown + " is between the 0.01 steps: asking the server " +
                "for the exact numbers\u2026"];
      }
      var m = r.per[split];
      var heat = grid.heatmap_ok && m ?
        heatmapPatch(m, grid.labels, "Confusion matrix at threshold " + shown + " (" + split + " data)") : nu();
      var bars = m ? newPatch()
        .assign(["data", 0, "y"], [m.precision, m.recall, m.f1])
        .assign(["data", 0, "text"], [m.precision.toFixed(3), m.recall.toFixed(3), m.f1.toFixed(3)])
        .assign(["layout", "title", "text"], "Precision, recall and F1 at threshold " + shown + " (" + split + " data)")
        .build() : nu();
      var markers = grid.markers || {};
      var roc = markerPatch(markers.roc, r.per, t, "fpr", "recall");
      var pr = markerPatch(markers.pr, r.per, t, "recall", "precision");
      var path = r.path === "grid" ?
        "Threshold " + shown + ": computed in your browser from the exact counts at every 0.01 step " +
        "(no server request)." :
        "Threshold " + shown + " is between the 0.01 steps: computed on the server from the exact sweep.";
      return [heat, bars, roc, pr, table(grid, r.per), el("Span", { "data-path": r.path }, path)];
    },

    /* Move the current-threshold line of the expected-cost curve. */
    costLine: function (current, cost) {
      if (!current || !isNum(current.t) || !cost || cost.shape === null || cost.shape === undefined) {
        return nu();
      }
      var t = current.t;
      var p = newPatch().assign(["layout", "shapes", cost.shape, "x0"], t)
        .assign(["layout", "shapes", cost.shape, "x1"], t);
      if (cost.annotation !== null && cost.annotation !== undefined) {
        p.assign(["layout", "annotations", cost.annotation, "x"], t)
          .assign(["layout", "annotations", cost.annotation, "text"], "threshold " + tText(t, current.grid));
      }
      return p.build();
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
    },

    /* Say when the fairness numbers were computed at another threshold than the current one. */
    fairnessNote: function (current, fair) {
      if (!fair || !isNum(fair.t) || !current || !isNum(current.t)) { return ""; }
      if (Math.abs(fair.t - current.t) < 1e-12) {
        return el("Span", { className: "text-muted" }, "Rates at the current threshold, " +
                  tText(fair.t, current.grid) + " (" + fair.split + " data).");
      }
      return el("Span", { className: "text-warning-emphasis" }, [
        el("I", { className: "bi bi-exclamation-circle me-1" }),
        "These rates are at threshold " + String(Number(fair.t.toPrecision(6))) + "; the threshold is now " +
        tText(current.t, current.grid) + ". Press \u201cUpdate at the current threshold\u201d to refresh them."
      ]);
    }
  };
})();
