/* The speed chart: GB/s against N per provider, with the copy ceiling, drawn as plain SVG from
   the bench's data file (GET api/bench, or the charts an exported page carries inline). The
   numbers are the bench's; this file only places them. */
"use strict";
(function (V) {
  const h = V.h;
  // SVG's namespace, taken from the parser: the page carries no URL at all (the export tests
  // look for any), so a stray CDN link cannot hide among legitimate ones.
  const SVG = new DOMParser().parseFromString("<svg></svg>", "text/html").body.firstChild.namespaceURI;
  const OP_LABEL = { fwd: "forward", bwd: "backward", fwd_residual: "fused add + norm" };
  const COLORS = { rmsnorm_triton: "#3451c6", torch_compile: "#d9822b", quack: "#2f8a4c",
    liger: "#a23ba8", torch_native: "#6b7280", torch_eager: "#b91c1c" };
  const OTHER = ["#0e7490", "#854d0e", "#9f1239"];

  function s(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, v);
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined) el.append(kid instanceof Node ? kid : String(kid));
    return el;
  }
  const color = (p, i) => COLORS[p] || OTHER[i % OTHER.length];
  V.fmtN = (n) => (n >= 1024 && n % 1024 === 0 ? `${n / 1024}K` : String(n));
  const gbps = (v) => `${Math.round(v).toLocaleString("en-US")} GB/s`;

  /** Ticks of a 0..top axis, 5 to 8 of them at 1, 2 or 5 × 10^k; the last one is >= top. */
  function ticks(top) {
    const raw = top / 7, mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((x) => x >= raw);
    const out = [];
    for (let v = 0; v < top + step; v += step) out.push(v);
    return out;
  }

  /** Draws chart (one op, dtype and GPU) into el at el's width. */
  V.drawSpeed = function (el, chart) {
    const W = Math.max(280, el.clientWidth || 640), narrow = W < 520;
    const H = narrow ? 260 : 330, m = { l: narrow ? 44 : 56, r: 12, t: 16, b: 42 };
    const ns = chart.ns, pts = chart.series.flatMap((sr) => sr.points);
    const ceiling = chart.copy ? chart.copy.gbps : 0;
    const yt = ticks(Math.max(ceiling, ...pts.map((p) => p.gbps), 1) * 1.04), top = yt[yt.length - 1];
    const lo = Math.log2(ns[0]) - 0.3, hi = Math.log2(ns[ns.length - 1]) + 0.3;
    const x = (n) => m.l + ((Math.log2(n) - lo) / (hi - lo || 1)) * (W - m.l - m.r);
    const y = (v) => H - m.b - (v / top) * (H - m.t - m.b);
    const svg = s("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", class: "speed-svg",
      "aria-label": `GB/s against N for ${OP_LABEL[chart.op] || chart.op}, ${chart.dtype}, on ${chart.gpu}` });
    for (const v of yt) {
      svg.append(s("line", { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v), class: "gridline" }),
        s("text", { x: m.l - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, v >= 1000 && narrow ? `${v / 1000}k` : v.toLocaleString("en-US")));
    }
    ns.forEach((n, i) => {
      if (narrow && (ns.length - 1 - i) % 2) return; // every other label, ending at the last, where they would touch
      svg.append(s("text", { x: x(n), y: H - m.b + 16, class: "tick", "text-anchor": "middle" }, V.fmtN(n)));
    });
    svg.append(s("text", { x: (m.l + W - m.r) / 2, y: H - 6, class: "axis-label", "text-anchor": "middle" }, "N, elements per row (log scale)"),
      s("text", { x: 12, y: m.t + (H - m.t - m.b) / 2, class: "axis-label", "text-anchor": "middle",
        transform: `rotate(-90 12 ${m.t + (H - m.t - m.b) / 2})` }, "GB/s"));
    if (chart.copy) {
      svg.append(s("line", { x1: m.l, x2: W - m.r, y1: y(ceiling), y2: y(ceiling), class: "ceiling", "data-gbps": ceiling },
        s("title", {}, `copy ceiling: ${gbps(ceiling)}, measured in the run of ${chart.copy.date}`)),
      s("text", { x: W - m.r - 4, y: y(ceiling) - 5, class: "ceiling-label", "text-anchor": "end" }, `copy ceiling ${gbps(ceiling)}`));
    }
    chart.series.forEach((sr, i) => {
      const c = color(sr.provider, i), ours = sr.provider === "rmsnorm_triton";
      const g = s("g", { class: "series" + (ours ? " ours" : ""), "data-provider": sr.provider });
      if (sr.points.length > 1) {
        g.append(s("polyline", { fill: "none", stroke: c, "stroke-width": ours ? 3 : 1.6,
          points: sr.points.map((p) => `${x(p.N).toFixed(1)},${y(p.gbps).toFixed(1)}`).join(" ") }));
      }
      for (const p of sr.points) {
        g.append(s("circle", { cx: x(p.N), cy: y(p.gbps), r: ours ? 4 : 3, fill: c, "data-n": p.N, "data-gbps": p.gbps },
          s("title", {}, `${sr.label} · N = ${V.fmtN(p.N)}, M = ${p.M.toLocaleString("en-US")}: ${gbps(p.gbps)}, ${p.pct_copy.toFixed(1)}% of copy, ${(p.ms * 1e3).toFixed(1)} µs`)));
      }
      svg.append(g);
    });
    el.replaceChildren(svg);
  };

  V.legendSpeed = function (ul, chart) {
    ul.replaceChildren(...chart.series.map((sr, i) => h("li", { "data-provider": sr.provider },
      h("i", { class: "sw line", style: `background:${color(sr.provider, i)}` }), sr.label,
      sr.missing.length ? h("small", { text: ` (not measured at N = ${sr.missing.map((mm) => `${V.fmtN(mm.N)}: ${mm.status}`).join(", ")})`,
        title: sr.missing.map((mm) => `N = ${mm.N}: ${mm.note}`).join("\n") }) : null)));
  };

  /** The numbers behind the chart: N down, providers across, GB/s and % of copy. */
  V.tableSpeed = function (table, chart) {
    const at = new Map(chart.series.map((sr) => [sr.provider, new Map(sr.points.map((p) => [p.N, p]))]));
    table.replaceChildren(
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "N" }), h("th", { scope: "col", text: "M" }),
        chart.series.map((sr) => h("th", { scope: "col", text: sr.label })))),
      h("tbody", {}, chart.ns.map((n) => {
        const any = chart.series.map((sr) => at.get(sr.provider).get(n)).find(Boolean);
        return h("tr", {}, h("th", { scope: "row", text: V.fmtN(n) }), h("td", { text: any ? any.M.toLocaleString("en-US") : "–" }),
          chart.series.map((sr) => {
            const p = at.get(sr.provider).get(n);
            return h("td", { "data-provider": sr.provider, "data-n": n, "data-gbps": p ? p.gbps : null,
              text: p ? `${Math.round(p.gbps).toLocaleString("en-US")} · ${p.pct_copy.toFixed(1)}%` : "–" });
          }));
      })));
  };

  /** The speed panel: menus, chart, legend, note, table. source(op, dtype, gpu) -> Promise of
      a chart (null: the defaults). Returns show(), to call when the panel becomes visible. */
  V.speedView = function (R, source) {
    let chart = null, seq = 0;
    const fill = (sel, values, label, cur) => {
      sel.replaceChildren(...values.map((v) => h("option", { value: v, text: label ? label(v) : v })));
      sel.value = cur;
    };
    function paint() {
      if (!chart) return;
      V.drawSpeed(R.chart, chart);
      V.legendSpeed(R.chartLegend, chart);
      V.tableSpeed(R.speedTable, chart);
      const c = chart.copy;
      R.speedNote.textContent = `${OP_LABEL[chart.op] || chart.op}, ${chart.dtype}, on ${chart.gpu}: the latest run of each cell in ${chart.source}. `
        + (c ? `The copy ceiling is the read + write bandwidth measured in the same run (${gbps(c.gbps)}` + (c.high - c.low > 0.5 ? `; ${gbps(c.low)} to ${gbps(c.high)} across these runs)` : ")") + "; every point's % of copy is against its own run's. " : "")
        + "Bytes are the fewest the op must move. Hover a point for its M, time and % of copy.";
    }
    async function load(op, dtype, gpu) {
      const my = ++seq;
      R.speedError.hidden = true;
      try {
        const got = await source(op, dtype, gpu);
        if (my !== seq) return;
        if (!got.available) {
          R.speedMissing.hidden = false; R.speedMissing.textContent = got.message;
          for (const k of ["speedOp", "speedDtype", "speedGpu"]) R[k].disabled = true;
          R.chart.replaceChildren(); R.chartLegend.replaceChildren(); R.speedTable.replaceChildren(); R.speedNote.textContent = "";
          R.chart.dataset.state = "missing";
          return;
        }
        chart = got;
        fill(R.speedOp, chart.ops, (o) => OP_LABEL[o] || o, chart.op);
        fill(R.speedDtype, chart.dtypes, null, chart.dtype);
        fill(R.speedGpu, chart.gpus, null, chart.gpu);
        R.chart.dataset.state = "drawn";
        R.chart.dataset.key = `${chart.op}/${chart.dtype}/${chart.gpu}`;
        paint();
      } catch (e) {
        if (my === seq) { R.speedError.hidden = false; R.speedError.textContent = "The speed chart could not be loaded: " + e.message; }
      }
    }
    const pick = () => load(R.speedOp.value, R.speedDtype.value, R.speedGpu.value);
    for (const k of ["speedOp", "speedDtype", "speedGpu"]) R[k].addEventListener("change", pick);
    let width = 0;
    new ResizeObserver(() => {
      const w = R.chart.clientWidth;
      if (chart && w && Math.abs(w - width) > 4) { width = w; V.drawSpeed(R.chart, chart); }
    }).observe(R.chart);
    let started = false;
    return function show() { if (!started) { started = true; load(null, null, null); } else paint(); };
  };

  /** Where charts come from: the server's GET api/bench, or an exported page's inline data. */
  V.speedSource = function (api, inline) {
    if (inline) {
      return async (op, dtype, gpu) => {
        if (!inline.available) return inline;
        const key = op ? `${op}/${dtype}/${gpu}` : inline.default;
        return inline.charts[key] || inline.charts[inline.default];
      };
    }
    return async (op, dtype, gpu) => {
      const q = new URLSearchParams();
      if (op) { q.set("op", op); q.set("dtype", dtype); q.set("gpu", gpu); }
      const res = await fetch(api + (op ? "?" + q : ""));
      const json = await res.json().catch(() => ({ error: `the server answered ${res.status}` }));
      if (!res.ok) throw new Error(json.error || `the server answered ${res.status}`);
      return json;
    };
  };
})((window.RmsViz = window.RmsViz || {}));
