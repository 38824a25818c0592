"""The latent-plane explorer's script for report.html: plain JavaScript, no library, no network.

It reads the JSON that `aebench.reports.explorer` embeds (`<script type="application/json">`), draws three
canvases (images decoded across the chosen plane; the training latents' density with each sampler's
points; the hovered point's decoded image) and keeps its state in the address (`#explorer=basis:principal;
axes:0,1;hover:LABEL:ROW` or `...;cell:R,C`), so a link shows the same view. Text from the data (sampler
labels above all) only ever reaches the page through `textContent`. `window.aebExplorer` lets a test find a
point's position on screen and read the state.
"""

SCRIPT = r"""
(function () {
  "use strict";
  var root = document.getElementById("aeb-explorer");
  if (!root) { return; }
  var COLOURS = ["#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
                 "#ff7f0e", "#1f77b4"];
  var BINS = 56, SMOOTH = 2, NEAR = 9;
  var errorLine = root.querySelector(".ex-error");
  function fail(message) {
    root.dataset.state = "error";
    errorLine.textContent = "The explorer could not start: " + message;
    errorLine.hidden = false;
  }
  var data;
  try {
    data = JSON.parse(document.getElementById("aeb-explorer-data").textContent);
  } catch (e) {
    fail("its data is unreadable (" + e.message + ")");
    return;
  }
  var gridCanvas = document.getElementById("ex-grid");
  var plotCanvas = document.getElementById("ex-plot");
  var hoverCanvas = document.getElementById("ex-hover");
  var basisSelect = document.getElementById("ex-basis");
  var xSelect = document.getElementById("ex-x");
  var ySelect = document.getElementById("ex-y");
  var legend = document.getElementById("ex-samplers");
  var gridCaption = document.getElementById("ex-grid-caption");
  var plotCaption = document.getElementById("ex-plot-caption");
  var hoverCaption = document.getElementById("ex-hover-caption");
  // a sprite's tile k sits at the top left of cell (k // columns, k % columns) of `stride` pixels
  var G = data.grid, tileH = data.tile[1], tileW = data.tile[2], strideH = data.stride[0], strideW = data.stride[1];
  var state = {basis: 0, x: 0, y: 1, hover: null, cell: null, hidden: {}};
  var images = [];  // data.images[i] loaded; planes and sprites refer to them by index

  function option(select, value, text) {
    var o = document.createElement("option");
    o.value = String(value);
    o.textContent = text;
    select.appendChild(o);
  }
  function basis() { return data.bases[state.basis]; }
  function fmt(v) { return (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)); }

  // ---------------------------------------------------------------- state <-> address
  function readHash() {
    var m = /explorer=([^&]*)/.exec(window.location.hash || "");
    if (!m) { return; }
    var parts = m[1].split(";");
    var hover = null, cell = null, b = state.basis, x = state.x, y = state.y;
    for (var p = 0; p < parts.length; p++) {
      var at = parts[p].indexOf(":");
      if (at < 0) { continue; }
      var key = parts[p].slice(0, at), value = parts[p].slice(at + 1);
      if (key === "basis") {
        for (var i = 0; i < data.bases.length; i++) { if (data.bases[i].name === value) { b = i; } }
      } else if (key === "axes") {
        var xy = value.split(",").map(Number);
        var axisCount = data.bases[b].labels.length;
        var valid = xy.every(function (a) { return a >= 0 && a < axisCount && Math.floor(a) === a; });
        if (xy.length === 2 && xy[0] !== xy[1] && valid) {
          x = xy[0]; y = xy[1];
        }
      } else if (key === "hover") {
        var cut = value.lastIndexOf(":");
        var label, row = Number(value.slice(cut + 1));
        try { label = decodeURIComponent(value.slice(0, cut)); } catch (e) { label = null; }
        for (var s = 0; s < data.samplers.length; s++) {
          var k = data.samplers[s].rows.indexOf(row);
          if (data.samplers[s].label === label && k >= 0) { hover = {s: s, k: k}; }
        }
      } else if (key === "cell") {
        var rc = value.split(",").map(Number);
        if (rc.length === 2 && rc.every(function (a) { return a >= 0 && a < G && Math.floor(a) === a; })) {
          cell = {r: rc[0], c: rc[1]};
        }
      }
    }
    state.basis = b; state.x = x; state.y = y; state.hover = hover; state.cell = hover ? null : cell;
  }
  function hashText() {
    var text = "explorer=basis:" + basis().name + ";axes:" + state.x + "," + state.y;
    if (state.hover) {
      var s = data.samplers[state.hover.s];
      text += ";hover:" + encodeURIComponent(s.label) + ":" + s.rows[state.hover.k];
    } else if (state.cell) {
      text += ";cell:" + state.cell.r + "," + state.cell.c;
    }
    return text;
  }
  function writeHash() {
    var text = "#" + hashText();
    if (window.location.hash !== text) {
      try { window.history.replaceState(null, "", text); } catch (e) { /* a file: URL that refuses */ }
    }
  }

  // ---------------------------------------------------------------- geometry
  function extent() {
    var bs = basis();
    return {x0: bs.low[state.x], x1: bs.high[state.x], y0: bs.low[state.y], y1: bs.high[state.y]};
  }
  function toCanvas(canvas, vx, vy) {
    var e = extent();
    return {x: (vx - e.x0) / (e.x1 - e.x0) * canvas.width, y: (1 - (vy - e.y0) / (e.y1 - e.y0)) * canvas.height};
  }
  function fromCanvas(canvas, px, py) {
    var e = extent();
    return {x: e.x0 + px / canvas.width * (e.x1 - e.x0), y: e.y0 + (1 - py / canvas.height) * (e.y1 - e.y0)};
  }
  function canvasXY(canvas, event) {
    var r = canvas.getBoundingClientRect();
    return {x: (event.clientX - r.left) * canvas.width / r.width, y: (event.clientY - r.top) * canvas.height / r.height,
            scale: canvas.width / r.width};
  }
  // the sprite tile shown at view cell (r, c): planes are stored once per pair i < j (x = i, y = j)
  function tileOf(r, c) {
    return state.x < state.y ? {r: r, c: c} : {r: G - 1 - c, c: G - 1 - r};
  }
  function plane() {
    var i = Math.min(state.x, state.y), j = Math.max(state.x, state.y);
    return images[basis().planes[i + "," + j]];
  }
  function point(s, k) {
    var p = data.samplers[s].points[basis().name][k];
    return {x: p[state.x], y: p[state.y]};
  }
  function inside(v) {
    var e = extent();
    return v.x >= e.x0 && v.x <= e.x1 && v.y >= e.y0 && v.y <= e.y1;
  }

  // ---------------------------------------------------------------- drawing
  function drawGrid() {
    var g = gridCanvas.getContext("2d"), img = plane();
    var cw = gridCanvas.width / G, ch = gridCanvas.height / G;
    g.imageSmoothingEnabled = true;
    g.fillStyle = "#fff";
    g.fillRect(0, 0, gridCanvas.width, gridCanvas.height);
    for (var r = 0; r < G; r++) {
      for (var c = 0; c < G; c++) {
        var t = tileOf(r, c);
        g.drawImage(img, t.c * strideW, t.r * strideH, tileW, tileH, c * cw, r * ch, cw, ch);
      }
    }
    g.lineWidth = 2;
    if (state.cell) {
      g.strokeStyle = "#ff7f0e";
      g.strokeRect(state.cell.c * cw + 1, state.cell.r * ch + 1, cw - 2, ch - 2);
    }
    if (state.hover) {
      var v = toCanvas(gridCanvas, point(state.hover.s, state.hover.k).x, point(state.hover.s, state.hover.k).y);
      g.strokeStyle = COLOURS[state.hover.s % COLOURS.length];
      g.beginPath(); g.moveTo(v.x - 10, v.y); g.lineTo(v.x + 10, v.y); g.moveTo(v.x, v.y - 10); g.lineTo(v.x, v.y + 10);
      g.stroke();
    }
  }
  function marker(g, v, colour) {
    var p = toCanvas(plotCanvas, v.x, v.y);
    g.beginPath(); g.arc(p.x, p.y, 6, 0, 2 * Math.PI);
    g.fillStyle = colour; g.fill(); g.strokeStyle = "#000"; g.lineWidth = 1; g.stroke();
  }
  // the training latents' density on the plane: a histogram smoothed by a Gaussian of SMOOTH bins
  function density(bs) {
    var counts = new Array(BINS * BINS).fill(0), e = extent();
    bs.train.forEach(function (p) {
      var bx = Math.floor((p[state.x] - e.x0) / (e.x1 - e.x0) * BINS);
      var by = Math.floor((1 - (p[state.y] - e.y0) / (e.y1 - e.y0)) * BINS);
      if (bx >= 0 && bx < BINS && by >= 0 && by < BINS) { counts[by * BINS + bx] += 1; }
    });
    var reach = Math.ceil(3 * SMOOTH), kernel = [];
    for (var d = -reach; d <= reach; d++) { kernel.push(Math.exp(-0.5 * d * d / (SMOOTH * SMOOTH))); }
    function blur(src, horizontal) {
      var out = new Array(BINS * BINS).fill(0);
      for (var r = 0; r < BINS; r++) {
        for (var c = 0; c < BINS; c++) {
          var sum = 0;
          for (var t = -reach; t <= reach; t++) {
            var rr = horizontal ? r : r + t, cc = horizontal ? c + t : c;
            if (rr >= 0 && rr < BINS && cc >= 0 && cc < BINS) { sum += src[rr * BINS + cc] * kernel[t + reach]; }
          }
          out[r * BINS + c] = sum;
        }
      }
      return out;
    }
    return blur(blur(counts, true), false);
  }
  function drawPlot() {
    var g = plotCanvas.getContext("2d"), bs = basis(), W = plotCanvas.width, H = plotCanvas.height;
    g.fillStyle = "#fff";
    g.fillRect(0, 0, W, H);
    var e = extent(), dens = density(bs), top = Math.max.apply(null, dens);
    for (var k = 0; k < dens.length; k++) {
      var a = top > 0 ? dens[k] / top : 0;
      if (a > 0.02) {
        g.fillStyle = "rgba(31,119,180," + (0.65 * a).toFixed(3) + ")";
        g.fillRect((k % BINS) * W / BINS, Math.floor(k / BINS) * H / BINS, W / BINS + 0.5, H / BINS + 0.5);
      }
    }
    g.fillStyle = "rgba(31,119,180,0.9)";
    bs.train.forEach(function (p) {
      var q = toCanvas(plotCanvas, p[state.x], p[state.y]);
      g.fillRect(q.x - 1, q.y - 1, 2, 2);
    });
    var drawn = 0, outside = 0;
    data.samplers.forEach(function (s, si) {
      if (state.hidden[si]) { return; }
      s.points[bs.name].forEach(function (_, k) {
        var v = point(si, k);
        if (!inside(v)) { outside++; return; }
        var p = toCanvas(plotCanvas, v.x, v.y);
        g.beginPath(); g.arc(p.x, p.y, 3, 0, 2 * Math.PI);
        g.fillStyle = COLOURS[si % COLOURS.length]; g.globalAlpha = 0.8; g.fill(); g.globalAlpha = 1;
        drawn++;
      });
    });
    var origin = {x: bs.origin[state.x], y: bs.origin[state.y]}, centre = {x: bs.centre[state.x], y: bs.centre[state.y]};
    if (inside(origin)) { marker(g, origin, "#ffdd00"); }
    marker(g, centre, "#ff7f0e");
    if (state.hover) {
      var h = toCanvas(plotCanvas, point(state.hover.s, state.hover.k).x, point(state.hover.s, state.hover.k).y);
      g.beginPath(); g.arc(h.x, h.y, 8, 0, 2 * Math.PI); g.strokeStyle = "#000"; g.lineWidth = 2; g.stroke();
    } else if (state.cell) {
      g.strokeStyle = "#ff7f0e"; g.lineWidth = 2;
      g.strokeRect(state.cell.c * W / G + 1, state.cell.r * H / G + 1, W / G - 2, H / G - 2);
    }
    g.strokeStyle = "#999"; g.lineWidth = 1; g.strokeRect(0.5, 0.5, W - 1, H - 1);
    g.fillStyle = "#333"; g.font = "11px sans-serif";
    g.fillText(fmt(e.x0), 4, H - 4);
    g.fillText(fmt(e.x1), W - 4 - g.measureText(fmt(e.x1)).width, H - 4);
    g.fillText(fmt(e.y1), 4, 12);
    root.dataset.points = String(drawn);
    root.dataset.outside = String(outside);
    return {drawn: drawn, outside: outside};
  }
  function drawHover() {
    var g = hoverCanvas.getContext("2d");
    g.fillStyle = "#fff";
    g.fillRect(0, 0, hoverCanvas.width, hoverCanvas.height);
    g.imageSmoothingEnabled = true;
    var bs = basis();
    if (state.hover) {
      var s = data.samplers[state.hover.s], k = state.hover.k, v = point(state.hover.s, k);
      var img = images[s.sprite], cols = s.columns;
      g.drawImage(img, (k % cols) * s.stride[1], Math.floor(k / cols) * s.stride[0], s.tile[2], s.tile[1],
                  0, 0, hoverCanvas.width, hoverCanvas.height);
      hoverCaption.textContent = s.label + ": sample #" + s.rows[k] + " (seed " + s.seed + "), decoded; " +
        bs.labels[state.x] + " " + fmt(v.x) + ", " + bs.labels[state.y] + " " + fmt(v.y);
      root.dataset.hover = s.label + ":" + s.rows[k];
    } else if (state.cell) {
      var t = tileOf(state.cell.r, state.cell.c);
      g.drawImage(plane(), t.c * strideW, t.r * strideH, tileW, tileH, 0, 0, hoverCanvas.width, hoverCanvas.height);
      var at = fromCanvas(gridCanvas, (state.cell.c + 0.5) * gridCanvas.width / G, (state.cell.r + 0.5) * gridCanvas.height / G);
      hoverCaption.textContent = "Decoded at " + bs.labels[state.x] + " " + fmt(at.x) + ", " + bs.labels[state.y] +
        " " + fmt(at.y) + " (every other coordinate at the centre of the training latents)";
      root.dataset.hover = "cell:" + state.cell.r + "," + state.cell.c;
    } else {
      hoverCaption.textContent = "Hover a point (or the grid) to see its decoded image.";
      root.dataset.hover = "";
    }
  }
  function render() {
    var bs = basis();
    basisSelect.value = String(state.basis);
    fillAxes();
    var counts = drawPlot();
    drawGrid();
    drawHover();
    var e = extent();
    gridCaption.textContent = "Decoded across the plane: x " + bs.labels[state.x] + " from " + fmt(e.x0) + " to " +
      fmt(e.x1) + ", y " + bs.labels[state.y] + " from " + fmt(e.y0) + " to " + fmt(e.y1) + " (the centre ± " +
      data.reach + " standard deviations); every other coordinate at the centre.";
    plotCaption.textContent = "Training latents (blue dots, " + data.train_shown + " of " + data.train_n +
      ", over their smoothed density), origin (yellow, when in view), centre (orange) and " + counts.drawn +
      " sampler points" +
      (counts.outside ? " (" + counts.outside + " outside this view)" : "") + ".";
    root.dataset.basis = bs.name;
    root.dataset.axes = state.x + "," + state.y;
    root.dataset.state = "ready";
    writeHash();
  }
  function fillAxes() {
    var labels = basis().labels;
    [xSelect, ySelect].forEach(function (select) {
      if (select.options.length !== labels.length || select.dataset.basis !== basis().name) {
        while (select.firstChild) { select.removeChild(select.firstChild); }
        labels.forEach(function (label, i) { option(select, i, label); });
        select.dataset.basis = basis().name;
      }
    });
    xSelect.value = String(state.x);
    ySelect.value = String(state.y);
  }

  // ---------------------------------------------------------------- events
  function nearestPoint(xy) {
    var best = null, bestD = NEAR * xy.scale;
    data.samplers.forEach(function (s, si) {
      if (state.hidden[si]) { return; }
      s.points[basis().name].forEach(function (_, k) {
        var v = point(si, k);
        if (!inside(v)) { return; }
        var p = toCanvas(plotCanvas, v.x, v.y), d = Math.hypot(p.x - xy.x, p.y - xy.y);
        if (d <= bestD) { best = {s: si, k: k}; bestD = d; }
      });
    });
    return best;
  }
  function cellAt(canvas, xy) {
    var c = Math.floor(xy.x / canvas.width * G), r = Math.floor(xy.y / canvas.height * G);
    return (r >= 0 && r < G && c >= 0 && c < G) ? {r: r, c: c} : null;
  }
  plotCanvas.addEventListener("mousemove", function (event) {
    var xy = canvasXY(plotCanvas, event), hit = nearestPoint(xy);
    state.hover = hit;
    state.cell = hit ? null : cellAt(plotCanvas, xy);
    render();
  });
  gridCanvas.addEventListener("mousemove", function (event) {
    state.hover = null;
    state.cell = cellAt(gridCanvas, canvasXY(gridCanvas, event));
    render();
  });
  basisSelect.addEventListener("change", function () {
    state.basis = Number(basisSelect.value);
    state.hover = null; state.cell = null;
    render();
  });
  function axisChanged(changed, other) {
    var value = Number(changed.value);
    if (changed === xSelect) {
      if (value === state.y) { state.y = state.x; }
      state.x = value;
    } else {
      if (value === state.x) { state.x = state.y; }
      state.y = value;
    }
    state.cell = null;
    render();
  }
  xSelect.addEventListener("change", function () { axisChanged(xSelect, ySelect); });
  ySelect.addEventListener("change", function () { axisChanged(ySelect, xSelect); });
  window.addEventListener("hashchange", function () { readHash(); render(); });

  data.bases.forEach(function (b, i) { option(basisSelect, i, b.title); });
  data.samplers.forEach(function (s, si) {
    var item = document.createElement("label");
    var box = document.createElement("input");
    box.type = "checkbox"; box.checked = true;
    box.addEventListener("change", function () {
      state.hidden[si] = !box.checked;
      if (state.hover && state.hover.s === si) { state.hover = null; }
      render();
    });
    var swatch = document.createElement("span");
    swatch.className = "ex-swatch";
    swatch.style.background = COLOURS[si % COLOURS.length];
    item.appendChild(box);
    item.appendChild(swatch);
    item.appendChild(document.createTextNode(s.label + " (" + s.rows.length + " of " + s.n + " points)"));
    legend.appendChild(item);
  });

  // for tests and links: where a point is on screen, and the state
  window.aebExplorer = {
    state: function () { return hashText(); },
    pointClient: function (label, row) {
      for (var s = 0; s < data.samplers.length; s++) {
        var k = data.samplers[s].rows.indexOf(row);
        if (data.samplers[s].label === label && k >= 0) {
          var v = point(s, k);
          if (!inside(v)) { return null; }
          var p = toCanvas(plotCanvas, v.x, v.y), r = plotCanvas.getBoundingClientRect();
          return {x: r.left + p.x * r.width / plotCanvas.width, y: r.top + p.y * r.height / plotCanvas.height};
        }
      }
      return null;
    }
  };

  Promise.all(data.images.map(function (src, i) {
    return new Promise(function (resolve, reject) {
      var img = new Image();
      img.onload = function () { resolve(); };
      img.onerror = function () { reject(new Error("embedded image " + i + " did not load")); };
      images[i] = img;
      img.src = src;
    });
  })).then(function () {
    readHash();
    render();
  }).catch(function (e) { fail(e.message); });
})();
"""
