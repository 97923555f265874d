/* The visualizer's views: the page skeleton, the grids and tables, and `paint`, which shows one
   position of the trace. Numbers are only formatted here; all of them come from the trace. */
"use strict";
(function (V) {
  // ---- formatting ------------------------------------------------------------------------
  const SPECIAL = { inf: "∞", "-inf": "-∞", nan: "NaN" };
  /** A trace number as text, `sig` significant digits; non-finite ones arrive as strings. */
  V.fmt = function (v, sig = 5) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "string") return SPECIAL[v] || v;
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 1e5 || a < 1e-3) return v.toExponential(sig - 1).replace(/\.?0+e/, "e");
    return String(Number(v.toPrecision(sig)));
  };
  V.exact = (v) => (typeof v === "string" ? SPECIAL[v] || v : String(v));
  V.bytes = (b) => b.toLocaleString("en-US") + " B";
  V.count = (b) => b.toLocaleString("en-US");

  /** h("div", {class: "x"}, child, "text") */
  V.h = function (tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") el.textContent = v;
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat()) {
      if (kid !== null && kid !== undefined) el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  };
  const h = V.h;

  // ---- skeleton --------------------------------------------------------------------------
  V.SKELETON = `
<header class="top">
  <h1>RMSNorm, one kernel step at a time</h1>
  <p class="sub">Every number on this page was computed by <code>rmsnorm_triton</code>'s own Triton
  kernel, run in trace mode on <b data-ref="device">…</b>. The page formats them; it computes none.</p>
</header>
<p class="banner" data-ref="banner" hidden></p>
<section class="controls" aria-label="Kernel parameters">
  <label><span>Rows <abbr title="rows of x, one program each">M</abbr></span><input data-ref="rows" type="number" min="1" max="64" step="1"></label>
  <label><span>Feature dim <abbr title="elements per row">N</abbr></span><input data-ref="n" type="number" min="1" max="256" step="1"></label>
  <label><span>Block size</span><select data-ref="block"></select></label>
  <label><span>Epsilon ε</span><input data-ref="eps" type="text" inputmode="decimal" spellcheck="false" autocomplete="off"></label>
  <label><span>dtype</span><select data-ref="dtype"><option>fp32</option><option>fp16</option><option>bf16</option></select></label>
  <div class="norm-toggle" role="group" aria-label="Normalization">
    <button type="button" data-ref="normRms" data-norm="rms">RMSNorm</button><button type="button" data-ref="normLayer" data-norm="layer">LayerNorm</button>
  </div>
  <div class="buttons">
    <button type="button" data-ref="random">Random Input</button>
    <button type="button" data-ref="run" class="primary">Run Kernel</button>
    <button type="button" data-ref="reset">Reset</button>
    <button type="button" data-ref="copy" title="Copy a link that reproduces this view">Copy link</button>
  </div>
  <p class="error" data-ref="error" role="alert" hidden></p>
</section>
<section class="player" aria-label="Playback">
  <div class="transport">
    <button type="button" data-ref="first" title="First step (Home)" aria-label="First step">|◀︎</button>
    <button type="button" data-ref="back" title="Step back (←)" aria-label="Step back">◀︎</button>
    <button type="button" data-ref="play" class="primary play" title="Play / pause (Space)">Play</button>
    <button type="button" data-ref="fwd" title="Step forward (→)" aria-label="Step forward">▶︎</button>
    <button type="button" data-ref="last" title="Last step (End)" aria-label="Last step">▶︎|</button>
    <label class="speed">Speed<input data-ref="speed" type="range" min="0" max="7" step="1"><output data-ref="speedOut"></output></label>
  </div>
  <div class="progress" role="progressbar" data-ref="progress" aria-valuemin="0"><div class="fill" data-ref="bar"></div></div>
  <p class="step-text" data-ref="stepText"></p>
</section>
<div class="layout">
  <div class="col-main">
    <section class="panel">
      <h2>Input x <small data-ref="inNote"></small></h2>
      <div class="readouts"><span>Current Row: <b data-ref="curRow">–</b></span>
        <span>Block Range: <b data-ref="blockRange">–</b></span><span>Program: <b data-ref="curProg">–</b></span></div>
      <div class="grid-wrap" data-ref="inWrap"><div class="grid" data-ref="inGrid"></div></div>
      <ul class="legend"><li><i class="sw cur"></i>current row</li><li><i class="sw processing"></i>processing</li>
        <li><i class="sw processed"></i>processed in this pass</li><li><i class="sw masked"></i>masked lane (c ≥ N, not loaded)</li></ul>
      <p class="hint" data-ref="editHint">Click a cell of x or of the weight w to change it; the kernel runs again.</p>
    </section>
    <section class="panel">
      <h2>Per-row calculations</h2>
      <div class="table-wrap"><table class="calc" data-ref="calc"></table></div>
    </section>
    <section class="panel">
      <h2>Output y <small data-ref="outNote"></small></h2>
      <div class="grid-wrap" data-ref="outWrap"><div class="grid" data-ref="outGrid"></div></div>
      <div class="stats" data-ref="curStats"></div>
    </section>
  </div>
  <div class="col-side">
    <section class="panel explain" aria-live="polite">
      <h2 data-ref="exTitle"></h2><p data-ref="exBody"></p><pre class="formula" data-ref="exFormula"></pre>
    </section>
    <section class="panel"><h2>Bytes and FLOPs so far</h2><div class="counters" data-ref="counters"></div>
      <p class="note" data-ref="countNote"></p></section>
    <section class="panel"><h2>Programs <small>grid = (M,)</small></h2>
      <p class="note">Program p normalizes row p. On a GPU they run at once, spread over the SMs;
      the trace plays them in launch order. Click one to jump to it.</p>
      <div class="programs" data-ref="programs"></div>
      <h3>Block partial sums · row <span data-ref="psRow">0</span></h3><div class="partials" data-ref="partials"></div>
    </section>
    <section class="panel"><h2>Kernel source <small data-ref="srcName"></small></h2>
      <div class="source" data-ref="source" tabindex="0"></div></section>
  </div>
</div>
<section class="panel compare" data-ref="compare"></section>
<section class="panel keys"><h2>Keyboard shortcuts</h2><dl class="keylist">
  <dt><kbd>Space</kbd></dt><dd>play / pause</dd><dt><kbd>→</kbd> or <kbd>L</kbd></dt><dd>step forward</dd>
  <dt><kbd>←</kbd> or <kbd>H</kbd></dt><dd>step back</dd><dt><kbd>Home</kbd> / <kbd>End</kbd></dt><dd>first / last step</dd>
  <dt><kbd>+</kbd> / <kbd>-</kbd></dt><dd>faster / slower</dd><dt><kbd>R</kbd></dt><dd>run the kernel and play</dd>
  <dt><kbd>N</kbd></dt><dd>toggle RMSNorm / LayerNorm</dd><dt><kbd>Esc</kbd></dt><dd>cancel a cell edit</dd></dl></section>
<footer><p>Served by <code>rmsnorm-triton viz</code> · kernel <code data-ref="footKernel"></code></p></footer>`;

  /** Builds the skeleton inside el; returns {name: element} for every data-ref. */
  V.skeleton = function (el) {
    el.innerHTML = V.SKELETON;
    const refs = {};
    el.querySelectorAll("[data-ref]").forEach((n) => (refs[n.dataset.ref] = n));
    return refs;
  };

  // ---- grids -----------------------------------------------------------------------------
  const MANY_MASKED = 8; // past this, the masked tail is drawn as one wide cell

  /** Builds a tensor grid: rows of values (x or y), optionally a weight row. Returns cells. */
  V.buildGrid = function (gridEl, data, values, opts) {
    const n = data.params.n, blocks = data.blocks, last = blocks[blocks.length - 1];
    const masked = last.mask.filter((m) => !m).length;
    const extra = masked > MANY_MASKED ? 3 : masked;
    gridEl.style.gridTemplateColumns = `2.6em repeat(${n + extra}, var(--cell-w))`;
    gridEl.replaceChildren();
    const blockOf = (c) => Math.floor(c / data.kernel.block_n);
    const head = [h("div", { class: "corner" })];
    for (let c = 0; c < n; c++) {
      head.push(h("div", { class: "colhead" + (c % data.kernel.block_n === 0 ? " bstart" : ""), text: c }));
    }
    if (masked) head.push(h("div", { class: "colhead masked-head", style: `grid-column: span ${extra}`, text: "masked" }));
    gridEl.append(...head);
    const addRow = (label, vals, r, kind) => {
      const row = { label: h("div", { class: "rowlabel", text: label }), cells: [], tail: [] };
      gridEl.append(row.label);
      vals.forEach((v, c) => {
        const cell = h("div", {
          class: "cell" + (c % data.kernel.block_n === 0 ? " bstart" : ""), "data-r": r, "data-c": c,
          "data-kind": kind, title: `${label}[${c}] = ${V.exact(v)} (block ${blockOf(c)})`,
        }, V.fmt(v, 4));
        row.cells.push(cell);
        gridEl.append(cell);
      });
      if (masked > MANY_MASKED) {
        row.tail.push(h("div", { class: "cell masked wide", style: `grid-column: span ${extra}`,
          title: `lanes ${n}..${n + masked - 1} of block ${last.index}: masked, nothing loaded or stored` }, `+${masked} lanes`));
      } else {
        for (let k = 0; k < masked; k++) {
          row.tail.push(h("div", { class: "cell masked", title: `lane ${n + k} of block ${last.index}: masked (c ≥ N = ${n}), not loaded; reads as 0` }, "×"));
        }
      }
      gridEl.append(...row.tail);
      return row;
    };
    const rows = values.map((vals, r) => addRow(opts.prefix + r, opts.hide ? vals.map(() => null) : vals, r, opts.kind));
    const weight = opts.weight ? addRow("w", data.weight, 0, "w") : null;
    if (weight) weight.label.classList.add("wlabel");
    return { rows, weight, blockOf };
  };

  /** Sets a class list once, touching the DOM only when it changed. */
  function setCls(el, cls) { if (el.className !== cls) el.className = cls; }

  V.paintGrid = function (grid, data, st, kind) {
    const bn = data.kernel.block_n;
    grid.rows.forEach((row, r) => {
      const cur = r === st.row;
      setCls(row.label, "rowlabel" + (cur ? " cur" : "") + (st.rowState[r] === "done" ? " done" : ""));
      row.cells.forEach((cell, c) => {
        const b = Math.floor(c / bn);
        let s = kind === "in" ? st.inState(r, b) : st.outState(r, b);
        let cls = "cell" + (c % bn === 0 ? " bstart" : "") + (cur ? " cur" : "") + (s ? " " + s : "");
        if (kind === "out") {
          const shown = s === "processed" || s === "processing";
          const text = shown ? V.fmt(data.y[r][c], 4) : "·";
          if (cell.textContent !== text) cell.textContent = text;
          cell.title = shown ? `y[${r}][${c}] = ${V.exact(data.y[r][c])}` : `y[${r}][${c}]: not stored yet`;
        }
        setCls(cell, cls);
      });
      const tailHot = cur && st.block === data.blocks.length - 1 && st.pass !== "stats";
      row.tail.forEach((t) => setCls(t, "cell masked" + (t.classList.contains("wide") ? " wide" : "") + (tailHot ? " hot" : "")));
    });
  };

  /** The weight row: its cells are loaded by the normalize steps. */
  V.paintWeight = function (grid, data, st) {
    if (!grid.weight) return;
    const bn = data.kernel.block_n, hot = st.pass === "normalize" ? st.block : null;
    grid.weight.cells.forEach((cell, c) => {
      setCls(cell, "cell wcell" + (c % bn === 0 ? " bstart" : "") + (Math.floor(c / bn) === hot ? " processing" : ""));
    });
  };

  /** Scrolls a grid's wrapper (not the page) so that the current row and block are visible. */
  V.follow = function (wrap, grid, st) {
    if (st.row === null || !grid.rows[st.row]) return;
    const b = st.block === null ? 0 : st.block;
    const cell = grid.rows[st.row].cells[Math.min(b * st.blockN, grid.rows[st.row].cells.length - 1)];
    if (!cell) return;
    const w = wrap.getBoundingClientRect(), c = cell.getBoundingClientRect();
    if (c.left < w.left + 40 || c.right > w.right) wrap.scrollLeft += c.left - w.left - 40;
    if (c.top < w.top + 20 || c.bottom > w.bottom) wrap.scrollTop += c.top - w.top - wrap.clientHeight / 2;
  };

  // ---- source ----------------------------------------------------------------------------
  V.buildSource = function (el, src) {
    el.replaceChildren(...src.lines.map((text, i) => h("div", { class: "line", "data-line": src.first_line + i },
      h("span", { class: "ln", text: src.first_line + i }), h("code", { text: text || " " }))));
  };

  V.paintSource = function (el, src, kind) {
    const hot = new Set(kind ? src.step_lines[kind] || [] : []);
    let first = null;
    for (const line of el.children) {
      const on = hot.has(Number(line.dataset.line));
      line.classList.toggle("hot", on);
      if (on && !first) first = line;
    }
    if (first) {
      const top = first.offsetTop, bottom = top + first.offsetHeight * (hot.size + 1);
      if (top < el.scrollTop || bottom > el.scrollTop + el.clientHeight) el.scrollTop = Math.max(0, top - 40);
    }
  };
})((window.RmsViz = window.RmsViz || {}));
