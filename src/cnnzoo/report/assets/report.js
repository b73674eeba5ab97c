// cnnzoo report: draws the page from the JSON in #report-data. No library, nothing fetched.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const app = document.getElementById("app");
  const tip = document.getElementById("tooltip");
  const SVG = "http://www.w3.org/2000/svg";

  // -- small DOM helpers -------------------------------------------------------------------------
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of kids) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  function s(tag, attrs, ...kids) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of kids) if (c) e.append(c);
    return e;
  }
  function section(title, id) {
    const sec = h("section", { id: id }, h("h2", { text: title }));
    app.append(sec);
    return sec;
  }

  // -- numbers -------------------------------------------------------------------------------------
  const int = (v) => (v === null || v === undefined ? "—" : Math.round(v).toLocaleString("en-US"));
  function si(v, unit) {
    if (v === null || v === undefined) return "—";
    const a = Math.abs(v);
    const [d, p] = a >= 1e12 ? [1e12, "T"] : a >= 1e9 ? [1e9, "G"] : a >= 1e6 ? [1e6, "M"] : a >= 1e3 ? [1e3, "K"] : [1, ""];
    return (v / d).toFixed(d === 1 ? 0 : 2) + " " + p + unit;
  }
  function bytes(v) {
    if (v === null || v === undefined) return "—";
    const a = Math.abs(v);
    const [d, p] = a >= 2 ** 30 ? [2 ** 30, "GiB"] : a >= 2 ** 20 ? [2 ** 20, "MiB"] : a >= 1024 ? [1024, "KiB"] : [1, "B"];
    return (v / d).toFixed(d === 1 ? 0 : 1) + " " + p;
  }
  const shape = (a) => (a && a.length ? a.join("×") : "—");
  const pair = (a) => (a ? (a[0] === a[1] ? String(a[0]) : a.join("×")) : "");
  const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (t) => String(t).replace(/[&<>"']/g, (c) => ESC[c]);
  const pct = (v) => (v === null || v === undefined ? "—" : v.toFixed(2) + "%");

  function showTip(ev, rows) {
    tip.replaceChildren(h("table", {}, ...rows.map(([k, v]) => h("tr", {}, h("td", { text: k }), h("td", { text: v })))));
    tip.hidden = false;
    const x = Math.min(ev.clientX + 14, window.innerWidth - 430);
    tip.style.left = x + "px";
    tip.style.top = Math.min(ev.clientY + 12, window.innerHeight - tip.offsetHeight - 8) + "px";
  }
  const hideTip = () => { tip.hidden = true; };

  const METRICS = {
    flops: { label: "FLOPs", fmt: (v) => si(v, "FLOPs") },
    params: { label: "parameters", fmt: (v) => si(v, "") },
    activation_memory_bytes: { label: "activation memory", fmt: bytes },
  };

  // -- the architecture diagram ----------------------------------------------------------------------
  const CONTAINERS = new Set(["container", "stage", "sequential"]);

  function Diagram(model, host) {
    const g = model.graph;
    const nodes = g.nodes, groups = g.groups, edges = g.edges;
    const rowBy = new Map(model.rows.map((r) => [r.name, r]));
    const isBlock = (gi) => !CONTAINERS.has(groups[gi].type);
    const open = groups.map((_, i) => !isBlock(i));
    const runs = findRuns();
    const runOf = new Map();
    runs.forEach((r, ri) => r.forEach((gi) => runOf.set(gi, ri)));
    const runOpen = runs.map(() => false);
    let metric = "flops";

    // consecutive sibling blocks of the same structure: drawn once, as ×N
    function findRuns() {
      const kids = new Map();
      groups.forEach((gr, i) => {
        if (!kids.has(gr.parent)) kids.set(gr.parent, []);
        kids.get(gr.parent).push(i);
      });
      const out = [];
      for (const list of kids.values()) {
        let cur = [];
        const flush = () => { if (cur.length > 1) out.push(cur); cur = []; };
        for (const gi of list) {
          const prev = cur[cur.length - 1];
          if (isBlock(gi) && prev !== undefined && groups[prev].signature === groups[gi].signature && groups[prev].last === groups[gi].first) cur.push(gi);
          else { flush(); if (isBlock(gi)) cur = [gi]; }
        }
        flush();
      }
      return out;
    }

    function unitOf(i) {
      for (const gi of nodes[i].groups) {
        const ri = runOf.get(gi);
        if (ri !== undefined && !runOpen[ri]) return "r" + ri;
        if (!open[gi]) return "g" + gi;
      }
      return "n" + i;
    }

    function runLabel(ri) {
      const a = groups[runs[ri][0]].name, b = groups[runs[ri][runs[ri].length - 1]].name;
      const pre = a.slice(0, a.lastIndexOf(".") + 1);
      return a + "–" + (b.startsWith(pre) ? b.slice(pre.length) : b);
    }

    function makeUnits() {
      const units = [{ id: "input", name: "input", kind: "input", rows: [], shape: g.input_shape, sub: "input " + shape(g.input_shape) }];
      const byId = new Map([["input", units[0]]]);
      const unitOfRow = [];
      nodes.forEach((n, i) => {
        const id = unitOf(i);
        unitOfRow.push(id);
        let u = byId.get(id);
        if (!u) {
          u = { id, rows: [] };
          if (id[0] === "n") Object.assign(u, { kind: "row", name: n.name, sub: rowInfo(rowBy.get(n.name), n) });
          else if (id[0] === "g") {
            const gr = groups[+id.slice(1)];
            Object.assign(u, { kind: "group", name: gr.name, group: +id.slice(1), sub: gr.type + (gr.detail ? " · " + gr.detail : "") });
          } else {
            const ri = +id.slice(1);
            Object.assign(u, { kind: "run", name: runLabel(ri), run: ri, count: runs[ri].length, sub: groups[runs[ri][0]].type + " ×" + runs[ri].length + " (same structure)" });
          }
          byId.set(id, u);
          units.push(u);
        }
        u.rows.push(i);
        u.shape = n.shape;
      });
      for (const u of units) {
        u.cost = { params: 0, flops: 0, activation_memory_bytes: 0, macs: 0 };
        for (const i of u.rows) {
          const r = rowBy.get(nodes[i].name);
          if (r) for (const k in u.cost) u.cost[k] += r[k] || 0;
        }
      }
      const seen = new Map();
      const rank = { data: 0, concat: 1, skip: 2 };
      for (let [sIdx, dIdx, shp, kind] of edges) {
        const a = sIdx < 0 ? "input" : unitOfRow[sIdx], b = unitOfRow[dIdx];
        if (a === b) continue;
        const key = a + ">" + b;
        const e = seen.get(key);
        if (b[0] !== "n") kind = "data"; // into a collapsed block: its residual or concat is inside it
        if (!e) seen.set(key, { a, b, shape: shp, kind });
        else if (rank[kind] > rank[e.kind]) e.kind = kind;
      }
      return { units, byId, links: [...seen.values()] };
    }

    function rowInfo(r, n) {
      if (!r) return n.type;
      let t = r.type;
      if (r.kernel_size && (r.type === "conv" || r.type === "pool")) t += " " + pair(r.kernel_size) + (r.stride && pair(r.stride) !== "1" ? "/" + pair(r.stride) : "");
      if (r.kernels && r.type === "conv") t += ", " + r.kernels;
      return t + " → " + shape(n.shape);
    }

    // layered layout: a unit's layer is one below its deepest predecessor; in a layer, units sit
    // near the mean x of their predecessors, left to right without overlap
    function layout(U) {
      const NH = 36, VG = 30, HG = 18;
      const preds = new Map(U.units.map((u) => [u.id, []]));
      for (const l of U.links) preds.get(l.b).push(l.a);
      const layer = new Map();
      for (const u of U.units) {
        let L = 0;
        for (const p of preds.get(u.id)) L = Math.max(L, layer.get(p) + 1);
        layer.set(u.id, L);
        u.w = Math.min(300, Math.max(96, 7.2 * Math.max(u.name.length + (u.kind === "run" ? 4 : 0), u.sub.length * 0.86) + 18));
      }
      const layers = [];
      for (const u of U.units) (layers[layer.get(u.id)] = layers[layer.get(u.id)] || []).push(u);
      for (const L of layers) {
        if (!L) continue;
        for (const u of L) {
          const ps = preds.get(u.id).map((p) => U.byId.get(p).x);
          u.bx = ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : 0;
        }
        L.sort((a, b) => a.bx - b.bx);
        let right = -Infinity;
        for (const u of L) { u.x = Math.max(u.bx, right + HG + u.w / 2); right = u.x + u.w / 2; }
        const shift = L.reduce((a, u) => a + (u.bx - u.x), 0) / L.length;
        for (const u of L) { u.x += shift; u.y = layer.get(u.id) * (NH + VG) + 12; u.layer = layer.get(u.id); }
      }
      const minX = Math.min(...U.units.map((u) => u.x - u.w / 2));
      for (const u of U.units) u.x += 30 - minX;
      const extent = layers.map((L) => (L ? Math.max(...L.map((u) => u.x + u.w / 2)) : 0));
      return { NH, layers, extent, width: Math.max(...extent) + 140, height: layers.length * (NH + VG) + 20 };
    }

    function colour(v, lo, hi) {
      if (!(hi > lo) || !v) return "hsl(30, 40%, 97%)";
      const t = Math.max(0, Math.min(1, (Math.log10(v + 1) - lo) / (hi - lo)));
      return `hsl(${30 - 20 * t}, ${55 + 30 * t}%, ${95 - 33 * t}%)`;
    }

    function drawLink(l, U, P, gEdges, labelled) {
      const a = U.byId.get(l.a), b = U.byId.get(l.b);
      const span = b.layer - a.layer;
      let d, lx, ly;
      if (span <= 1) {
        const y1 = a.y + P.NH, y2 = b.y, my = (y1 + y2) / 2;
        d = `M${a.x},${y1} C${a.x},${my} ${b.x},${my} ${b.x},${y2}`;
        lx = (a.x + b.x) / 2 + 4; ly = my + 3;
      } else {
        let xc = Math.max(a.x + a.w / 2, b.x + b.w / 2);
        for (let L = a.layer + 1; L < b.layer; L++) xc = Math.max(xc, P.extent[L]);
        xc += 26;
        const y1 = a.y + P.NH / 2, y2 = b.y + P.NH / 2;
        d = `M${a.x + a.w / 2},${y1} C${xc},${y1} ${xc},${y2} ${b.x + b.w / 2},${y2}`;
        lx = xc - 6; ly = (y1 + y2) / 2;
      }
      gEdges.append(s("path", { class: "edge " + l.kind, d, "marker-end": "url(#arrow)", "data-from": a.name, "data-to": b.name }));
      // one label per place: the many long edges into one concatenation would print over each other
      const at = Math.round(lx / 40) + ":" + Math.round(ly / 12);
      if (l.shape && l.shape.length && !labelled.has(at)) {
        labelled.add(at);
        gEdges.append(s("text", { class: "elabel", x: lx, y: ly, text: shape(l.shape) }));
      }
    }

    function unitTip(u) {
      const rows = [["name", u.name], ["what", u.sub]];
      if (u.kind === "row") {
        const r = rowBy.get(u.name);
        if (r) {
          rows.push(["output", shape(r.output_shape)], ["params", int(r.params)], ["FLOPs", int(r.flops)], ["MACs", int(r.macs)],
            ["activation memory", bytes(r.activation_memory_bytes)], ["parameter memory", bytes(r.parameter_memory_bytes)],
            ["receptive field", r.receptive_field === null ? "—" : r.receptive_field + " (jump " + r.jump + ")"]);
          if (r.kernel_size) rows.push(["kernel / stride / pad", pair(r.kernel_size) + " / " + pair(r.stride) + " / " + pair(r.padding)]);
          if (r.saved_bytes !== null) rows.push(["saved for backward", bytes(r.saved_bytes)], ["backward FLOPs", int(r.backward_flops)]);
          if (r.detail) rows.push(["detail", r.detail]);
        }
      } else if (u.kind !== "input") {
        rows.push(["layers", String(u.rows.length)], ["output", shape(u.shape)], ["params", int(u.cost.params)], ["FLOPs", int(u.cost.flops)],
          ["activation memory", bytes(u.cost.activation_memory_bytes)], ["click", u.kind === "run" ? "show the " + u.count + " blocks" : "expand into its layers"]);
      }
      return rows;
    }

    function onClick(u) {
      if (u.kind === "run") runOpen[u.run] = true;
      else if (u.kind === "group") open[u.group] = true;
      else if (u.kind === "row") {
        const gs = nodes[u.rows[0]].groups;
        for (let k = gs.length - 1; k >= 0; k--) if (isBlock(gs[k])) { open[gs[k]] = false; break; }
      }
      hideTip();
      draw();
    }

    const svgHost = h("div", { class: "diagram-wrap" });
    const count = h("span", { class: "note" });
    const select = h("select", { id: "colour-by", onchange: (e) => { metric = e.target.value; draw(); } },
      ...Object.entries(METRICS).map(([k, m]) => h("option", { value: k, text: m.label })));
    host.append(
      h("div", { class: "toolbar" }, h("label", { text: "colour by " }, select),
        h("button", { id: "expand-all", onclick: () => { open.fill(true); runOpen.fill(true); draw(); }, text: "expand all" }),
        h("button", { id: "collapse-all", onclick: () => { groups.forEach((_, i) => { open[i] = !isBlock(i); }); runOpen.fill(false); draw(); }, text: "collapse all" }),
        count),
      h("p", { class: "legend" }, h("span", {}, h("i"), "data"), h("span", {}, h("i", { class: "skip" }), "residual (skip) input"),
        h("span", {}, h("i", { class: "concat" }), "concatenated input"),
        h("span", { text: "thick border: a block, click to expand; ×N: N blocks of one structure; click a layer to fold its block back" })),
      svgHost);

    function draw() {
      const U = makeUnits();
      const P = layout(U);
      const vals = U.units.filter((u) => u.kind !== "input").map((u) => Math.log10((u.cost[metric] || 0) + 1));
      const lo = Math.min(...vals), hi = Math.max(...vals);
      const svg = s("svg", { id: "diagram", width: P.width, height: P.height, viewBox: `0 0 ${P.width} ${P.height}` });
      svg.append(s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 8 8", refX: 7, refY: 4, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" },
        s("path", { d: "M0,0 L8,4 L0,8 z", fill: "#77828d" }))));
      const gEdges = s("g", { class: "edges" }), gNodes = s("g", { class: "nodes" });
      const labelled = new Set();
      for (const l of U.links) drawLink(l, U, P, gEdges, labelled);
      for (const u of U.units) {
        const collapsed = u.kind === "group" || u.kind === "run";
        const gn = s("g", { class: "node" + (collapsed ? " collapsed" : "") + " kind-" + u.kind, "data-name": u.name, "data-kind": u.kind,
          "data-layers": u.rows.length, transform: `translate(${u.x - u.w / 2},${u.y})` },
        s("rect", { width: u.w, height: P.NH, fill: u.kind === "input" ? "#e8eef5" : colour(u.cost[metric], lo, hi) }),
        s("text", { class: "name", x: 8, y: 14, text: u.name }),
        s("text", { class: "info", x: 8, y: 28, text: u.sub.length > 46 ? u.sub.slice(0, 45) + "…" : u.sub }));
        if (collapsed) gn.append(s("text", { class: "badge", x: u.w - 8, y: 14, "text-anchor": "end", text: u.kind === "run" ? "×" + u.count : "+" }));
        gn.addEventListener("mousemove", (ev) => showTip(ev, unitTip(u)));
        gn.addEventListener("mouseleave", hideTip);
        if (u.kind !== "input") gn.addEventListener("click", () => onClick(u));
        gNodes.append(gn);
      }
      svg.append(gEdges, gNodes);
      svgHost.replaceChildren(svg);
      count.textContent = `${U.units.length - 1} nodes shown for ${nodes.length} layers, ${U.links.length} edges; colour: ${METRICS[metric].label} (log scale)`;
    }
    draw();
  }

  // -- the cost table --------------------------------------------------------------------------------
  const COLUMNS = [
    ["name", "name", (r) => r.name, false],
    ["type", "type", (r) => r.type + (r.detail ? " · " + r.detail : ""), false],
    ["kernel_size", "k/s/p", (r) => (r.kernel_size ? pair(r.kernel_size) + "/" + pair(r.stride) + "/" + pair(r.padding) : ""), false],
    ["output_shape", "output", (r) => shape(r.output_shape), false],
    ["params", "params", (r) => int(r.params), true],
    ["flops", "FLOPs", (r) => int(r.flops), true],
    ["macs", "MACs", (r) => int(r.macs), true],
    ["activation_memory_bytes", "act. memory", (r) => bytes(r.activation_memory_bytes), true],
    ["parameter_memory_bytes", "param. memory", (r) => bytes(r.parameter_memory_bytes), true],
    ["receptive_field", "RF", (r) => (r.receptive_field === null ? "—" : String(r.receptive_field)), true],
    ["jump", "jump", (r) => (r.jump === null ? "—" : String(r.jump)), true],
    ["saved_bytes", "saved (step)", (r) => bytes(r.saved_bytes), true],
    ["backward_flops", "backward FLOPs", (r) => int(r.backward_flops), true],
  ];

  const FIRST_ROWS = 80;

  function CostTable(model, host) {
    const rows = model.rows.map((r, i) => Object.assign({ _i: i }, r));
    const table = h("table", { class: "costs", id: "cost-table" });
    const tbody = h("tbody");
    let sortKey = "_i", dir = 1;
    const head = h("tr", {}, ...COLUMNS.map(([key, label, , num]) => h("th", {
      class: num ? "num" : null, "data-key": key, text: label,
      onclick: (e) => { dir = sortKey === key ? -dir : num ? -1 : 1; sortKey = key; fill(); mark(e.target); },
    })));
    function mark(th) {
      head.querySelectorAll("th").forEach((t) => t.classList.remove("sorted-asc", "sorted-desc"));
      th.classList.add(dir > 0 ? "sorted-asc" : "sorted-desc");
    }
    function val(r) {
      const v = r[sortKey];
      return Array.isArray(v) ? v.reduce((a, b) => a * b, 1) : v;
    }
    const rowHtml = (r) => `<tr data-name="${esc(r.name)}"${r.counted ? "" : ' class="uncounted"'}>` +
      COLUMNS.map(([, , f]) => "<td>" + esc(f(r)) + "</td>").join("") + "</tr>";
    function fill() {
      const sorted = rows.slice().sort((a, b) => {
        const x = val(a), y = val(b);
        if (x === y) return a._i - b._i;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * dir;
      });
      tbody.innerHTML = sorted.map(rowHtml).join("");
    }
    // A deep net's table (ResNet-152: 516 rows) is most of the page's layout time, and it sits
    // below the diagram: the first rows are laid out with the page, the rest right after its
    // first frame (a sort before then draws them all).
    const html = rows.map(rowHtml);
    tbody.innerHTML = html.slice(0, FIRST_ROWS).join("");
    const rest = () => {
      if (html.length > FIRST_ROWS && sortKey === "_i") tbody.insertAdjacentHTML("beforeend", html.slice(FIRST_ROWS).join(""));
      requestAnimationFrame(() => setTimeout(() => document.body.setAttribute("data-complete-ms", String(Math.round(performance.now()))), 0));
    };
    requestAnimationFrame(() => setTimeout(rest, 0));
    const t = model.totals;
    const foot = h("tr", {}, ...COLUMNS.map(([key, , , num]) => {
      const f = { params: int, flops: int, macs: int, activation_memory_bytes: bytes, parameter_memory_bytes: bytes, saved_bytes: bytes, backward_flops: int }[key];
      return h("td", { class: num ? "num" : null, text: key === "name" ? "total" : f ? f(t[key]) : "" });
    }));
    table.append(h("thead", {}, head), tbody, h("tfoot", {}, foot));
    host.append(h("p", { class: "note", text: `${rows.length} rows at batch ${model.batch} (${model.dtype}); FLOPs count 2 per multiply-add; ${model.totals_include}. Click a header to sort.` }),
      h("div", { class: "table-wrap" }, table));
  }

  // -- charts ------------------------------------------------------------------------------------------
  function chartBox(host, title, id) {
    const box = h("div", { class: "chart", id }, h("h3", { text: title }));
    host.append(box);
    return box;
  }

  function barChart(host, title, items, fmt, id, opts) {
    opts = opts || {};
    const box = chartBox(host, title, id);
    const W = 640, H = opts.height || 200, L = 58, B = opts.labels ? 60 : 18, T = 8;
    const max = Math.max(1e-9, ...items.map((d) => d.v || 0));
    const bw = (W - L - (opts.labels ? 50 : 8)) / Math.max(items.length, 1);
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
    for (let k = 0; k <= 4; k++) {
      const y = T + (H - T - B) * (1 - k / 4);
      svg.append(s("line", { class: "gridline", x1: L, x2: W - 4, y1: y, y2: y }), s("text", { class: "axis", x: L - 4, y: y + 3, "text-anchor": "end", text: fmt((max * k) / 4) }));
    }
    items.forEach((d, i) => {
      const hh = ((d.v || 0) / max) * (H - T - B);
      const r = s("rect", { class: "bar", x: L + i * bw, y: H - B - hh, width: Math.max(bw - (bw > 3 ? 1 : 0), 0.6), height: hh, fill: d.colour || null },
        s("title", { text: `${d.label}: ${fmt(d.v)}` }));
      svg.append(r);
      if (opts.labels) svg.append(s("text", { class: "axis", transform: `translate(${L + i * bw + bw / 2},${H - B + 10}) rotate(35)`, text: d.label }));
    });
    box.append(svg);
    return box;
  }

  function lineChart(host, title, series, opts, id) {
    const box = chartBox(host, title, id);
    const W = 640, H = 220, L = 58, B = 30, T = 8, R = 10;
    const pts = series.flatMap((se) => se.pts).filter((p) => p[1] !== null && p[1] !== undefined);
    if (!pts.length) { box.append(h("p", { class: "note", text: "no values" })); return box; }
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = opts.y0 !== undefined ? opts.y0 : Math.min(...ys), y1 = Math.max(...ys);
    const X = (v) => L + ((v - x0) / (x1 - x0 || 1)) * (W - L - R);
    const Y = (v) => T + (1 - (v - y0) / (y1 - y0 || 1)) * (H - T - B);
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
    for (let k = 0; k <= 4; k++) {
      const v = y0 + ((y1 - y0) * k) / 4;
      svg.append(s("line", { class: "gridline", x1: L, x2: W - R, y1: Y(v), y2: Y(v) }), s("text", { class: "axis", x: L - 4, y: Y(v) + 3, "text-anchor": "end", text: opts.fmt(v) }));
    }
    svg.append(s("text", { class: "axis", x: W - R, y: H - 6, "text-anchor": "end", text: opts.xlabel }));
    svg.append(s("text", { class: "axis", x: L, y: H - 6, text: String(x0) }));
    const colours = ["#c2410c", "#2563eb", "#059669", "#7c3aed"];
    series.forEach((se, k) => {
      const p = se.pts.filter((q) => q[1] !== null && q[1] !== undefined);
      if (!p.length) return;
      const c = colours[k % colours.length];
      svg.append(s("path", { d: p.map((q, i) => (i ? "L" : "M") + X(q[0]) + "," + Y(q[1])).join(" "), fill: "none", stroke: c, "stroke-width": 1.8 }));
      if (p.length < 60) for (const q of p) svg.append(s("circle", { cx: X(q[0]), cy: Y(q[1]), r: 2.5, fill: c }, s("title", { text: `${se.name} at ${q[0]}: ${opts.fmt(q[1])}` })));
      svg.append(s("text", { class: "axis", x: L + 8 + 110 * k, y: T + 10, style: "fill:" + c, text: "■ " + se.name }));
    });
    box.append(svg);
    return box;
  }

  function layerCharts(model, host) {
    const rows = model.rows.filter((r) => r.type !== "input" && r.type !== "unused" && r.type !== "params");
    const grid = h("div", { class: "charts" });
    host.append(grid);
    barChart(grid, "parameters per layer", rows.map((r) => ({ label: r.name, v: r.params })), (v) => si(v, ""), "chart-params");
    barChart(grid, "FLOPs per layer (batch " + model.batch + ")", rows.map((r) => ({ label: r.name, v: r.flops })), (v) => si(v, ""), "chart-flops");
    barChart(grid, "activation memory per layer (batch " + model.batch + ")", rows.map((r) => ({ label: r.name, v: r.activation_memory_bytes })), bytes, "chart-activations");
    const rf = rows.map((r, i) => [i + 1, r.receptive_field]).filter((p) => p[1] !== null);
    lineChart(grid, "receptive field with depth (pixels of the input)", [{ name: "receptive field", pts: rf }], { fmt: (v) => Math.round(v) + " px", xlabel: "row (depth) →", y0: 0 }, "chart-rf");
  }

  // -- training-step memory -------------------------------------------------------------------------------
  const PARTS = [["params", "parameters (and buffers)", "#2563eb"], ["grads", "gradients", "#059669"], ["optimizer_state", "optimizer state", "#7c3aed"], ["activations", "activations (the rest)", "#e07b39"]];

  function realAt(mem, b) {
    const p = mem.points;
    if (p.length === 1) {
      const r = Object.assign({}, p[0]);
      r.activations = (p[0].activations * b) / p[0].batch;
      return r;
    }
    let i = 0;
    while (i < p.length - 2 && b > p[i + 1].batch) i++;
    const a = p[i], c = p[i + 1], t = (b - a.batch) / (c.batch - a.batch);
    const r = Object.assign({}, a);
    r.activations = Math.max(0, a.activations + t * (c.activations - a.activations));
    return r;
  }

  function MemoryChart(model, host) {
    const mem = model.memory;
    if (!mem.points.length) { host.append(h("p", { class: "note", text: "The training step could not be traced for this model; see the notes." })); return; }
    const traced = mem.points.map((p) => p.batch);
    const input = h("input", { type: "range", min: 1, max: Math.max(8 * mem.batch, 64), value: mem.batch, id: "batch-slider" });
    const num = h("input", { type: "number", min: 1, value: mem.batch, id: "batch-input", style: "width: 6em" });
    const out = h("div", { id: "memory-bars" });
    host.append(h("p", { class: "note", text: `One training step with ${mem.optimizer} (${mem.optimizer_states} state tensor(s) per parameter). The analyzer traced the step at batches ${traced.join(", ")} on the meta device; at other batches its peak is interpolated between them (the live bytes are affine in the batch at every moment). Beside it, the lecture's bookkeeping: 2 values per activation and (2 + k) per parameter.` }),
      h("div", { class: "toolbar" }, h("label", { text: "batch " }, input), num), out);
    function bar(label, parts, total, max, id) {
      const W = 640, svg = s("svg", { viewBox: `0 0 ${W} 26`, id });
      let x = 0;
      for (const [k, name, c] of PARTS) {
        const w = (parts[k] / max) * (W - 4);
        svg.append(s("rect", { x, y: 3, width: Math.max(w, 0), height: 20, fill: c, "data-part": k }, s("title", { text: `${name}: ${bytes(parts[k])}` })));
        x += w;
      }
      return h("div", { class: "mem-row" }, h("div", { style: "width: 260px", text: `${label}: ${bytes(total)}` }), h("div", { style: "flex: 1" }, svg));
    }
    function update(b) {
      b = Math.max(1, Math.round(b) || 1);
      input.value = b; num.value = b;
      const real = realAt(mem, b);
      const realTotal = PARTS.reduce((a, [k]) => a + real[k], 0);
      const lec = Object.assign({}, mem.lecture, { activations: mem.lecture.activations_per_sample * b });
      const lecTotal = PARTS.reduce((a, [k]) => a + lec[k], 0);
      const max = Math.max(realTotal, lecTotal);
      const exact = traced.includes(b) ? "traced" : b > traced[traced.length - 1] ? "extrapolated" : "interpolated";
      out.replaceChildren(bar(`analyzer's peak (${exact})`, real, realTotal, max, "memory-real"), bar("lecture's bookkeeping", lec, lecTotal, max, "memory-lecture"),
        h("p", { class: "legend" }, ...PARTS.map(([, name, c]) => h("span", {}, h("i", { style: `border-top: 8px solid ${c}` }), name))),
        h("p", { class: "note", id: "memory-peak", "data-peak": Math.round(realTotal), text: `batch ${b}: peak ${bytes(realTotal)}${real.peak_at ? " (at " + real.peak_at + " when traced at batch " + real.batch + ")" : ""}; the lecture's sum ${bytes(lecTotal)}. Activations are the rest of the peak: saved tensors, live activations, the data batch and kernels' workspaces.` }));
    }
    input.addEventListener("input", () => update(+input.value));
    num.addEventListener("change", () => update(+num.value));
    update(mem.batch);
  }

  // -- pages -----------------------------------------------------------------------------------------------
  function cards(host, items) {
    host.append(h("div", { class: "cards" }, ...items.map(([label, value, id]) => h("div", { class: "card" }, h("b", { text: value, id }), h("span", { text: label })))));
  }

  function modelPage(m) {
    const cfg = m.config;
    document.getElementById("subtitle").textContent = cfg ? `${cfg.paper}` + (cfg.notes ? ` — ${cfg.notes}` : "") : "";
    const top = section("Overview", "overview");
    const items = [["parameters", int(m.totals.params)], ["FLOPs per image", si(m.flops_per_image, "FLOPs")], ["input", shape(m.input_size)],
      ["final receptive field", m.final_receptive_field === null ? "—" : m.final_receptive_field + " px"],
      ["activation memory (batch " + m.batch + ")", bytes(m.totals.activation_memory_bytes)], ["training peak (batch " + m.batch + ")", bytes(m.totals.peak_training_bytes)]];
    if (cfg && cfg.reported && cfg.reported.top1 !== null && cfg.reported.top1 !== undefined) items.push([`paper's top-1 (${cfg.reported.dataset}; ${cfg.reported.source})`, pct(cfg.reported.top1)]);
    cards(top, items);
    if (m.weights) top.append(h("p", { class: "note", text: "weights: " + m.weights }));
    Diagram(m, section("Architecture", "architecture"));
    CostTable(m, section("Cost table", "table"));
    layerCharts(m, section("Per-layer costs", "charts"));
    MemoryChart(m, section("Memory of a training step", "memory"));
    if (m.filters) filters(m.filters, section("First-layer filters", "filters"));
    if (m.notes && m.notes.length) {
      const n = section("Notes from the analyzer", "notes");
      n.append(h("ul", {}, ...m.notes.map((t) => h("li", { class: "note", text: t }))));
    }
  }

  function filters(f, host) {
    host.append(h("p", { class: "note", text: `${f.layer}: weights ${shape(f.shape)}, each kernel scaled to its own range` }),
      h("img", { class: "pixelated", src: f.image, alt: "first-layer filters", style: "width: min(100%, 720px)" }));
  }

  function runPage(d) {
    const r = d.run, m = d.model;
    const top = section("Run", "run");
    cards(top, [["test top-1", pct(r.test_top1), "test-top1"], ["test top-5", pct(r.summary.test_top5)], ["epochs", String(r.summary.epochs ?? "—")],
      ["data", String(r.summary.data ?? r.config.data)], ["train time", r.summary.train_seconds ? r.summary.train_seconds.toFixed(1) + " s" : "—"]]);
    const c = r.checksum;
    top.append(h("p", { class: "note", id: "checksum", text: `${c.file} sha256 ${c.sha256} — ${c.verified ? "matches the run's record" : "the run recorded none"}; run directory ${r.dir}` }));
    const curves = h("div", { class: "charts" });
    section("Learning curves", "curves").append(curves);
    const ser = (k, name) => ({ name, pts: r.curves.map((row) => [row.epoch, row[k] ?? null]) });
    lineChart(curves, "loss per epoch", [ser("train_loss", "train"), ser("test_loss", "test"), ser("val_loss", "validation")], { fmt: (v) => v.toFixed(3), xlabel: "epoch" }, "chart-loss");
    lineChart(curves, "top-1 per epoch", [ser("train_top1", "train"), ser("test_top1", "test"), ser("val_top1", "validation")], { fmt: (v) => v.toFixed(1) + "%", xlabel: "epoch" }, "chart-top1");
    confusion(r, section("Confusion matrix and per-class accuracy", "confusion"));
    const ex = section("Misclassified test images", "misclassified");
    ex.append(h("p", { class: "note", text: `${r.examples.wrong.length} shown, from the first ${r.examples.evaluated} test images (top-1 on those ${r.examples.evaluated}: ${pct(r.examples.top1)})` }),
      h("div", { class: "gallery" }, ...r.examples.wrong.map((w) => h("figure", {}, h("img", { class: "pixelated", src: w.image, alt: w.true }), h("figcaption", { text: `${w.true} → ${w.pred}` })))));
    if (r.filters) filters(r.filters, section("First-layer filters", "filters"));
    if (r.stages.length) {
      const st = section("Feature maps of one test image, stage by stage", "stages");
      st.append(h("p", { class: "note", text: "the first channels of each stage's output (feature_info), each scaled to its own range" }),
        h("div", { class: "gallery stages" }, h("figure", {}, h("img", { class: "pixelated", src: r.test_image, alt: "test image" }), h("figcaption", { text: "input" })),
          ...r.stages.map((x) => h("figure", {}, h("img", { class: "pixelated", src: x.image, alt: x.stage }), h("figcaption", { text: `${x.stage} ${shape(x.shape)} (1/${x.reduction})` })))));
    }
    const cf = section("Configuration", "config");
    cf.append(h("details", {}, h("summary", { text: "config.json" }), h("pre", { class: "config", text: JSON.stringify(r.config, null, 2) })));
    modelPage(m);
  }

  function confusion(r, host) {
    const { classes, counts, source } = r.confusion;
    const max = Math.max(1, ...counts.flat());
    const t = h("table", { class: "confusion", id: "confusion-matrix" },
      h("tr", {}, h("th", { text: "true \\ predicted" }), ...classes.map((c) => h("th", { text: c }))),
      ...counts.map((row, i) => h("tr", {}, h("th", { text: classes[i] }), ...row.map((v, j) => h("td", {
        text: String(v), style: `background: ${i === j ? "hsla(150,55%,40%," : "hsla(15,80%,50%,"}${(v / max) * 0.85})`,
      })))));
    host.append(h("p", { class: "note", text: "rows: true class; columns: predicted; from " + source }), h("div", { style: "overflow:auto" }, t));
    const grid = h("div", { class: "charts" });
    host.append(grid);
    barChart(grid, "per-class accuracy", classes.map((c, i) => ({ label: c, v: r.per_class[i] })), (v) => (v === null || v === undefined ? "—" : v.toFixed(1) + "%"), "chart-per-class", { labels: true, height: 240 });
  }

  function comparePage(c) {
    const E = c.entries;
    document.getElementById("subtitle").textContent = `${E.length} networks; memory at batch ${c.batch}`;
    const side = section("Side by side", "side");
    const rows = [["input", (e) => shape(e.input_size)], ["parameters", (e) => int(e.params)], ["FLOPs per image", (e) => si(e.flops_per_image, "FLOPs")],
      ["MACs per image", (e) => si(e.macs_per_image, "MACs")], ["activation memory", (e) => bytes(e.activation_memory_bytes)],
      ["parameter memory", (e) => bytes(e.parameter_memory_bytes)], ["training peak (traced)", (e) => bytes(e.peak_training_bytes)],
      ["final receptive field", (e) => (e.receptive_field === null ? "—" : e.receptive_field + " px")],
      ["top-1", (e) => (e.accuracy ? pct(e.accuracy.top1) + " (" + e.accuracy.dataset + ")" : "—")], ["accuracy source", (e) => (e.accuracy ? e.accuracy.source : "none known")]];
    side.append(h("table", { class: "side", id: "compare-table" }, h("tr", {}, h("th", { text: "" }), ...E.map((e) => h("th", { text: e.label }))),
      ...rows.map(([label, f]) => h("tr", {}, h("td", { text: label }), ...E.map((e) => h("td", { text: f(e) }))))));
    const grid = h("div", { class: "charts" });
    section("Costs", "compare-charts").append(grid);
    const lab = (e) => e.label;
    barChart(grid, "parameters", E.map((e) => ({ label: lab(e), v: e.params })), (v) => si(v, ""), "cmp-params", { labels: true, height: 230 });
    barChart(grid, "FLOPs per image", E.map((e) => ({ label: lab(e), v: e.flops_per_image })), (v) => si(v, ""), "cmp-flops", { labels: true, height: 230 });
    barChart(grid, `training peak at batch ${c.batch}`, E.map((e) => ({ label: lab(e), v: e.peak_training_bytes })), bytes, "cmp-memory", { labels: true, height: 230 });
    barChart(grid, "final receptive field", E.map((e) => ({ label: lab(e), v: e.receptive_field })), (v) => (v === null || v === undefined ? "—" : Math.round(v) + " px"), "cmp-rf", { labels: true, height: 230 });
    bubbles(E, section("Accuracy against operations", "bubbles"));
  }

  function bubbles(E, host) {
    const known = E.filter((e) => e.accuracy && e.flops_per_image > 0);
    const none = E.filter((e) => !known.includes(e));
    host.append(h("p", { class: "note", text: "x: FLOPs per image (log scale); y: top-1; area: parameters. Accuracies are the runs' own test top-1, else the papers' reported ones (their source in the table); different datasets have different colours and are not comparable." }));
    if (!known.length) { host.append(h("p", { class: "note", text: "No accuracy is known for these networks." })); return; }
    const W = 760, H = 380, L = 60, B = 36, T = 14, R = 20;
    const lx = known.map((e) => Math.log10(e.flops_per_image)), ys = known.map((e) => e.accuracy.top1);
    let x0 = Math.min(...lx), x1 = Math.max(...lx); if (x1 - x0 < 0.5) { x0 -= 0.25; x1 += 0.25; }
    let y0 = Math.min(...ys), y1 = Math.max(...ys); if (y1 - y0 < 4) { y0 -= 2; y1 += 2; }
    x0 -= 0.15; x1 += 0.15; y0 -= 1.5; y1 += 1.5;
    const X = (v) => L + ((v - x0) / (x1 - x0)) * (W - L - R), Y = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
    const pmax = Math.max(...known.map((e) => e.params));
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, id: "bubble-chart", role: "img" });
    for (let p = Math.ceil(x0); p <= Math.floor(x1); p++) svg.append(s("line", { class: "gridline", x1: X(p), x2: X(p), y1: T, y2: H - B }), s("text", { class: "axis", x: X(p), y: H - B + 14, "text-anchor": "middle", text: si(10 ** p, "FLOPs") }));
    for (let k = 0; k <= 4; k++) { const v = y0 + ((y1 - y0) * k) / 4; svg.append(s("line", { class: "gridline", x1: L, x2: W - R, y1: Y(v), y2: Y(v) }), s("text", { class: "axis", x: L - 4, y: Y(v) + 3, "text-anchor": "end", text: v.toFixed(1) + "%" })); }
    const sets = [...new Set(known.map((e) => e.accuracy.dataset))];
    const colours = ["#c2410c", "#2563eb", "#059669", "#7c3aed", "#be185d"];
    for (const e of known) {
      const c = colours[sets.indexOf(e.accuracy.dataset) % colours.length];
      const r = 5 + 28 * Math.sqrt(e.params / pmax);
      svg.append(s("circle", { cx: X(Math.log10(e.flops_per_image)), cy: Y(e.accuracy.top1), r, fill: c, "fill-opacity": 0.35, stroke: c, "data-name": e.label },
        s("title", { text: `${e.label}: ${pct(e.accuracy.top1)} (${e.accuracy.source}); ${si(e.flops_per_image, "FLOPs")}; ${int(e.params)} params` })),
      s("text", { class: "axis", x: X(Math.log10(e.flops_per_image)), y: Y(e.accuracy.top1) + 3, "text-anchor": "middle", style: "fill:#1d2329", text: e.label }));
    }
    sets.forEach((d, k) => svg.append(s("text", { class: "axis", x: L + 8 + 130 * k, y: T + 4, style: "fill:" + colours[k % colours.length], text: "● " + d })));
    host.append(h("div", { class: "chart bubble" }, svg));
    if (none.length) host.append(h("p", { class: "note", text: "no accuracy known for: " + none.map((e) => e.label).join(", ") }));
  }

  if (D.kind === "compare") comparePage(D.compare);
  else if (D.kind === "run") runPage(D);
  else modelPage(D.model);
  document.body.setAttribute("data-render-ms", String(Math.round(performance.now())));
  document.body.setAttribute("data-ready", "1");
  // the first frame painted after the drawing: layout and paint included (benchmarks/report_pages.py)
  requestAnimationFrame(() => setTimeout(() => document.body.setAttribute("data-paint-ms", String(Math.round(performance.now()))), 0));
})();
