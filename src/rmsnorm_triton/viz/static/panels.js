/* The panels beside the grids: per-row table, current-row stats, programs, block partial sums,
   byte and FLOP counters. Each has build(…) once per trace and paint(…) once per position. */
"use strict";
(function (V) {
  const h = V.h, fmt = V.fmt;

  // Per-row columns: [header, trace key]. Reductions show their running sum while in progress.
  V.COLUMNS = {
    rms: [["Sum of Squares", "sum_sq"], ["Mean Square", "mean_sq"], ["RMS", "rms"],
      ["Rstd = 1/√(MS + ε)", "rstd"]],
    layer: [["Sum Σx", "sum"], ["Mean μ", "mean"], ["Σ(x − μ)²", "sum_sq_dev"], ["Variance", "var"],
      ["Rstd = 1/√(Var + ε)", "rstd"]],
  };
  // The step (pass) after which a column's value exists.
  const READY = { sum_sq: "sum_sq", mean_sq: "stats", rms: "stats", rstd: "stats", sum: "sum",
    mean: "mean", sum_sq_dev: "sum_sq_dev", var: "stats" };
  V.PASS_LABEL = { sum_sq: "Σx² block", sum: "Σx block", mean: "mean", sum_sq_dev: "Σ(x−μ)² block",
    stats: "rstd", normalize: "y block" };
  V.REDUCTIONS = { rms: ["sum_sq"], layer: ["sum", "sum_sq_dev"] };

  /** A per-row value at this position: {text, exact, partial} or null while not computed yet. */
  V.rowValue = function (data, st, key, r) {
    const pass = READY[key];
    if (st.done(pass, r)) return { v: data[key][r], partial: false };
    if (data.partial[key]) {
      const k = st.visited(pass, r);
      if (k > 0) return { v: data.partial[key].running[r][k - 1], partial: true, k };
    }
    return null;
  };

  V.buildTable = function (table, data) {
    const cols = V.COLUMNS[data.params.norm];
    const head = h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Row" }),
      cols.map(([label, key]) => h("th", { scope: "col", "data-key": key, text: label })), h("th", { scope: "col", text: "Status" })));
    const rows = data.x.map((_, r) => {
      const cells = cols.map(([, key]) => h("td", { "data-key": key, "data-row": r }));
      const status = h("td", { class: "status" });
      return { tr: h("tr", { "data-row": r }, h("th", { scope: "row", text: r }), cells, status), cells, status };
    });
    table.replaceChildren(head, h("tbody", {}, rows.map((x) => x.tr)));
    return rows;
  };

  V.paintTable = function (rows, data, st) {
    const cols = V.COLUMNS[data.params.norm], nb = data.blocks.length;
    rows.forEach((row, r) => {
      const state = st.rowState[r];
      row.tr.className = (r === st.row && state !== "done" ? "cur" : "") + (state === "done" ? " done" : "");
      cols.forEach(([, key], i) => {
        const val = V.rowValue(data, st, key, r), td = row.cells[i];
        const text = val ? fmt(val.v, 6) + (val.partial ? " …" : "") : "–";
        if (td.textContent !== text) td.textContent = text;
        td.title = val ? (val.partial ? `running sum after ${val.k} of ${nb} blocks: ` : "") + V.exact(val.v) : "";
        td.classList.toggle("partial", !!(val && val.partial));
        if (val && !val.partial) td.dataset.value = V.exact(val.v); else delete td.dataset.value;
      });
      let status = state === "done" ? "done ✓" : "waiting";
      if (state === "active") {
        const s = st.cur;
        status = V.PASS_LABEL[s.pass] + (s.block === null ? "" : ` ${st.visited(s.pass, r)}/${nb}`);
      }
      if (row.status.textContent !== status) row.status.textContent = status;
    });
  };

  V.paintStats = function (el, data, st) {
    const r = st.row === null ? 0 : st.row;
    const keys = data.params.norm === "rms" ? [["RMS", "rms"], ["Rstd", "rstd"]] : [["Mean μ", "mean"], ["Variance", "var"], ["Rstd", "rstd"]];
    el.replaceChildren(...keys.map(([label, key]) => {
      const val = st.done(READY[key], r) ? data[key][r] : null;
      return h("div", { class: "stat" }, h("span", { class: "label", text: `Current row ${label}` }),
        h("b", { "data-key": key, title: val === null ? "" : V.exact(val), text: fmt(val, 6) }));
    }));
  };

  V.buildPrograms = function (el, data, jump) {
    const cells = data.programs.map((p) => {
      const b = h("button", { type: "button", class: "prog", title: `program ${p.program} → row ${p.row}, launched #${p.order}` },
        h("b", { text: "P" + p.program }), h("span", { text: "row " + p.row }));
      b.addEventListener("click", () => jump(p.program));
      return b;
    });
    el.replaceChildren(...cells);
    return cells;
  };

  V.paintPrograms = function (cells, st) {
    cells.forEach((c, p) => { c.className = "prog " + st.rowState[p]; });
  };

  V.paintPartials = function (el, data, st) {
    const r = st.row === null ? 0 : st.row;
    const strips = V.REDUCTIONS[data.params.norm].map((pass) => {
      const part = data.partial[pass], k = st.visited(pass, r);
      const cells = data.blocks.map((blk, b) => {
        const on = b < k, hot = st.row === r && st.cur && st.cur.pass === pass && st.cur.block === b;
        return h("div", { class: "psum" + (on ? " on" : "") + (hot ? " hot" : ""), "data-block": b },
          h("span", { class: "range", text: `b${b} [${blk.start}, ${blk.end})` }),
          h("span", { class: "val", title: on ? V.exact(part.block[r][b]) : "", text: on ? fmt(part.block[r][b], 5) : "·" }),
          h("span", { class: "run", title: on ? V.exact(part.running[r][b]) : "", text: on ? "Σ " + fmt(part.running[r][b], 5) : "" }));
      });
      return h("div", { class: "strip" }, h("p", { class: "strip-label", text: V.PASS_LABEL[pass].replace(" block", "") + " per block, then running" }),
        h("div", { class: "strip-cells" }, cells));
    });
    el.replaceChildren(...strips);
  };

  V.paintCounters = function (el, data, st) {
    const c = data.cost[data.params.norm], cur = st.cur;
    const rows = [["Loaded", "loaded", V.bytes], ["Stored", "stored", V.bytes], ["FLOPs", "flops", V.count]];
    el.replaceChildren(...rows.map(([label, key, f]) => {
      const now = cur ? cur[key] : 0, top = Math.max(c.total[key], c.minimum[key]) || 1;
      return h("div", { class: "counter" },
        h("div", { class: "clabel" }, h("b", { text: label }), h("span", { "data-key": key, text: f(now) })),
        h("div", { class: "cbar" }, h("div", { class: "cfill", style: `width:${(100 * now) / top}%` }),
          h("div", { class: "cmin", style: `left:${(100 * c.minimum[key]) / top}%`, title: "minimum" })),
        h("div", { class: "csub", text: `this launch ${f(c.total[key])} · minimum ${f(c.minimum[key])}` + (cur && cur["d_" + key] ? ` · this step +${f(cur["d_" + key])}` : "") }));
    }));
  };
})((window.RmsViz = window.RmsViz || {}));
