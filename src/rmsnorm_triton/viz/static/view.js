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
  /** At most 7 characters, for grid cells: 4 significant digits where they fit, else fewer. */
  V.fmtCell = function (v) {
    if (typeof v !== "number") return V.fmt(v);
    for (const sig of [4, 3]) { const t = V.fmt(v, sig); if (t.length <= 7) return t; }
    return v.toExponential(v < 0 ? 1 : 2).replace(/\.?0+e/, "e");
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
  /** Turns a grid cell into an input holding `old`: Enter calls commit(value) with a finite
   *  number, or fail(message) with anything else; Escape or leaving the box restores the cell. */
  V.editCell = function (cell, old, name, commit, fail) {
    const box = V.h("input", { class: "edit", type: "text", inputmode: "decimal", value: V.exact(old), "aria-label": name });
    const text = cell.textContent;
    cell.replaceChildren(box); box.focus(); box.select();
    let closed = false;
    const close = (ok) => {
      if (closed) return; closed = true;
      const v = Number(box.value);
      cell.textContent = text;
      if (!ok) return;
      if (box.value.trim() === "" || !Number.isFinite(v)) fail(`${name} must be a finite number, got "${box.value}"`);
      else commit(v);
    };
    box.addEventListener("keydown", (e) => { if (e.key === "Enter") close(true); if (e.key === "Escape") close(false); e.stopPropagation(); });
    box.addEventListener("blur", () => close(false));
  };
  const h = V.h;

  // ---- skeleton --------------------------------------------------------------------------
  V.SKELETON = `
<header class="top">
  <h1>RMSNorm, one kernel step at a time</h1>
  <p class="sub">Every number on this page was computed by <code>rmsnorm_triton</code>'s own Triton
  kernel, run in trace mode on <b data-ref="device">…</b>, or measured by its bench. The page
  formats them; it computes none.</p>
</header>
<p class="banner" data-ref="banner" hidden></p>
<div class="modes" role="tablist" aria-label="What the page shows">
  <button type="button" role="tab" id="tab-fwd" data-mode="fwd" aria-controls="view-fwd" aria-selected="true">Forward<span> trace</span></button>
  <button type="button" role="tab" id="tab-bwd" data-mode="bwd" aria-controls="view-bwd" aria-selected="false" tabindex="-1">Backward<span> trace</span></button>
  <button type="button" role="tab" id="tab-gpu" data-mode="gpu" aria-controls="view-gpu" aria-selected="false" tabindex="-1">How the GPU runs it</button>
</div>
<div class="view" role="tabpanel" id="view-fwd" aria-labelledby="tab-fwd" data-ref="viewFwd">
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
      <div class="table-wrap calc-wrap" data-ref="calcWrap"><table class="calc" data-ref="calc"></table></div>
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
</div>
<div class="view" role="tabpanel" id="view-bwd" aria-labelledby="tab-bwd" data-ref="viewBwd" hidden>
<section class="controls" aria-label="Backward parameters">
  <label><span>Rows <abbr title="rows of x and dy">M</abbr></span><input data-ref="bRows" type="number" min="1" max="64" step="1"></label>
  <label><span>Feature dim <abbr title="elements per row">N</abbr></span><input data-ref="bN" type="number" min="1" max="256" step="1"></label>
  <label><span>Block size</span><select data-ref="bBlock"></select></label>
  <label><span>Programs <abbr title="program p walks rows p, p + P, …; one dw partial row each">P</abbr></span><input data-ref="bProgs" type="number" min="1" max="64" step="1"></label>
  <label><span>Epsilon ε</span><input data-ref="bEps" type="text" inputmode="decimal" spellcheck="false" autocomplete="off"></label>
  <label><span>dtype</span><select data-ref="bDtype"><option>fp32</option><option>fp16</option><option>bf16</option></select></label>
  <div class="buttons">
    <button type="button" data-ref="bRandom">Random Input</button>
    <button type="button" data-ref="bRun" class="primary">Run Backward</button>
    <button type="button" data-ref="bReset">Reset</button>
  </div>
  <p class="error" data-ref="bError" role="alert" hidden></p>
</section>
<section class="player" aria-label="Backward playback">
  <div class="transport">
    <button type="button" data-ref="bFirst" title="First step (Home)" aria-label="First step">|◀︎</button>
    <button type="button" data-ref="bBack" title="Step back (←)" aria-label="Step back">◀︎</button>
    <button type="button" data-ref="bPlay" class="primary play" title="Play / pause (Space)">Play</button>
    <button type="button" data-ref="bFwd" title="Step forward (→)" aria-label="Step forward">▶︎</button>
    <button type="button" data-ref="bLast" title="Last step (End)" aria-label="Last step">▶︎|</button>
  </div>
  <div class="progress" role="progressbar" data-ref="bProgress" aria-valuemin="0"><div class="fill" data-ref="bBar"></div></div>
  <p class="step-text" data-ref="bStepText"></p>
</section>
<div class="layout">
  <div class="col-main">
    <section class="panel">
      <h2>Input x and weight w <small data-ref="bInNote"></small></h2>
      <div class="grid-wrap" data-ref="bInWrap"><div class="grid" data-ref="bInGrid"></div></div>
    </section>
    <section class="panel">
      <h2>Upstream gradient dy <small>= ∂loss/∂y</small></h2>
      <div class="grid-wrap" data-ref="bDyWrap"><div class="grid" data-ref="bDyGrid"></div></div>
      <p class="hint" data-ref="bEditHint">Click a cell of x, w or dy to change it; the backward runs again.</p>
    </section>
    <section class="panel">
      <h2>Per-row calculations</h2>
      <div class="table-wrap calc-wrap" data-ref="bCalcWrap"><table class="calc" data-ref="bCalc"></table></div>
    </section>
    <section class="panel">
      <h2>dx <small>= rstd · (w·dy − x̂ · c1)</small></h2>
      <div class="grid-wrap" data-ref="bDxWrap"><div class="grid" data-ref="bDxGrid"></div></div>
    </section>
    <section class="panel">
      <h2>dw <small>one fp32 partial row per program, then dw_reduce</small></h2>
      <div class="grid-wrap" data-ref="bPartWrap"><div class="grid" data-ref="bPartGrid"></div></div>
      <div class="grid-wrap dw-wrap"><div class="grid" data-ref="bDwGrid"></div></div>
      <ul class="legend"><li><i class="sw cur"></i>current row</li><li><i class="sw processing"></i>processing</li>
        <li><i class="sw processed"></i>done in this walk</li><li><i class="sw masked"></i>masked lane</li></ul>
    </section>
  </div>
  <div class="col-side">
    <section class="panel explain" aria-live="polite">
      <h2 data-ref="bExTitle"></h2><p data-ref="bExBody"></p><pre class="formula" data-ref="bExFormula"></pre>
    </section>
    <section class="panel"><h2>Bytes so far</h2><div class="counters" data-ref="bCounters"></div>
      <p class="note">The minimum reads x, dy and w once and rstd, and writes dx and dw once. The second walk
      reads x, dy and w again (mostly from L2 on a GPU), and each program reads and writes its fp32 dw partial row.</p></section>
    <section class="panel"><h2>Kernel source <small data-ref="bSrcName"></small></h2>
      <div class="source" data-ref="bSource" tabindex="0"></div></section>
  </div>
</div>
</div>
<div class="view" role="tabpanel" id="view-gpu" aria-labelledby="tab-gpu" data-ref="viewGpu" hidden>
  <section class="panel launch" data-ref="launchPanel" aria-labelledby="launch-title">
    <h2 id="launch-title">The launch the library makes <small>rows over programs, programs over SMs</small></h2>
    <div class="speed-controls">
      <label><span>Op</span><select data-ref="lOp"><option value="fwd">forward</option><option value="bwd">backward</option></select></label>
      <label><span>Rows <abbr title="rows: every dim of x but the last, multiplied">M</abbr></span><input data-ref="lM" type="text" inputmode="numeric" spellcheck="false" autocomplete="off"></label>
      <label><span>Feature dim <abbr title="elements per row">N</abbr></span><input data-ref="lN" type="text" inputmode="numeric" spellcheck="false" autocomplete="off"></label>
      <label><span>dtype</span><select data-ref="lDtype"><option>bf16</option><option>fp16</option><option>fp32</option></select></label>
      <label><span>GPU</span><select data-ref="lGpu"></select></label>
    </div>
    <p class="banner" data-ref="lNote" hidden></p>
    <p class="error" data-ref="lError" role="alert" hidden></p>
    <div class="launch-out" data-ref="launchOut" aria-live="polite"></div>
  </section>
  <section class="panel speedpanel" aria-labelledby="speed-title">
    <h2 id="speed-title">Measured speed <small>GB/s against N, from the bench's data file</small></h2>
    <div class="speed-controls">
      <label><span>Op</span><select data-ref="speedOp"></select></label>
      <label><span>dtype</span><select data-ref="speedDtype"></select></label>
      <label><span>GPU</span><select data-ref="speedGpu"></select></label>
    </div>
    <p class="banner" data-ref="speedMissing" hidden></p>
    <p class="error" data-ref="speedError" role="alert" hidden></p>
    <div class="chart" data-ref="chart"></div>
    <ul class="chart-legend" data-ref="chartLegend"></ul>
    <p class="note" data-ref="speedNote"></p>
    <details class="speed-numbers"><summary>The numbers</summary>
      <div class="table-wrap"><table class="speed-table" data-ref="speedTable"></table></div></details>
  </section>
</div>
<section class="panel keys"><h2>Keyboard shortcuts</h2><dl class="keylist">
  <dt><kbd>Space</kbd></dt><dd>play / pause</dd><dt><kbd>→</kbd> or <kbd>L</kbd></dt><dd>step forward</dd>
  <dt><kbd>←</kbd> or <kbd>H</kbd></dt><dd>step back</dd><dt><kbd>Home</kbd> / <kbd>End</kbd></dt><dd>first / last step</dd>
  <dt><kbd>+</kbd> / <kbd>-</kbd></dt><dd>faster / slower</dd><dt><kbd>R</kbd></dt><dd>run the kernel and play</dd>
  <dt><kbd>N</kbd></dt><dd>toggle RMSNorm / LayerNorm</dd><dt><kbd>Esc</kbd></dt><dd>cancel a cell edit</dd>
  <dt><kbd>1</kbd> <kbd>2</kbd> <kbd>3</kbd></dt><dd>forward trace / backward trace / how the GPU runs it</dd>
  <dt><kbd>←</kbd> <kbd>→</kbd> on a tab</dt><dd>the previous / next view</dd></dl>
  <p class="note">Playback keys act on the trace that is shown.</p></section>
<footer><p>Served by <code>rmsnorm-triton viz</code> · <span data-ref="footKernel"></span></p></footer>`;

  /** Builds the skeleton inside el; returns {name: element} for every data-ref. */
  V.skeleton = function (el) {
    el.innerHTML = V.SKELETON;
    const refs = {};
    el.querySelectorAll("[data-ref]").forEach((n) => (refs[n.dataset.ref] = n));
    return refs;
  };

  // ---- grids ----------------------------------------------------------------------------
  // A grid is rows of blocks of cells. State lives on the block element (one class change per
  // block per step) and offscreen rows and blocks skip rendering (content-visibility), so that
  // a 64 x 256 grid of 16,384 cells still steps quickly.
  const MANY_MASKED = 8; // past this, a block's masked lanes are drawn as one wide cell

  /** Builds a tensor grid: rows of values (x or y), optionally the weight row. */
  V.buildGrid = function (gridEl, data, values, opts) {
    const n = data.params.n, bn = data.kernel.block_n, nb = data.blocks.length;
    const masked = data.blocks[nb - 1].mask.filter((m) => !m).length;
    gridEl.replaceChildren();
    const blockEls = (label, make) => data.blocks.map((blk) => {
      const kids = [];
      for (let c = blk.start; c < blk.end; c++) kids.push(make(c));
      if (blk.index === nb - 1 && masked) kids.push(...make(null));
      const lanes = blk.end - blk.start + (blk.index === nb - 1 ? Math.min(masked, MANY_MASKED + 1) : 0);
      return h("div", { class: "blk", "data-b": blk.index,
        style: `contain-intrinsic-size: auto calc(${lanes} * (var(--cell-w) + 2px)) auto 22px` }, kids);
    });
    const head = blockEls("", (c) => {
      if (c !== null) return h("div", { class: "colhead", text: c });
      if (masked > MANY_MASKED) return [h("div", { class: "colhead masked-head wide", text: "masked" })];
      return Array.from({ length: masked }, (_, k) => h("div", { class: "colhead masked-head", title: "masked lane", text: n + k }));
    });
    gridEl.append(h("div", { class: "grow head" }, h("div", { class: "rowlabel corner" }), head));
    const addRow = (label, vals, r, kind) => {
      const row = { cells: [], state: [], cls: "" }, name = kind === "w" ? "w" : `${kind}[${r}]`;
      const tail = () => {
        if (masked > MANY_MASKED) {
          return [h("div", { class: "cell masked wide", title: `lanes ${n}..${n + masked - 1} of block ${nb - 1}: masked, nothing loaded or stored` }, `+${masked} lanes`)];
        }
        return Array.from({ length: masked }, (_, k) => h("div", { class: "cell masked",
          title: `lane ${n + k} of block ${nb - 1}: masked (c ≥ N = ${n}), not loaded; reads as 0` }, "×"));
      };
      row.blocks = blockEls(label, (c) => {
        if (c === null) return tail();
        const v = vals[c];
        const cell = h("div", { class: "cell", "data-r": r, "data-c": c, "data-kind": kind,
          title: v === null ? `${name}[${c}]` : `${name}[${c}] = ${V.exact(v)} (block ${Math.floor(c / bn)})` }, v === null ? "·" : V.fmtCell(v));
        row.cells.push(cell);
        return cell;
      });
      row.label = h("div", { class: "rowlabel", text: label });
      row.el = h("div", { class: "grow" }, row.label, row.blocks);
      gridEl.append(row.el);
      return row;
    };
    const rows = values.map((vals, r) => addRow(opts.prefix + r, opts.hide ? vals.map(() => null) : vals, r, opts.kind));
    const weight = opts.weight ? addRow("w", data.weight, 0, "w") : null;
    if (weight) weight.el.classList.add("wrow");
    return { rows, weight, last: {} };
  };

  V.paintGrid = function (grid, data, st, kind) {
    const bn = data.kernel.block_n, n = data.params.n;
    grid.rows.forEach((row, r) => {
      const cls = "grow" + (r === st.row ? " cur" : "") + (st.rowState[r] === "done" ? " done" : "");
      if (row.cls !== cls) row.el.className = row.cls = cls;
      row.blocks.forEach((blk, b) => {
        const s = kind === "in" ? st.inState(r, b) : st.outState(r, b);
        if (row.state[b] === s) return;
        const shown = !!s, was = !!row.state[b];
        row.state[b] = s;
        blk.className = "blk" + (s ? " " + s : "");
        if (kind === "out" && shown !== was) {
          for (let c = b * bn; c < Math.min(n, (b + 1) * bn); c++) {
            const cell = row.cells[c];
            cell.textContent = shown ? V.fmtCell(data.y[r][c]) : "·";
            cell.title = shown ? `y[${r}][${c}] = ${V.exact(data.y[r][c])}` : `y[${r}][${c}]: not stored yet`;
          }
        }
      });
    });
  };

  /** The weight row: its blocks are loaded by the normalize steps. */
  V.paintWeight = function (grid, data, st) {
    if (!grid.weight) return;
    const hot = st.pass === "normalize" ? st.block : null;
    grid.weight.blocks.forEach((blk, b) => {
      const cls = "blk" + (b === hot ? " processing" : "");
      if (blk.className !== cls) blk.className = cls;
    });
  };

  /** Scrolls a grid's wrapper (not the page) to the current row and block, when they change.
      A row scrolled into view is laid out in the next frame, so the sideways scroll waits. */
  V.follow = function (wrap, grid, st, again) {
    const key = `${st.row}/${st.block}`;
    if (st.row === null || !grid.rows[st.row] || grid.last.follow === key) return;
    const blk = grid.rows[st.row].blocks[st.block === null ? 0 : st.block];
    const w = wrap.getBoundingClientRect(), c = blk.getBoundingClientRect();
    if (c.top < w.top + 24 || c.bottom > w.bottom) {
      wrap.scrollTop += c.top - w.top - wrap.clientHeight / 2;
      if (!again) {
        requestAnimationFrame(() => requestAnimationFrame(() => V.follow(wrap, grid, st, true)));
        return;
      }
    }
    grid.last.follow = key;
    const pad = 44; // the sticky row labels cover the left edge
    if (c.left < w.left + pad) wrap.scrollLeft -= w.left + pad - c.left;
    else if (c.right > w.right) wrap.scrollLeft += Math.min(c.right - w.right + 6, c.left - w.left - pad);
  };

  /** Scrolls container (not the page) so that el is in view, with room for a sticky header. */
  V.scrollWithin = function (container, el, head = 30) {
    if (!container || !el) return;
    const w = container.getBoundingClientRect(), c = el.getBoundingClientRect();
    if (c.top < w.top + head || c.bottom > w.bottom) container.scrollTop += c.top - w.top - container.clientHeight / 2;
    if (c.left < w.left || c.right > w.right) container.scrollLeft += c.left - w.left - container.clientWidth / 2;
  };

  // ---- source ----------------------------------------------------------------------------
  V.buildSource = function (el, src) {
    delete el.dataset.kind;
    el.replaceChildren(...src.lines.map((text, i) => h("div", { class: "line", "data-line": src.first_line + i },
      h("span", { class: "ln", text: src.first_line + i }), h("code", { text: text || " " }))));
  };

  V.paintSource = function (el, src, kind) {
    if (el.dataset.kind === String(kind)) return;
    el.dataset.kind = String(kind);
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
