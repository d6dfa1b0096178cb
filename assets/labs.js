/* Labs: browser-only helpers for the boundary and regression labs.
 * They format slider values while dragging (the model refits only on release)
 * and show or hide controls; nothing here talks to the server. */
(function () {
  "use strict";
  var ns = (window.dash_clientside = window.dash_clientside || {});

  function current(drag, value) {
    var v = drag === undefined || drag === null ? value : drag;
    return typeof v === "number" && isFinite(v) ? v : null;
  }
  function sig(v) {
    return String(Number(v.toPrecision(3)));
  }

  ns.labs = {
    /* Log slider: the handle holds log10(x); show x. */
    pow10: function (drag, value) {
      var v = current(drag, value);
      return v === null ? "" : sig(Math.pow(10, v));
    },
    plain: function (drag, value) {
      var v = current(drag, value);
      return v === null ? "" : sig(v);
    },
    percent: function (drag, value) {
      var v = current(drag, value);
      return v === null ? "" : Math.round(v * 100) + "%";
    },
    range: function (drag, value) {
      var v = drag && drag.length === 2 ? drag : value;
      if (!v || v.length !== 2) { return ""; }
      return sig(v[0]) + " to " + sig(v[1]);
    },
    /* Boundary lab: which model-specific groups are visible (order as in the layout). */
    boundaryGroups: function (model, kernel) {
      var show = { display: "block" }, hide = { display: "none" };
      var svm = model === "svm";
      return [
        svm ? show : hide,                                    // kernel
        svm || model === "logreg" ? show : hide,              // C
        svm && kernel !== "linear" ? show : hide,             // gamma
        svm && kernel === "poly" ? show : hide,               // degree
        model === "knn" ? show : hide,                        // k
        model === "tree" ? show : hide                        // depth
      ];
    },
    /* Regression lab: alpha means nothing without a penalty. */
    noPenalty: function (penalty) {
      return penalty === "none";
    }
  };
})();
