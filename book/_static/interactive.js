// Interactive figures and self-check questions of the mlmprimer book (registered in _config.yml).
// mlmprimer/interactive.py writes each one's HTML, with the chapter's computed numbers as JSON in
// data-mlm-params; this script finds them when the page has loaded and makes them respond. No
// kernel, no network: the formulas are below, and tests/test_interactive.py runs them against the
// library's.
(function (root) {
  "use strict";

  // ------------------------------------------------------------------------------------------
  // The formulas (the chapters' own notation)

  var formulas = {
    // weight of group j's own mean: lambda_j = tau^2 / (tau^2 + sigma^2 / n_j)   (chapter 5)
    lambda: function (n, tau2, sigma2) {
      return tau2 / (tau2 + sigma2 / n);
    },
    // partial-pooling estimate: lambda_j * ybar_j + (1 - lambda_j) * beta_0
    partial: function (lambda, groupMean, grandMean) {
      return lambda * groupMean + (1 - lambda) * grandMean;
    },
    // Kish's design effect: deff = 1 + (m - 1) ICC   (chapter 4)
    designEffect: function (icc, m) {
      return 1 + (m - 1) * icc;
    },
    // effective sample size of J clusters of m: N / deff
    effectiveN: function (j, m, icc) {
      return (j * m) / formulas.designEffect(icc, m);
    },
    // Var(u_0j + u_1j x) = tau_0^2 + 2 rho tau_0 tau_1 x + tau_1^2 x^2   (chapter 6)
    slopeVariance: function (x, tau0, tau1, rho) {
      return tau0 * tau0 + 2 * rho * tau0 * tau1 * x + tau1 * tau1 * x * x;
    },
    // a written number: "0.25", "25 %", "-1,5" (decimal comma), "1e-3"; null when unreadable
    readNumber: function (text) {
      var s = String(text == null ? "" : text).trim().replace(/\u2212/g, "-");
      var percent = /%$/.test(s);
      if (percent) s = s.slice(0, -1).trim();
      if (/^[-+]?\d+,\d+$/.test(s)) s = s.replace(",", ".");
      if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return null;
      var value = parseFloat(s);
      return percent ? value / 100 : value;
    },
    close: function (a, b, relTol, absTol) {
      return Math.abs(a - b) <= Math.max(absTol, relTol * Math.abs(b));
    },
    // the verdict on a number question: {status: right | slip | otherwise | unreadable, message}
    judgeNumber: function (params, text) {
      var value = formulas.readNumber(text);
      if (value === null) {
        return {
          status: "unreadable",
          message: "Write a number, such as 0.25 or 25 %, and check again.",
        };
      }
      if (formulas.close(value, params.answer, params.rel_tol, params.abs_tol)) {
        return { status: "right", message: params.right };
      }
      for (var i = 0; i < params.slips.length; i++) {
        var slip = params.slips[i];
        if (formulas.close(value, slip.value, params.rel_tol, params.abs_tol)) {
          return { status: "slip", message: slip.feedback };
        }
      }
      return { status: "otherwise", message: params.otherwise };
    },
    judgeChoice: function (params, index) {
      if (index === null || index === undefined || !params.choices[index]) {
        return { status: "unreadable", message: "Choose one of the options, then check." };
      }
      var choice = params.choices[index];
      return { status: choice.correct ? "right" : "slip", message: choice.feedback };
    },
  };

  if (typeof module !== "undefined" && module.exports) module.exports = formulas;
  root.mlmprimerInteractive = formulas;
  if (typeof document === "undefined") return;

  // ------------------------------------------------------------------------------------------
  // Page helpers

  var SVG = "http://www.w3.org/2000/svg";
  // Okabe & Ito's colour-blind-safe palette, as mlmprimer.plots.PALETTE
  var BLUE = "#0072B2", ORANGE = "#E69F00", GREEN = "#009E73", GREY = "#666666";

  function fmt(x, digits) {
    return Number(x).toFixed(digits);
  }

  function svgNode(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) {
      node.setAttribute(k, attrs[k]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clearSvg(svg) {
    Array.prototype.slice.call(svg.childNodes).forEach(function (child) {
      if (child.nodeName.toLowerCase() !== "desc") svg.removeChild(child);
    });
  }

  // A range input and a number box that hold one value; `toRange`/`fromRange` map the value to
  // the range's position (identity, or a log scale). `onChange` gets the value.
  function control(widget, name, value, options) {
    options = options || {};
    var range = widget.querySelector('input[type="range"][name="' + name + '"]');
    var box = widget.querySelector('input[type="number"][name="' + name + '-box"]');
    var toRange = options.toRange || function (v) { return v; };
    var fromRange = options.fromRange || function (p) { return p; };
    var digits = options.digits === undefined ? 2 : options.digits;
    // the value used is the value shown: rounded as the box shows it
    var format = options.format || function (v) { return String(Number(v.toFixed(digits))); };
    var state = { value: value };
    function show(v, from) {
      v = parseFloat(format(v));
      state.value = v;
      if (from !== range) range.value = String(toRange(v));
      range.setAttribute("aria-valuetext", format(v));
      if (from !== box) box.value = format(v);
      if (options.onChange) options.onChange(v);
    }
    range.addEventListener("input", function () {
      show(fromRange(parseFloat(range.value)), range);
    });
    box.addEventListener("change", function () {
      var v = parseFloat(box.value);
      var lo = parseFloat(box.min), hi = parseFloat(box.max);
      if (!isFinite(v)) v = state.value;
      v = Math.min(hi, Math.max(lo, v));
      show(v, null);
    });
    show(value, null);
    return {
      get: function () { return state.value; },
      set: function (v) { show(v, null); },
      listen: function (f) { options.onChange = f; },
    };
  }

  // ------------------------------------------------------------------------------------------
  // Chapter 5: shrinkage

  function shrinkage(widget, p) {
    var id = widget.id;
    var result = widget.querySelector("#" + id + "-result");
    var svg = widget.querySelector("#" + id + "-svg");
    var select = widget.querySelector("#" + id + "-group");
    var unit = p.unit ? " " + p.unit : "";
    var lo = Math.log(p.ratio_min), hi = Math.log(p.ratio_max);
    var groupMean = p.groups[0][2];
    var n, ratio;

    function update() {
      if (!n || !ratio) return;
      var nj = n.get(), tau2 = ratio.get() * p.sigma2;
      var lam = formulas.lambda(nj, tau2, p.sigma2);
      var est = formulas.partial(lam, groupMean, p.grand_mean);
      result.textContent =
        "λⱼ = τ² / (τ² + σ²/nⱼ) = " + fmt(tau2, 3) + " / (" + fmt(tau2, 3) + " + " +
        fmt(p.sigma2, 3) + "/" + nj + ") = " + fmt(lam, 2) + ". Estimate = λⱼ ȳⱼ + (1 − λⱼ) β̂₀ = " +
        fmt(lam, 2) + " × " + fmt(groupMean, 2) + " + " + fmt(1 - lam, 2) + " × " +
        fmt(p.grand_mean, 2) + " = " + fmt(est, 2) + unit + ": the " + p.group_word +
        " keeps " + fmt(100 * lam, 0) + "% of its own mean.";
      result.setAttribute("data-lambda", String(lam));
      result.setAttribute("data-estimate", String(est));
      draw(lam, est);
    }

    function draw(lam, est) {
      clearSvg(svg);
      var values = [groupMean, p.grand_mean];
      var a = Math.min.apply(null, values), b = Math.max.apply(null, values);
      var pad = Math.max(0.15 * (b - a), 0.05);
      a -= pad; b += pad;
      function x(v) { return 40 + (520 * (v - a)) / (b - a); }
      svg.appendChild(svgNode("line", { x1: 40, x2: 560, y1: 50, y2: 50, stroke: GREY }));
      svg.appendChild(svgNode("line", {
        x1: x(p.grand_mean), x2: x(p.grand_mean), y1: 28, y2: 72, stroke: GREEN,
        "stroke-width": 3, "stroke-dasharray": "6 3",
      }));
      svg.appendChild(svgNode("text", { x: x(p.grand_mean), y: 86, "text-anchor": "middle",
        fill: "#005a40", "font-size": 13 }, "grand mean " + fmt(p.grand_mean, 2)));
      svg.appendChild(svgNode("circle", { cx: x(groupMean), cy: 50, r: 8, fill: "white",
        stroke: ORANGE, "stroke-width": 3 }));
      svg.appendChild(svgNode("text", { x: x(groupMean), y: 20, "text-anchor": "middle",
        fill: "#8a5a00", "font-size": 13 }, "own mean " + fmt(groupMean, 2)));
      svg.appendChild(svgNode("rect", { x: x(est) - 7, y: 43, width: 14, height: 14,
        fill: BLUE, class: "mlm-marker" }));
      svg.appendChild(svgNode("text", { x: x(est), y: 40, "text-anchor": "middle", fill: BLUE,
        "font-size": 13, "font-weight": "bold" }, "estimate " + fmt(est, 2)));
      svg.setAttribute("aria-label", "Own mean " + fmt(groupMean, 2) + ", grand mean " +
        fmt(p.grand_mean, 2) + ", partial-pooling estimate " + fmt(est, 2) +
        " (weight " + fmt(lam, 2) + ")");
    }

    n = control(widget, "n", p.groups[0][1], { digits: 0, onChange: update,
      fromRange: function (v) { return Math.round(v); } });
    ratio = control(widget, "ratio", p.ratio, {
      onChange: update,
      format: function (v) { return String(Number(v.toPrecision(4))); },
      toRange: function (v) { return (Math.log(v) - lo) / (hi - lo); },
      fromRange: function (q) { return Math.exp(lo + q * (hi - lo)); },
    });
    select.addEventListener("change", function () {
      var g = p.groups[parseInt(select.value, 10)];
      groupMean = g[2];
      n.set(g[1]);
    });
    update();
  }

  // ------------------------------------------------------------------------------------------
  // Chapter 4: design effect

  function designEffect(widget, p) {
    var id = widget.id;
    var result = widget.querySelector("#" + id + "-result");
    var svg = widget.querySelector("#" + id + "-svg");
    var icc, m, j;
    function update() {
      if (!icc || !m || !j) return;
      var deff = formulas.designEffect(icc.get(), m.get());
      var total = j.get() * m.get();
      var neff = formulas.effectiveN(j.get(), m.get(), icc.get());
      result.textContent =
        "deff = 1 + (m − 1) ICC = 1 + (" + String(m.get()) + " − 1) × " + String(icc.get()) +
        " = " + fmt(deff, 2) + ". " + fmt(total, 0) + " " + p.member_word + " in " +
        fmt(j.get(), 0) + " " + p.cluster_word + " are worth about " + fmt(neff, 0) +
        " independent ones (N / deff); a standard error that ignores the clustering is too " +
        "small by a factor of √deff = " + fmt(Math.sqrt(deff), 2) + ".";
      result.setAttribute("data-deff", String(deff));
      result.setAttribute("data-neff", String(neff));
      clearSvg(svg);
      var bars = [["sampled, N", total, GREY], ["effective, N / deff", neff, BLUE]];
      bars.forEach(function (bar, k) {
        var w = total > 0 ? (400 * bar[1]) / total : 0;
        svg.appendChild(svgNode("text", { x: 0, y: 22 + 30 * k, "font-size": 13 }, bar[0]));
        svg.appendChild(svgNode("rect", { x: 140, y: 8 + 30 * k, width: Math.max(w, 1),
          height: 20, fill: bar[2] }));
        svg.appendChild(svgNode("text", { x: 146 + w, y: 22 + 30 * k, "font-size": 13 },
          fmt(bar[1], 0)));
      });
      svg.setAttribute("aria-label", fmt(total, 0) + " sampled, effective sample size " +
        fmt(neff, 0));
    }
    icc = control(widget, "icc", p.icc, { digits: 4, onChange: update });
    m = control(widget, "m", p.cluster_size, { digits: 2, onChange: update });
    j = control(widget, "j", p.n_clusters, { digits: 0, onChange: update,
      fromRange: function (v) { return Math.round(v); } });
    update();
  }

  // ------------------------------------------------------------------------------------------
  // Chapter 6: the between-group variance of a random-slope model at x

  function slopeVariance(widget, p) {
    var id = widget.id;
    var result = widget.querySelector("#" + id + "-result");
    var svg = widget.querySelector("#" + id + "-svg");
    var s2 = p.sigma * p.sigma;
    var unit = p.unit ? " " + p.unit + "²" : "";
    function share(x) {
      var v = formulas.slopeVariance(x, p.tau0, p.tau1, p.rho);
      return v / (v + s2);
    }
    var grid = [], top = 0;
    for (var k = 0; k <= 60; k++) {
      var gx = p.x_min + ((p.x_max - p.x_min) * k) / 60;
      grid.push([gx, share(gx)]);
      top = Math.max(top, grid[k][1]);
    }
    top = Math.max(0.05, Math.ceil(top * 20) / 20);
    function X(x) { return 60 + (520 * (x - p.x_min)) / (p.x_max - p.x_min); }
    function Y(y) { return 170 - (150 * y) / top; }
    function update(x) {
      var v = formulas.slopeVariance(x, p.tau0, p.tau1, p.rho);
      var sh = v / (v + s2);
      result.textContent =
        "At " + p.x_name + " = " + fmt(x, 2) + ": Var(u₀ⱼ + u₁ⱼ x) = τ₀² + 2ρ τ₀ τ₁ x + τ₁² x² = " +
        fmt(v, 2) + unit + "; share between groups v / (v + σ²) = " + fmt(sh, 3) + ".";
      result.setAttribute("data-variance", String(v));
      result.setAttribute("data-share", String(sh));
      clearSvg(svg);
      svg.appendChild(svgNode("line", { x1: 60, x2: 580, y1: 170, y2: 170, stroke: GREY }));
      svg.appendChild(svgNode("line", { x1: 60, x2: 60, y1: 20, y2: 170, stroke: GREY }));
      svg.appendChild(svgNode("text", { x: 56, y: 174, "text-anchor": "end", "font-size": 12 },
        "0"));
      svg.appendChild(svgNode("text", { x: 56, y: 24, "text-anchor": "end", "font-size": 12 },
        fmt(top, 2)));
      var ticks = [p.x_min, p.x_max];
      if (p.x_min < 0 && p.x_max > 0) ticks.push(0);
      ticks.forEach(function (t) {
        svg.appendChild(svgNode("line", { x1: X(t), x2: X(t), y1: 170, y2: 175, stroke: GREY }));
        svg.appendChild(svgNode("text", { x: X(t), y: 186, "text-anchor": "middle",
          "font-size": 12 }, fmt(t, 1)));
      });
      svg.appendChild(svgNode("text", { x: 320, y: 198, "text-anchor": "middle",
        "font-size": 12 }, p.x_name));
      svg.appendChild(svgNode("text", { x: 64, y: 14, "font-size": 12 },
        "share of the variance between groups"));
      var d = grid.map(function (g, i) {
        return (i ? "L" : "M") + X(g[0]).toFixed(1) + " " + Y(g[1]).toFixed(1);
      }).join(" ");
      svg.appendChild(svgNode("path", { d: d, fill: "none", stroke: BLUE, "stroke-width": 2.5 }));
      svg.appendChild(svgNode("circle", { cx: X(x), cy: Y(sh), r: 7, fill: ORANGE,
        stroke: "black", class: "mlm-marker" }));
      svg.setAttribute("aria-label", "Share between groups " + fmt(sh, 3) + " at " +
        p.x_name + " " + fmt(x, 2));
    }
    var start = Math.min(p.x_max, Math.max(p.x_min, 0));
    control(widget, "x", start, { digits: 2, onChange: update });
  }

  // ------------------------------------------------------------------------------------------
  // Self-check questions

  var MARK = { right: "✓ Right. ", slip: "✗ Not yet. ", otherwise: "✗ Not yet. ",
    unreadable: "… " };

  function question(widget, p) {
    var form = widget.querySelector("form");
    var feedback = widget.querySelector(".mlm-feedback");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var verdict;
      if (p.kind === "number") {
        verdict = formulas.judgeNumber(p, form.querySelector('input[name="answer"]').value);
      } else {
        var picked = form.querySelector('input[type="radio"]:checked');
        verdict = formulas.judgeChoice(p, picked ? parseInt(picked.value, 10) : null);
      }
      feedback.textContent = MARK[verdict.status] + verdict.message;
      feedback.setAttribute("data-status", verdict.status);
    });
  }

  var KINDS = {
    shrinkage: shrinkage,
    "design-effect": designEffect,
    "slope-variance": slopeVariance,
    question: question,
  };

  function start() {
    document.querySelectorAll("[data-mlm-widget]").forEach(function (widget) {
      var make = KINDS[widget.getAttribute("data-mlm-widget")];
      if (!make || widget.getAttribute("data-mlm-ready")) return;
      make(widget, JSON.parse(widget.getAttribute("data-mlm-params")));
      widget.setAttribute("data-mlm-ready", "true");
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})(typeof window !== "undefined" ? window : globalThis);
