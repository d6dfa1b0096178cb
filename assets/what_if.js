/* What-if: browser-only helpers. The value next to each slider while it is
 * dragged (the server answers every drag step; the history records releases), the history of changes with step back and reset, the JSON of the
 * current values (copied by dcc.Clipboard) and the link to the full
 * explanation. Nothing here talks to the server: the server validates every
 * value when the restored positions come back to it. */
(function () {
  "use strict";
  var ns = (window.dash_clientside = window.dash_clientside || {});
  var HISTORY_LENGTH = 10;
  // parse_query keeps 500 characters of a query value: a longer ?values= is left out of the link.
  var MAX_LINK_VALUES = 480;

  function noUpdate() { return window.dash_clientside.no_update; }

  function featureSpec(spec, name) {
    if (!spec || !spec.features) { return null; }
    for (var i = 0; i < spec.features.length; i++) {
      if (spec.features[i].name === name) { return spec.features[i]; }
    }
    return null;
  }

  function fmt(v) {
    if (typeof v === "number" && isFinite(v)) {
      // As layouts/what_if.fmt: whole numbers from 10,000 and other numbers from 1,000 with separators.
      if (Number.isInteger(v)) { return Math.abs(v) >= 10000 ? v.toLocaleString("en-US") : String(v); }
      if (Math.abs(v) >= 1000) { return Math.round(v).toLocaleString("en-US"); }
      return String(Number(v.toPrecision(4)));
    }
    return v === null || v === undefined ? "" : String(v);
  }

  function sameValues(a, b) {
    if (!a || !b) { return false; }
    var ka = Object.keys(a), kb = Object.keys(b);
    if (ka.length !== kb.length) { return false; }
    for (var i = 0; i < ka.length; i++) {
      if (a[ka[i]] !== b[ka[i]]) { return false; }
    }
    return true;
  }

  function positionOf(f, value) {
    if (f && f.log && typeof value === "number" && value > 0) { return Math.log10(value); }
    return value;
  }

  function triggered(prop) {
    var t = (window.dash_clientside.callback_context || {}).triggered || [];
    for (var i = 0; i < t.length; i++) {
      if (t[i].prop_id && t[i].prop_id.indexOf(prop) !== -1) { return true; }
    }
    return false;
  }

  function el(type, props) {
    return { namespace: "dash_html_components", type: type, props: props };
  }

  ns.whatif = {
    /* The value shown next to a slider: the dragged position, as a value (10^x on a log slider). */
    shown: function (drag, value, id, spec) {
      var v = drag === undefined || drag === null ? value : drag;
      if (typeof v !== "number" || !isFinite(v)) { return noUpdate(); }
      var f = featureSpec(spec, id && id.feature);
      if (f && f.log) { v = Math.pow(10, v); }
      if (f && f.integer) { v = Math.round(v); }
      return fmt(v);
    },

    /* Append the server's validated values to the history (a new model starts a new history). */
    record: function (values, spec, history) {
      if (triggered("whatif-spec")) {
        // New controls: a new history, starting with the values if they already belong to these controls.
        var names = spec && spec.features ? spec.features.map(function (f) { return f.name; }).sort() : [];
        var fresh = values && values.values && triggered("whatif-values") &&
          JSON.stringify(Object.keys(values.values).sort()) === JSON.stringify(names);
        return fresh ? [{ values: values.values, label: values.label }] : [];
      }
      if (!values || !values.values) { return noUpdate(); }
      history = Array.isArray(history) ? history : [];
      var last = history.length ? history[history.length - 1] : null;
      if (last && sameValues(last.values, values.values)) { return noUpdate(); }
      return history.concat([{ values: values.values, label: values.label }]).slice(-(HISTORY_LENGTH + 1));
    },

    /* Step back one change, or reset to the starting row: set the controls; the server re-validates. */
    step: function (backClicks, resetClicks, history, spec, sliderIds, choiceIds) {
      var target, newHistory = noUpdate();
      history = Array.isArray(history) ? history : [];
      if (triggered("whatif-reset")) {
        if (!spec || !spec.features) { return [noUpdate(), noUpdate(), noUpdate(), noUpdate()]; }
        target = {};
        spec.features.forEach(function (f) { target[f.name] = f.value; });
      } else {
        if (history.length < 2) { return [noUpdate(), noUpdate(), noUpdate(), noUpdate()]; }
        newHistory = history.slice(0, -1);
        target = newHistory[newHistory.length - 1].values;
      }
      var sliders = (sliderIds || []).map(function (id) {
        return positionOf(featureSpec(spec, id.feature), target[id.feature]);
      });
      var choices = (choiceIds || []).map(function (id) { return target[id.feature]; });
      // drag_value too: the live prediction reads a slider's drag position first.
      return [sliders, sliders, choices, newHistory];
    },

    /* The history list (newest first), the step-back button, the JSON (shown and to copy), the explain link. */
    render: function (history, values, spec) {
      history = Array.isArray(history) ? history : [];
      var items = [];
      for (var i = history.length - 1; i >= 1 && items.length < HISTORY_LENGTH; i--) {
        var before = history[i - 1].values, after = history[i].values, parts = [];
        Object.keys(after).forEach(function (k) {
          if (before[k] !== after[k]) { parts.push(k + ": " + fmt(before[k]) + " \u2192 " + fmt(after[k])); }
        });
        items.push(el("Li", { children: [
          el("Span", { children: parts.join("; ") || "no change" }),
          el("Span", { children: " \u2014 " + history[i].label, className: "text-muted" })
        ], className: "mb-1" }));
      }
      if (!items.length) {
        items.push(el("Li", { children: "No change yet.", className: "gb-help", style: { listStyle: "none" } }));
      }
      var current = values && values.values ? values.values : null;
      var json = current ? JSON.stringify(current, null, 2) : "";
      var href = "/explain";
      if (spec && current) {
        var params = new URLSearchParams({ model: spec.model, version: String(spec.version) });
        var anchorDiff = {}, any = false;
        (spec.features || []).forEach(function (f) {
          if (current[f.name] !== f.anchor) { anchorDiff[f.name] = current[f.name]; any = true; }
        });
        if (spec.start && spec.start.row !== null && spec.start.row !== undefined) {
          params.set("split", spec.start.split);
          params.set("row", String(spec.start.row));
        }
        var text = JSON.stringify(anchorDiff);
        if (any && text.length <= MAX_LINK_VALUES) { params.set("values", text); }
        href = "/explain?" + params.toString();
      }
      return [items, history.length < 2, json, json, href];
    }
  };
})();
