/* tracegroup report: draws the data embedded in the page (tracegroup/report.py's report_data).
   Hand-written, no library, no request: everything comes from the <script id="tg-data"> element.
   The trace view renders only the rows in sight (virtual rows), so big traces stay fast.
   window.tgReport exposes the view's state for tests and the curious. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("tg-data").textContent);
  var ROW = 20, OVERSCAN = 12;
  var V = D.verdicts, S = D.spans, T = D.traces;
  var OK = V.indexOf("ok");
  var app = document.getElementById("app");

  // ------------------------------------------------------------------ helpers
  function el(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "cls") e.className = attrs[k];
      else if (k === "style") e.style.cssText = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return e;
  }
  function num(n) { return Number(n).toLocaleString("en-US"); }
  function pct(x) { return (100 * x).toFixed(2) + "%"; }
  function ms(us) {
    if (us >= 1e6) return (us / 1e6).toFixed(us >= 1e7 ? 1 : 2) + " s";
    if (us >= 1000) return (us / 1000).toFixed(us >= 1e5 ? 0 : 1) + " ms";
    return us + " µs";
  }
  function plural(n, word) { return num(n) + " " + word + (n === 1 ? "" : "s"); }
  function swatch(color) { return el("span", { cls: "swatch", style: "background:" + color }); }
  function table(headers, rows, numeric) {
    var t = el("table", { cls: "grid" }), tr = el("tr");
    headers.forEach(function (h, i) { tr.appendChild(el("th", numeric && numeric[i] ? { cls: "num" } : null, h)); });
    t.appendChild(el("thead", null, tr));
    var body = el("tbody");
    rows.forEach(function (r) {
      var row = el("tr");
      r.forEach(function (c, i) {
        var td = el("td", numeric && numeric[i] ? { cls: "num" } : null);
        if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? "" : String(c);
        row.appendChild(td);
      });
      body.appendChild(row);
    });
    t.appendChild(body);
    return t;
  }
  function callColor(c) {
    if (c < 0) return "#ffffff";
    var hue = (c * 137.508) % 360;
    return "hsl(" + hue.toFixed(0) + ",35%," + (c % 2 ? 80 : 88) + "%)";
  }

  // ------------------------------------------------------------------ summary
  var traceIndex = {};
  T.id.forEach(function (id, k) { traceIndex[id] = k; });

  function summary() {
    var s = D.summary;
    app.appendChild(el("h1", null, D.title));
    var inp = s.input;
    app.appendChild(el("p", null, num(inp.spans) + " spans, " + num(inp.traces) + " traces, " + num(inp.services) +
      " services, " + num(inp.batches) + " batches from " + inp.files.map(function (f) { return f.path; }).join(", ")));
    app.appendChild(el("p", { cls: "muted" }, "reference " + s.reference.strategy + " (" + num(s.reference.transactions) +
      " transactions), compared " + s.compared.strategy + " (" + num(s.compared.transactions) + " transactions, " +
      num(s.compared.exporter_calls) + " exporter calls); batches " + D.options.batches + ", routes " + D.options.routes +
      ", boundary " + D.options.boundary + (D.options.heal ? ", healed" : "") + ". " +
      (D.redacted ? "Secrets redacted (credentials in URLs, secret query values)." : "Secrets kept (--keep-secrets).")));
    var e = D.embedded;
    if (e.left_out_traces > 0) {
      var lv = Object.keys(e.left_out_verdicts).map(function (v) { return v + " " + num(e.left_out_verdicts[v]); }).join(", ");
      app.appendChild(el("p", { cls: "note", id: "left-out" }, "This page holds the spans of the " + num(e.traces) +
        " worst traces (" + num(e.spans) + " spans, --max-spans " + num(e.max_spans) + "); left out: " +
        num(e.left_out_traces) + " traces, " + num(e.left_out_spans) + " spans" + (lv ? " (" + lv + ")" : "") +
        ". Their counts are in every table; only their trace view is missing."));
    }
    app.appendChild(el("h2", null, "Verdicts"));
    var vt = table(["verdict", "spans", "share"], V.map(function (v) {
      return [el("span", { cls: "verdict v-" + v }, v), num(s.verdicts[v]), pct(inp.spans ? s.verdicts[v] / inp.spans : 0)];
    }), [0, 1, 1]);
    vt.id = "verdicts";
    Array.prototype.forEach.call(vt.tBodies[0].rows, function (tr, i) { tr.setAttribute("data-verdict", V[i]); tr.cells[1].setAttribute("data-count", s.verdicts[V[i]]); });
    app.appendChild(vt);
    app.appendChild(el("p", null, "Mis-grouped " + num(s.misgrouped.spans) + " (" + pct(s.misgrouped.ratio) + "), dropped " +
      num(s.dropped.spans) + " (" + pct(s.dropped.ratio) + "); " + num(s.in_incomplete_transactions) +
      " spans not ok are in incomplete transactions (not blamed). Transactions intact " + num(s.transactions.intact) +
      " of " + num(s.transactions.total) + "."));
    if (s.causes.length) {
      app.appendChild(el("h2", null, "Causes"));
      app.appendChild(el("div", { cls: "scroll" }, table(["verdict", "cause", "service", "spans", "in incomplete"], s.causes.map(function (c) {
        return [el("span", { cls: "verdict v-" + c.verdict }, c.verdict), c.cause, c.service, num(c.spans), num(c.in_incomplete)];
      }), [0, 0, 0, 1, 1])));
    }
    app.appendChild(el("h2", null, "Per service"));
    var cols = ["spans"].concat(V, ["blamed"]);
    var st = table(["service"].concat(cols), s.per_service.map(function (r) {
      var name = el("span", null, swatch(D.colors[D.services.indexOf(r.name)] || "#fff"), r.name);
      return [name].concat(cols.map(function (c) { return r[c] === undefined ? "" : num(r[c]); }));
    }), [0].concat(cols.map(function () { return 1; })));
    st.id = "per-service";
    app.appendChild(st);
    if (s.worst_traces.length) {
      app.appendChild(el("h2", null, "Worst traces"));
      var wt = table(["trace", "head", "spans", "not ok"].concat(V.filter(function (v) { return v !== "ok"; })), s.worst_traces.map(function (w) {
        return [el("code", null, w.trace_id), w.head, num(w.spans), num(w.not_ok)].concat(V.filter(function (v) { return v !== "ok"; }).map(function (v) { return num(w[v]); }));
      }), [0, 0, 1, 1, 1, 1, 1, 1]);
      wt.id = "worst-traces";
      Array.prototype.forEach.call(wt.tBodies[0].rows, function (tr, i) {
        tr.className = "pick";
        tr.title = "show this trace below";
        tr.addEventListener("click", function () { openTrace(s.worst_traces[i].trace_id, true); });
      });
      app.appendChild(wt);
    }
    if (D.whatif) whatif(D.whatif);
  }

  function whatif(w) {
    app.appendChild(el("h2", null, "What if"));
    var cols = ["setting", "value", "strategy", "misgrouped_pct", "dropped_pct", "incomplete_pct", "sentry_events", "exporter_calls"];
    var t = table(cols, w.rows.map(function (r) {
      return cols.map(function (c) { var v = r[c]; return typeof v === "number" && c.slice(-4) === "_pct" ? v.toFixed(2) : v; });
    }), [0, 0, 0, 1, 1, 1, 1, 1]);
    t.id = "whatif";
    app.appendChild(el("div", { cls: "scroll" }, t));
    app.appendChild(el("p", { id: "recommendation" }, el("b", null, "Recommendation: "), w.recommendation));
  }

  // ------------------------------------------------------------------ trace picker
  function picker() {
    app.appendChild(el("h2", null, "Traces"));
    var search = el("input", { id: "trace-search", type: "search", placeholder: "search a trace id (hex prefix) or a head", spellcheck: "false" });
    var status = el("span", { id: "search-status", cls: "muted" });
    var list = el("div", { id: "trace-list" });
    app.appendChild(el("div", null, search, " ", status));
    app.appendChild(list);
    function fill() {
      var q = search.value.trim().toLowerCase().replace(/^0x/, ""), shown = 0, found = 0;
      list.textContent = "";
      for (var k = 0; k < T.id.length; k++) {
        if (q && T.id[k].indexOf(q) < 0 && T.id[k].replace(/^0+/, "").indexOf(q) !== 0 && T.head[k].toLowerCase().indexOf(q) < 0) continue;
        found++;
        if (shown >= 300) continue;
        shown++;
        var bad = T.spans[k] - T.ok[k];
        var row = el("div", { "data-trace": T.id[k], cls: T.offset[k] < 0 ? "absent" : "" },
          el("code", null, T.id[k]), "  " + num(T.spans[k]) + " spans, " + num(bad) + " not ok — " + T.head[k] + (T.offset[k] < 0 ? " (not embedded)" : ""));
        row.addEventListener("click", (function (id) { return function () { openTrace(id, true); }; })(T.id[k]));
        list.appendChild(row);
      }
      status.textContent = q ? num(found) + " of " + num(T.id.length) + " traces match" + (found > shown ? " (first " + shown + " listed)" : "")
        : plural(T.id.length, "trace") + ", worst first" + (T.id.length > shown ? " (first " + shown + " listed)" : "");
    }
    search.addEventListener("input", fill);
    search.addEventListener("keydown", function (ev) {
      if (ev.key !== "Enter") return;
      var first = list.querySelector("div[data-trace]");
      if (first) openTrace(first.getAttribute("data-trace"), true);
    });
    fill();
  }

  // ------------------------------------------------------------------ trace view
  var view = null;  // the open trace: its arrays, filters, expansion state and rows

  function viewShell() {
    var box = el("div", { id: "trace-view" });
    app.appendChild(box);
    return box;
  }

  function openTrace(id, scroll) {
    var t0 = performance.now();
    var k = traceIndex[id];
    var box = document.getElementById("trace-view");
    box.textContent = "";
    if (k === undefined) { box.appendChild(el("p", { cls: "note" }, "trace " + id + " is not in this dump")); return false; }
    if (T.offset[k] < 0) {
      box.appendChild(el("p", { cls: "note", id: "not-embedded" }, "trace " + id + " (" + num(T.spans[k]) +
        " spans) is not embedded: the page holds the worst traces up to --max-spans spans. Make a report of it alone with tracegroup report DUMP --max-spans 0, or see it with tracegroup show DUMP --trace " + id + "."));
      return false;
    }
    buildView(k);
    drawShell(box);
    refresh();
    box.offsetHeight;  // lay out before stopping the clock
    view.renderMs = performance.now() - t0;
    document.getElementById("render-time").textContent = "rendered in " + view.renderMs.toFixed(0) + " ms";
    Array.prototype.forEach.call(document.querySelectorAll("#trace-list div"), function (d) {
      d.classList.toggle("current", d.getAttribute("data-trace") === id);
    });
    if (scroll) box.scrollIntoView();
    return true;
  }

  function buildView(k) {
    var o = T.offset[k], n = T.count[k];
    var kids = new Array(n), roots = [], tEnd = 0;
    for (var i = 0; i < n; i++) {
      var p = S.parent[o + i];
      if (p >= 0) (kids[p] || (kids[p] = [])).push(i); else roots.push(i);
      var e = S.start[o + i] + S.duration[o + i];
      if (e > tEnd) tEnd = e;
    }
    var noTime = {};
    S.no_time.forEach(function (g) { if (g >= o && g < o + n) noTime[g - o] = true; });
    view = {
      k: k, id: T.id[k], o: o, n: n, kids: kids, roots: roots, tEnd: Math.max(tEnd, 1), noTime: noTime,
      v0: 0, v1: Math.max(tEnd, 1), onlyBad: false, context: true, verdicts: {}, services: {}, collapse: D.collapse,
      closed: {}, opened: {}, rows: [], selected: -1, renderMs: 0
    };
  }

  function txLabel(pos, self) {
    if (pos === -1) return "(dropped)";
    if (pos === -2) return "(outside)";
    return (pos === self ? "*" : " ") + S.span_id[view.o + pos].slice(0, 8);
  }

  // Which spans are drawn: the ones matching the filters, their ancestors as context rows.
  function computeRows() {
    var v = view, o = v.o, n = v.n, i;
    var anyV = Object.keys(v.verdicts).length > 0, anyS = Object.keys(v.services).length > 0;
    var match = new Uint8Array(n), keep = new Uint8Array(n);
    for (i = 0; i < n; i++) {
      var vd = S.verdict[o + i];
      var m = (!v.onlyBad || vd !== OK) && (!anyV || v.verdicts[V[vd]]) && (!anyS || v.services[D.services[S.service[o + i]]]);
      match[i] = m ? 1 : 0; keep[i] = match[i];
    }
    for (i = n - 1; i >= 0; i--) if (keep[i]) { var p = S.parent[o + i]; if (p >= 0) keep[p] = 1; }
    var rows = [], stack = [];
    function key(i) {
      var g = o + i;
      return S.name[g] + "|" + S.service[g] + "|" + S.verdict[g] + "|" + S.reason[g] + "|" + S.call[g] + "|" +
        (S.ref[g] === i ? "own" : S.ref[g]) + "|" + (S.cmp[g] === i ? "own" : S.cmp[g]) + "|" + (keep[i] && !match[i] ? 1 : 0);
    }
    // push a list of siblings (in order) onto the stack, alike runs of at least `collapse` as one entry
    function pushSiblings(list, depth, parentKey) {
      var items = [], groups = {};
      for (var a = 0; a < list.length; a++) {
        var c = list[a];
        if (!keep[c]) continue;
        if (v.collapse >= 2 && (v.context || match[c])) {
          var kk = key(c);
          if (!groups[kk]) { groups[kk] = [c]; items.push({ g: kk }); } else groups[kk].push(c);
        } else items.push({ s: c });
      }
      var out = [];
      items.forEach(function (it) {
        if (it.s !== undefined) { out.push({ t: 0, i: it.s, depth: depth }); return; }
        var members = groups[it.g];
        if (members.length < v.collapse) { members.forEach(function (c) { out.push({ t: 0, i: c, depth: depth }); }); return; }
        var runKey = parentKey + "/" + members[0];
        out.push({ t: 1, i: members[0], members: members, depth: depth, run: runKey });
      });
      for (var b = out.length - 1; b >= 0; b--) stack.push(out[b]);
    }
    pushSiblings(v.roots, 0, "r");
    while (stack.length) {
      var r = stack.pop();
      r.context = !!(keep[r.i] && !match[r.i]);
      if (r.context && !v.context) {  // hidden ancestor: its matching descendants keep their depth
        if (v.kids[r.i]) pushSiblings(v.kids[r.i], r.depth + 1, String(r.i));
        continue;
      }
      if (r.t === 1) {
        r.open = !!v.opened[r.run];
        rows.push(r);
        if (r.open) for (var b = r.members.length - 1; b >= 0; b--) stack.push({ t: 0, i: r.members[b], depth: r.depth + 1, inRun: r.run });
        continue;
      }
      r.hasKids = !!(v.kids[r.i] && v.kids[r.i].some(function (c) { return keep[c]; }));
      r.open = r.hasKids && !v.closed[r.i];
      rows.push(r);
      if (r.open) pushSiblings(v.kids[r.i], r.depth + 1, String(r.i));
    }
    v.rows = rows;
  }

  function drawShell(box) {
    var v = view, k = v.k;
    var nb = [];
    V.forEach(function (name) { if (T[name][k] && name !== "ok") nb.push(name + " " + num(T[name][k])); });
    var refTx = {}, cmpTx = {}, calls = {};
    for (var i = 0; i < v.n; i++) {
      var g = v.o + i;
      if (S.ref[g] !== -1) refTx[S.ref[g]] = 1;
      if (S.cmp[g] !== -1) cmpTx[S.cmp[g]] = 1;
      if (S.call[g] >= 0) calls[S.call[g]] = 1;
    }
    box.appendChild(el("h2", null, "Trace ", el("code", { id: "trace-id" }, v.id)));
    box.appendChild(el("p", { id: "trace-facts" }, plural(v.n, "span") + ", " + D.options.reference + ": " +
      plural(Object.keys(refTx).length, "transaction") + ", " + D.options.compare + ": " + plural(Object.keys(cmpTx).length, "transaction") + ", " +
      plural(Object.keys(calls).length, "exporter call") + "; " + (nb.length ? nb.join(", ") : "every span ok") + ". " + T.head[k],
      el("span", { id: "render-time", cls: "muted" })));
    // controls
    var c = el("div", { cls: "controls" });
    var only = el("input", { type: "checkbox", id: "only-bad" });
    only.addEventListener("change", function () { v.onlyBad = only.checked; refresh(); });
    c.appendChild(el("label", null, only, " only not ok"));
    var ctx = el("input", { type: "checkbox", id: "context", checked: "checked" });
    ctx.addEventListener("change", function () { v.context = ctx.checked; refresh(); });
    c.appendChild(el("label", { title: "keep the ancestors of matching spans as faded context rows" }, ctx, " ancestors as context"));
    var vs = el("span", null, "verdict:");
    V.forEach(function (name) {
      var cb = el("input", { type: "checkbox", cls: "f-verdict", value: name });
      cb.addEventListener("change", function () { if (cb.checked) v.verdicts[name] = 1; else delete v.verdicts[name]; refresh(); });
      vs.appendChild(el("label", null, " ", cb, name));
    });
    c.appendChild(vs);
    var here = {};
    for (i = 0; i < v.n; i++) here[S.service[v.o + i]] = 1;
    var ss = el("span", null, "service:");
    Object.keys(here).map(Number).sort(function (a, b) { return D.services[a] < D.services[b] ? -1 : 1; }).forEach(function (s) {
      var name = D.services[s];
      var cb = el("input", { type: "checkbox", cls: "f-service", value: name });
      cb.addEventListener("change", function () { if (cb.checked) v.services[name] = 1; else delete v.services[name]; refresh(); });
      ss.appendChild(el("label", null, " ", cb, swatch(D.colors[s]), name));
    });
    c.appendChild(ss);
    var col = el("input", { type: "number", id: "collapse", min: "0", value: String(v.collapse), style: "width:4em" });
    col.addEventListener("change", function () { v.collapse = parseInt(col.value, 10) || 0; v.opened = {}; refresh(); });
    c.appendChild(el("label", { title: "alike siblings (same name, service, verdict, reason, exporter call, transactions) collapse into one row when at least this many; 0 = never" }, "collapse runs of ", col));
    function btn(id, text, fn) { var b = el("button", { id: id, type: "button" }, text); b.addEventListener("click", fn); c.appendChild(b); }
    btn("expand-all", "expand all", function () { v.closed = {}; v.collapse = 0; col.value = "0"; refresh(); });
    btn("zoom-in", "zoom +", function () { zoom(0.5, (v.v0 + v.v1) / 2); });
    btn("zoom-out", "zoom −", function () { zoom(2, (v.v0 + v.v1) / 2); });
    btn("zoom-reset", "whole trace", function () { v.v0 = 0; v.v1 = v.tEnd; draw(); });
    box.appendChild(c);
    var lg = el("div", { cls: "legend muted" }, "▸ opens a transaction · *id: the span is its transaction's root · click a row: its transactions outlined in both lanes · hatched: dropped · dotted: a collapsed run ×N · faded: context (an ancestor of a match) · call: the exporter call it came in · ctrl/alt + wheel zooms, drag the time axis to pan, click or drag the minimap");
    box.appendChild(lg);
    var mm = el("canvas", { id: "minimap", height: "64" });
    box.appendChild(mm);
    var head = el("div", { cls: "head" }, el("div", null, "span"), el("div", null, "service"), el("div", null, "verdict"),
      el("div", { title: "exporter call" }, "call"), el("div", { title: D.options.reference + " transaction" }, D.options.reference + " tx"),
      el("div", { title: D.options.compare + " transaction" }, D.options.compare + " tx"),
      el("div", { cls: "axis", id: "axis-ref" }, el("span", { cls: "lbl" }, D.options.reference)),
      el("div", { cls: "axis", id: "axis-cmp" }, el("span", { cls: "lbl" }, D.options.compare)));
    box.appendChild(head);
    var rowsBox = el("div", { id: "rows" }, el("div", { id: "rows-spacer" }));
    box.appendChild(rowsBox);
    box.appendChild(el("div", { id: "detail", cls: "muted" }, "click a row for its details"));
    rowsBox.addEventListener("scroll", function () { drawRows(); drawMinimapBox(); });
    rowsBox.addEventListener("wheel", function (ev) {
      if (!(ev.ctrlKey || ev.altKey)) return;
      var tl = ev.target.closest ? ev.target.closest(".tl") : null;
      if (!tl) return;
      ev.preventDefault();
      var r = tl.getBoundingClientRect();
      var at = v.v0 + (v.v1 - v.v0) * Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width));
      zoom(ev.deltaY < 0 ? 0.7 : 1 / 0.7, at);
    }, { passive: false });
    rowsBox.addEventListener("click", function (ev) {
      var row = ev.target.closest ? ev.target.closest(".row") : null;
      if (!row) return;
      var idx = parseInt(row.getAttribute("data-row"), 10), r = v.rows[idx];
      if (ev.target.classList.contains("tog")) {
        if (r.t === 1) { if (v.opened[r.run]) delete v.opened[r.run]; else v.opened[r.run] = 1; refresh(); }
        else if (r.hasKids) { if (v.closed[r.i]) delete v.closed[r.i]; else v.closed[r.i] = 1; refresh(); }
        return;
      }
      v.selected = r.i;
      detail(r);
      drawRows();
    });
    [document.getElementById("axis-ref"), document.getElementById("axis-cmp")].forEach(function (ax) {
      ax.addEventListener("mousedown", function (ev) {
        var x0 = ev.clientX, a = v.v0, b = v.v1, w = ax.getBoundingClientRect().width;
        function move(e) { var dt = (e.clientX - x0) / w * (b - a); pan(a - dt, b - dt); }
        function up() { window.removeEventListener("mousemove", move); window.removeEventListener("mouseup", up); }
        window.addEventListener("mousemove", move); window.addEventListener("mouseup", up);
        ev.preventDefault();
      });
    });
    mm.addEventListener("mousedown", function (ev) {
      var r = mm.getBoundingClientRect(), x0 = ev.clientX;
      function at(x) { return Math.min(1, Math.max(0, (x - r.left) / r.width)) * v.tEnd; }
      function move(e) { var a = at(x0), b = at(e.clientX); if (Math.abs(e.clientX - x0) > 3) { v.v0 = Math.min(a, b); v.v1 = Math.max(a, b, Math.min(a, b) + 1); draw(); } }
      function up(e) {
        window.removeEventListener("mousemove", move); window.removeEventListener("mouseup", up);
        if (Math.abs(e.clientX - x0) <= 3) { var c = at(e.clientX), h = (v.v1 - v.v0) / 2; pan(c - h, c + h); }
      }
      window.addEventListener("mousemove", move); window.addEventListener("mouseup", up);
    });
  }

  function zoom(f, at) {
    var v = view, a = at - (at - v.v0) * f, b = at + (v.v1 - at) * f;
    if (b - a < 1) { b = a + 1; }
    pan(a, b);
  }
  function pan(a, b) {
    var v = view, w = Math.min(b - a, v.tEnd);
    if (a < 0) { a = 0; b = w; }
    if (b > v.tEnd) { b = v.tEnd; a = b - w; }
    v.v0 = Math.max(0, a); v.v1 = b;
    draw();
  }

  function refresh() {
    var t0 = performance.now();
    computeRows();
    document.getElementById("rows-spacer").style.height = (view.rows.length * ROW) + "px";
    draw();
    document.getElementById("rows").offsetHeight;
    view.refreshMs = performance.now() - t0;
  }
  function draw() { drawAxis(); drawRows(); drawMinimap(); }

  function drawAxis() {
    var v = view, span = v.v1 - v.v0;
    var step = Math.pow(10, Math.floor(Math.log10(Math.max(span, 1) / 4)));
    if (span / step > 5) step *= 2;
    if (span / step > 5) step *= 2.5;
    if (span / step > 5) step *= 2;
    ["axis-ref", "axis-cmp"].forEach(function (id) {
      var ax = document.getElementById(id);
      Array.prototype.slice.call(ax.querySelectorAll(".tick")).forEach(function (t) { ax.removeChild(t); });
      for (var t = Math.ceil(v.v0 / step) * step; t <= v.v1; t += step) {
        ax.appendChild(el("span", { cls: "tick", style: "left:" + ((t - v.v0) / span * 100).toFixed(3) + "%" }, ms(Math.round(t))));
      }
    });
  }

  function bar(g, r, panel) {
    var v = view, span = v.v1 - v.v0, s = S.start[g], e = s + S.duration[g];
    if (r.t === 1 && !r.open) {
      r.members.forEach(function (m) { var mg = v.o + m; s = Math.min(s, S.start[mg]); e = Math.max(e, S.start[mg] + S.duration[mg]); });
    }
    var left = (s - v.v0) / span * 100, width = (e - s) / span * 100;
    if (left + width < 0 || left > 100) return null;
    var i = g - v.o, tx = panel === "ref" ? S.ref[g] : S.cmp[g];
    var sel = v.selected >= 0 ? (panel === "ref" ? S.ref[v.o + v.selected] : S.cmp[v.o + v.selected]) : -3;
    var cls = "bar" + (sel >= 0 && tx === sel ? " same" : "") + (r.t === 1 && !r.open ? " run" : "") + (tx === i ? " opens" : "") + (panel === "cmp" && tx === -1 ? " dropped" : "");
    return el("div", { cls: cls, style: "left:" + left.toFixed(3) + "%;width:" + Math.max(width, 0.05).toFixed(3) + "%;background:" + D.colors[S.service[g]] });
  }

  function drawRows() {
    var v = view, box = document.getElementById("rows"), spacer = document.getElementById("rows-spacer");
    var first = Math.max(0, Math.floor(box.scrollTop / ROW) - OVERSCAN);
    var last = Math.min(v.rows.length, Math.ceil((box.scrollTop + box.clientHeight) / ROW) + OVERSCAN);
    var frag = document.createDocumentFragment();
    for (var x = first; x < last; x++) {
      var r = v.rows[x], g = v.o + r.i, vd = V[S.verdict[g]];
      var cnt = r.t === 1 ? r.members.length : 1;
      var tog = r.t === 1 ? (r.open ? "▾" : "▸") : r.hasKids ? (r.open ? "▾" : "▸") : "";
      var attrs = { cls: "row" + (r.t === 1 ? " run" : "") + (r.context ? " context" : "") + (r.i === v.selected ? " sel" : ""),
        style: "top:" + (x * ROW) + "px", "data-row": x, "data-span": S.span_id[g], "data-verdict": vd, "data-count": cnt };
      if (r.t === 1) attrs["data-run"] = r.run;
      if (r.inRun) attrs["data-in-run"] = r.inRun;
      var name = el("div", { cls: "name", style: "padding-left:" + Math.min(r.depth, 40) * 12 + "px", title: D.names[S.name[g]] },
        el("span", { cls: "tog" + (tog ? "" : " none") }, tog), el("span", { cls: "label" }, D.names[S.name[g]] || '""'),
        r.t === 1 ? el("span", { cls: "count" }, "×" + cnt) : null);
      var row = el("div", attrs, name,
        el("div", null, swatch(D.colors[S.service[g]]), D.services[S.service[g]]),
        el("div", { cls: "verdict v-" + vd }, vd),
        el("div", { cls: "call", style: "background:" + callColor(S.call[g]) }, S.call[g] < 0 ? "-" : String(S.call[g])),
        el("div", { cls: "tx" }, r.t === 1 && S.ref[g] === r.i ? "*each (" + cnt + ")" : txLabel(S.ref[g], r.i)),
        el("div", { cls: "tx" }, r.t === 1 && S.cmp[g] === r.i ? "*each (" + cnt + ")" : txLabel(S.cmp[g], r.i)),
        el("div", { cls: "tl" }, bar(g, r, "ref")), el("div", { cls: "tl" }, bar(g, r, "cmp")));
      frag.appendChild(row);
    }
    spacer.textContent = "";
    spacer.appendChild(frag);
  }

  function drawMinimap() {
    var v = view, c = document.getElementById("minimap"), w = c.clientWidth || 800, h = 64;
    c.width = w; c.height = h;
    var ctx = c.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    for (var i = 0; i < v.n; i++) {
      var g = v.o + i;
      ctx.fillStyle = D.colors[S.service[g]];
      var x = S.start[g] / v.tEnd * w, y = i / v.n * (h - 2);
      ctx.fillRect(x, y, Math.max(1, S.duration[g] / v.tEnd * w), Math.max(1, (h - 2) / v.n));
      if (S.verdict[g] !== OK) { ctx.fillStyle = D.verdict_colors[S.verdict[g]]; ctx.fillRect(w - 4, y, 4, Math.max(1, (h - 2) / v.n)); }
    }
    v.minimap = ctx.getImageData(0, 0, w, h);
    drawMinimapBox();
  }
  function drawMinimapBox() {
    var v = view, c = document.getElementById("minimap"), ctx = c.getContext("2d"), w = c.width, h = c.height;
    if (!v.minimap) return;
    ctx.putImageData(v.minimap, 0, 0);
    var box = document.getElementById("rows"), r0 = Math.floor(box.scrollTop / ROW), r1 = Math.min(v.rows.length - 1, Math.floor((box.scrollTop + box.clientHeight) / ROW));
    var y0 = v.rows.length ? v.rows[Math.max(0, r0)].i / v.n * h : 0, y1 = v.rows.length && r1 >= 0 ? (v.rows[r1].i + 1) / v.n * h : h;
    ctx.strokeStyle = "#000"; ctx.lineWidth = 1;
    ctx.strokeRect(v.v0 / v.tEnd * w + 0.5, 0.5, Math.max(2, (v.v1 - v.v0) / v.tEnd * w - 1), h - 1);
    ctx.fillStyle = "rgba(0,0,0,0.08)";
    ctx.fillRect(0, y0, w, Math.max(2, y1 - y0));
  }

  function detail(r) {
    var v = view, g = v.o + r.i, d = document.getElementById("detail");
    d.className = "";
    d.textContent = "";
    var ref = S.ref[g], cmp = S.cmp[g];
    var facts = [
      ["span id", S.span_id[g]], ["name", D.names[S.name[g]]], ["service", D.services[S.service[g]]], ["kind", D.kinds[S.kind[g]]],
      ["start", v.noTime[r.i] ? "(no timestamp)" : ms(S.start[g]) + " after the trace's first span"], ["duration", ms(S.duration[g])],
      ["exporter call", S.call[g] < 0 ? "never delivered" : String(S.call[g])],
      [D.options.reference + " transaction", ref < 0 ? txLabel(ref, r.i) : S.span_id[v.o + ref] + " (" + D.names[S.name[v.o + ref]] + ")"],
      [D.options.compare + " transaction", cmp < 0 ? txLabel(cmp, r.i) : S.span_id[v.o + cmp] + " (" + D.names[S.name[v.o + cmp]] + ")"],
      ["verdict", V[S.verdict[g]]], ["reason", D.reasons[S.reason[g]]]
    ];
    if (r.t === 1) facts.push(["collapsed run", r.members.length + " alike siblings"]);
    d.appendChild(table(["", ""], facts));
    if (D.details && S.detail) spanDetails(d, D.details[S.detail[g]], D.resources[S.resource[g]]);
  }

  var STATUS = ["UNSET", "OK", "ERROR"];
  function value(x) { return typeof x === "string" ? x : JSON.stringify(x); }
  function pairs(obj) { return Object.keys(obj).map(function (k) { return [el("code", null, k), value(obj[k])]; }); }
  function spanDetails(d, x, res) {
    var st = STATUS[x.status[0]] || String(x.status[0]);
    d.appendChild(el("h4", null, "status"));
    d.appendChild(el("div", { id: "detail-status" }, x.status[1] ? st + ": " + x.status[1] : st));
    d.appendChild(el("h4", null, "attributes (" + Object.keys(x.attributes).length + ")"));
    d.appendChild(table(["key", "value"], pairs(x.attributes))).id = "detail-attributes";
    if (x.events.length) {
      d.appendChild(el("h4", null, "events (" + x.events.length + ")"));
      d.appendChild(table(["name", "at", "attributes"], x.events.map(function (e) {
        return [e.name, e.time === null ? "" : ms(e.time) + " after the span's start", pairs(e.attributes).map(function (p) { return p[0].textContent + "=" + p[1]; }).join("; ")];
      }))).id = "detail-events";
    }
    if (x.links.length) {
      d.appendChild(el("h4", null, "links (" + x.links.length + ")"));
      d.appendChild(table(["trace", "span", "attributes"], x.links.map(function (l) {
        return [el("code", null, l.trace_id), el("code", null, l.span_id), value(l.attributes)];
      }))).id = "detail-links";
    }
    d.appendChild(el("h4", null, "resource (" + Object.keys(res).length + ")"));
    d.appendChild(table(["key", "value"], pairs(res))).id = "detail-resource";
  }

  // ------------------------------------------------------------------ start
  document.getElementById("loading").remove();
  if (D.summary) { summary(); picker(); } else app.appendChild(el("h1", null, D.title));
  viewShell();
  var start = T.id.filter(function (id, k) { return T.offset[k] >= 0; })[0];
  if (start) openTrace(start, false);
  window.tgReport = {
    data: D,
    open: function (id) { return openTrace(id, false); },
    view: function () { return view; },
    rows: function () {
      return view ? view.rows.map(function (r) {
        return { span_id: S.span_id[view.o + r.i], verdict: V[S.verdict[view.o + r.i]], context: !!r.context, run: r.t === 1 ? r.run : null, in_run: r.inRun || null,
          count: r.t === 1 ? r.members.length : 1, open: !!r.open, depth: r.depth };
      }) : [];
    },
    scrollToRow: function (x) { var box = document.getElementById("rows"); box.scrollTop = x * ROW; drawRows(); drawMinimapBox(); },
    renderMs: function () { return view ? view.renderMs : null; },
    refreshMs: function () { return view ? view.refreshMs : null; }
  };
})();
