/* The backward view: the library's backward block loop and dw_reduce, traced (POST
   api/backward, or an exported page's inline trace), stepped through as the forward is. dy is
   editable like x and w. Numbers come from the trace; this file only shows them. */
"use strict";
(function (V) {
  const h = V.h, fmt = V.fmt;
  const LABEL = { c1_sum: "Σ x·w·dy block", c1: "c1", dx: "dx block", reduce: "dw reduce", dw: "dw store" };

  /** Per step position: indexes of the trace, built once per trace. */
  function index(d) {
    const M = d.params.rows, first = [], last = [], at = { c1_sum: [], dx: [] }, c1 = [];
    let reduceFirst = d.steps.length;
    d.steps.forEach((s, i) => {
      if (s.row !== null) {
        if (first[s.row] === undefined) first[s.row] = i;
        last[s.row] = i;
      } else if (i < reduceFirst) reduceFirst = i;
      if (at[s.pass]) (at[s.pass][s.row] = at[s.pass][s.row] || [])[s.block] = i;
      if (s.pass === "c1") c1[s.row] = i;
    });
    for (let r = 0; r < M; r++) { at.c1_sum[r] = at.c1_sum[r] || []; at.dx[r] = at.dx[r] || []; }
    const progOf = [], prevRow = [];
    d.programs.forEach((p) => p.rows.forEach((r, k) => { progOf[r] = p.program; prevRow[r] = k ? p.rows[k - 1] : null; }));
    return { first, last, at, c1, reduceFirst, progOf, prevRow };
  }

  function explain(d, ix, pos) {
    const s = pos > 0 ? d.steps[pos - 1] : null, P = d.kernel.programs, nb = d.blocks.length;
    if (!s) {
      return { title: "Before the launch", formula: "dx = rstd · (w·dy − x̂ · c1)\nc1 = mean(x̂ · w·dy)\ndw = Σ_rows dy · x̂",
        body: `${P} program${P > 1 ? "s" : ""} walk the ${d.params.rows} rows (program p takes rows p, p + ${P}, …). Each row is walked twice: first for c1, which needs the whole row, then for dx. Each program adds its rows' dy · x̂ to its own dw partial row; dw_reduce then sums those rows in a fixed order: no atomics, so dw is the same bit for bit on every run.` };
    }
    const r = s.row, tag = r === null ? `dw_reduce program ${s.program}` : `Row ${r} · program ${s.program}`;
    const blk = s.block === null ? null : d.blocks[s.block];
    const lanes = blk ? `columns ${blk.start}…${blk.end - 1}` + (blk.mask.includes(false) ? ` (+${blk.mask.filter((m) => !m).length} masked lanes)` : "") : "";
    switch (s.pass) {
      case "c1_sum": {
        const k = ix.at.c1_sum[r].indexOf(pos - 1);
        return { title: `${tag} · walk 1, block ${k + 1} of ${nb}`, body: `The program loads x, dy and w for ${lanes}, and adds x · (w·dy) lane by lane to its accumulator. c1 needs this sum over the whole row before any dx can be written.`,
          formula: `block Σ x·w·dy = ${fmt(d.partial.block[r][s.block], 6)}\nrunning        = ${fmt(d.partial.running[r][s.block], 6)}` };
      }
      case "c1":
        return { title: `${tag} · c1`, body: "The accumulator's lanes are summed, and scaled by this row's rstd (saved by the forward) over N: c1 is the mean of x̂ · w·dy.",
          formula: `c1 = Σ · rstd / N = ${fmt(d.partial.running[r][nb - 1], 6)} · ${fmt(d.rstd[r], 6)} / ${d.params.n}\n   = ${fmt(d.c1[r], 6)}` };
      case "dx": {
        const c = blk.start, prev = ix.prevRow[r];
        return { title: `${tag} · walk 2, block ${nb - s.block} of ${nb} (last first)`,
          body: `The program reloads x, dy and w for ${lanes}, walking the row from its last block (the likeliest still in L2). It writes dx and adds dy · x̂ to its dw partial row${prev === null ? " (its first row: the partial starts here)" : `, which holds rows up to ${prev} so far`}.`,
          formula: `dx[${r}][${c}] = rstd · (w·dy − x̂ · c1) = ${fmt(d.dx[r][c], 6)}\npartial[P${s.program}][${c}] = ${fmt(d.dw_after_row[r][c], 6)}` };
      }
      case "reduce":
        return { title: `${tag} · sum of partial rows ${s.parts[0]}…${s.parts[1] - 1}`,
          body: `dw_reduce loads the partial rows ${s.parts[0]} to ${s.parts[1] - 1} for columns ${s.cols[0]}…${s.cols[1] - 1} (${d.kernel.reduce.block_p} rows a load) and adds them in an order its code fixes: no atomics, so dw is bitwise the same on every run.`,
          formula: `dw[c] = Σ_p partial[p][c],  p = 0 … ${P - 1}` };
      case "dw":
        return { title: `${tag} · store dw`, body: `dw for columns ${s.cols[0]}…${s.cols[1] - 1}, rounded to ${d.params.dtype}.`,
          formula: `dw[${s.cols[0]}] = ${fmt(d.dw[s.cols[0]], 6)}` };
    }
    return { title: s.pass, body: "", formula: "" };
  }

  function buildTable(table, d) {
    const head = h("thead", {}, h("tr", {}, ["Row", "Program", "rstd", "Σ x·w·dy", "c1 = mean(x̂·w·dy)", "Status"].map((t) => h("th", { scope: "col", text: t }))));
    const rows = d.x.map((_, r) => {
      const cells = ["rstd", "sum", "c1"].map((k) => h("td", { "data-key": k, "data-row": r }));
      const status = h("td", { class: "status" });
      return { tr: h("tr", { "data-row": r }, h("th", { scope: "row", text: r }), h("td", { text: "P" + d.programs.findIndex((p) => p.rows.includes(r)) }), cells, status), cells, status };
    });
    table.replaceChildren(head, h("tbody", {}, rows.map((x) => x.tr)));
    return rows;
  }

  /** Shows the backward trace d at position pos in the view's refs R (built by setData). */
  function paint(R, G, d, ix, pos) {
    const cur = pos > 0 ? d.steps[pos - 1] : null, nb = d.blocks.length, N = d.params.n;
    const done = (i) => i !== undefined && i < pos - 1, now = (i) => i === pos - 1;
    const rowState = (r) => (ix.last[r] < pos ? "done" : ix.first[r] < pos ? "active" : "waiting");
    const setCls = (el, cls) => { if (el.className !== cls) el.className = cls; };
    // x and dy: the current row's blocks by the walk it is in
    for (const grid of [G.x, G.dy]) {
      grid.rows.forEach((row, r) => {
        const st = rowState(r), isCur = cur && cur.row === r;
        setCls(row.el, "grow" + (isCur ? " cur" : "") + (st === "done" ? " done" : ""));
        row.blocks.forEach((blk, b) => {
          let s = st === "done" ? " processed" : "";
          if (isCur) {
            const i = ix.at[cur.pass] ? ix.at[cur.pass][r][b] : undefined;
            s = now(i) ? " processing" : done(i) || cur.pass === "c1" ? " processed" : "";
          }
          setCls(blk, "blk" + s);
        });
      });
    }
    G.x.weight.blocks.forEach((blk, b) => setCls(blk, "blk" + (cur && cur.block === b && cur.row !== null ? " processing" : "")));
    // dx: a block appears when its step has run
    G.dx.rows.forEach((row, r) => row.blocks.forEach((blk, b) => {
      const i = ix.at.dx[r][b], shown = i < pos;
      setCls(blk, "blk" + (now(i) ? " processing" : shown ? " processed" : ""));
      const key = shown ? 1 : 0;
      if (row.state[b] === key) return;
      row.state[b] = key;
      for (let c = d.blocks[b].start; c < d.blocks[b].end; c++) {
        row.cells[c].textContent = shown ? V.fmtCell(d.dx[r][c]) : "·";
        row.cells[c].title = shown ? `dx[${r}][${c}] = ${V.exact(d.dx[r][c])}` : `dx[${r}][${c}]: not stored yet`;
      }
    }));
    // dw partials: each program's row as of its latest row whose dx walk reached the block
    const reducing = cur && cur.pass === "reduce";
    G.part.rows.forEach((row, p) => row.blocks.forEach((blk, b) => {
      let src = null;
      for (const r of d.programs[p].rows) if (ix.at.dx[r][b] < pos) src = r;
      const hot = (cur && cur.pass === "dx" && cur.program === p && cur.block === b) || (reducing && p >= cur.parts[0] && p < cur.parts[1]);
      setCls(blk, "blk" + (hot ? " processing" : src !== null ? " processed" : ""));
      if (row.state[b] === src) return;
      row.state[b] = src;
      for (let c = d.blocks[b].start; c < d.blocks[b].end; c++) {
        const v = src === null ? null : d.dw_after_row[src][c];
        row.cells[c].textContent = v === null ? "·" : V.fmtCell(v);
        row.cells[c].title = v === null ? `partial[P${p}][${c}]: nothing added yet` : `partial[P${p}][${c}] = ${V.exact(v)} (rows up to ${src})`;
      }
    }));
    const dwShown = d.steps.some((s, i) => s.pass === "dw" && i < pos);
    G.dw.rows[0].blocks.forEach((blk) => setCls(blk, "blk" + (dwShown ? " processed" : reducing ? " processing" : "")));
    if (G.dw.rows[0].state[0] !== dwShown) {
      G.dw.rows[0].state[0] = dwShown;
      G.dw.rows[0].cells.forEach((cell, c) => { cell.textContent = dwShown ? V.fmtCell(d.dw[c]) : "·"; cell.title = dwShown ? `dw[${c}] = ${V.exact(d.dw[c])}` : `dw[${c}]: not reduced yet`; });
    }
    // per-row table
    G.table.forEach((row, r) => {
      const st = rowState(r), k = ix.at.c1_sum[r].filter((i) => i < pos).length;
      setCls(row.tr, (cur && cur.row === r && st !== "done" ? "cur" : "") + (st === "done" ? " done" : ""));
      const vals = [[d.rstd[r], false], k ? [d.partial.running[r][k - 1], k < nb] : null, ix.c1[r] < pos ? [d.c1[r], false] : null];
      vals.forEach((v, i) => {
        const td = row.cells[i], text = v ? fmt(v[0], 6) + (v[1] ? " …" : "") : "–";
        if (td.textContent !== text) td.textContent = text;
        td.title = v ? V.exact(v[0]) : "";
        td.classList.toggle("partial", !!(v && v[1]));
        if (v && !v[1]) td.dataset.value = V.exact(v[0]); else delete td.dataset.value;
      });
      const status = st === "done" ? "done ✓" : st === "waiting" ? "waiting" : LABEL[cur.pass] + (cur.block === null ? "" : ` ${ix.at[cur.pass][r].filter((i) => i < pos).length}/${nb}`);
      if (row.status.textContent !== status) row.status.textContent = status;
    });
    const ex = explain(d, ix, pos);
    R.bExTitle.textContent = ex.title; R.bExBody.textContent = ex.body; R.bExFormula.textContent = ex.formula;
    const src = cur && (cur.pass === "reduce" || cur.pass === "dw") ? d.reduce_source : d.source;
    if (R.bSource.dataset.fn !== src.name) { V.buildSource(R.bSource, src); R.bSource.dataset.fn = src.name; R.bSrcName.textContent = `${src.file} · ${src.name}`; }
    V.paintSource(R.bSource, src, cur ? cur.pass : null);
    const c = d.cost;
    R.bCounters.replaceChildren(...[["Loaded", "loaded"], ["Stored", "stored"]].map(([label, key]) => {
      const v = cur ? cur[key] : 0, top = Math.max(c.total[key], c.minimum[key]) || 1;
      return h("div", { class: "counter" }, h("div", { class: "clabel" }, h("b", { text: label }), h("span", { "data-key": key, text: V.bytes(v) })),
        h("div", { class: "cbar" }, h("div", { class: "cfill", style: `width:${(100 * v) / top}%` }), h("div", { class: "cmin", style: `left:${(100 * c.minimum[key]) / top}%` })),
        h("div", { class: "csub", text: `this launch ${V.bytes(c.total[key])} · minimum ${V.bytes(c.minimum[key])}` + (cur && cur["d_" + key] ? ` · this step +${V.bytes(cur["d_" + key])}` : "") }));
    }));
    R.bBar.style.width = `${(100 * pos) / (d.steps.length || 1)}%`;
    R.bProgress.setAttribute("aria-valuemax", d.steps.length); R.bProgress.setAttribute("aria-valuenow", pos);
    R.bStepText.textContent = `step ${pos} of ${d.steps.length}` + (cur ? ` · ${cur.row === null ? "dw_reduce" : `row ${cur.row}`}: ${LABEL[cur.pass]}${cur.block === null ? "" : ` b = ${cur.block}`}` : " · before the launch");
    R.viewBwd.dataset.pos = String(pos);
    const follow = () => {
      if (!cur || cur.row === null) return;
      for (const [wrap, g] of [[R.bInWrap, G.x], [R.bDyWrap, G.dy], [R.bDxWrap, G.dx]]) V.follow(wrap, g, { row: cur.row, block: cur.block });
      if (cur.pass === "dx") V.follow(R.bPartWrap, G.part, { row: cur.program, block: cur.block });
      V.scrollWithin(R.bCalcWrap, G.table[cur.row].tr);
    };
    requestAnimationFrame(() => requestAnimationFrame(follow));
  }

  /** The backward view's controller. opts: {api (POST endpoint or null), data (a trace to show
      first, or null: fetch on first show), speed() (steps per second), initial ({params,
      edits, step} from a link), changed(playing) (after each position shown)}. */
  V.backwardView = function (R, opts) {
    const init = opts.initial || { params: {}, edits: null, step: 0 };
    const S = { d: null, ix: null, G: null, pos: 0, playing: false, timer: null, seq: 0,
      edits: init.edits || { x: new Map(), w: new Map(), dy: new Map() } };
    const params = () => ({ rows: Number(R.bRows.value), n: Number(R.bN.value), block_size: Number(R.bBlock.value), programs: Number(R.bProgs.value),
      eps: R.bEps.value.trim() === "" ? NaN : Number(R.bEps.value), dtype: R.bDtype.value, seed: S.d ? S.d.params.seed : 0 });
    const fillBlocks = (n, want) => {
      const choices = (S.d && S.d.limits.block_choices[String(n)]) || [];
      const pick = choices.includes(want) ? want : choices.filter((b) => b <= want).pop() || choices[0];
      R.bBlock.replaceChildren(...choices.map((b) => h("option", { value: b, text: b })));
      if (pick !== undefined) R.bBlock.value = String(pick);
    };
    function setData(d) {
      S.d = d; S.ix = index(d); S.pos = 0;
      const p = d.params;
      for (const [name, m] of [["x", S.edits.x], ["dy", S.edits.dy]]) for (const k of m.keys()) { const [r, c] = k.split(".").map(Number); if (r >= p.rows || c >= p.n) m.delete(k); }
      for (const c of S.edits.w.keys()) if (Number(c) >= p.n) S.edits.w.delete(c);
      R.bRows.value = p.rows; R.bN.value = p.n; R.bProgs.value = p.programs; R.bProgs.max = p.rows; R.bDtype.value = p.dtype;
      R.bEps.value = p.eps > 0 && p.eps < 1e-3 ? p.eps.toExponential() : String(p.eps);
      fillBlocks(p.n, p.block_size);
      R.bInNote.textContent = `${p.rows} × ${p.n}, ${p.dtype}` + (p.dtype === "fp32" ? "" : ", as rounded to " + p.dtype);
      const zeros = Array.from({ length: p.programs }, () => new Array(p.n).fill(null));
      S.G = { x: V.buildGrid(R.bInGrid, d, d.x, { prefix: "r", kind: "x", weight: true }),
        dy: V.buildGrid(R.bDyGrid, d, d.dy, { prefix: "r", kind: "dy" }),
        dx: V.buildGrid(R.bDxGrid, d, d.dx, { prefix: "r", kind: "dx", hide: true }),
        part: V.buildGrid(R.bPartGrid, d, zeros, { prefix: "P", kind: "part", hide: true }),
        dw: V.buildGrid(R.bDwGrid, d, [d.dw], { prefix: "dw", kind: "dwv", hide: true }), table: buildTable(R.bCalc, d) };
      S.G.dw.rows[0].label.textContent = "dw";
      R.viewBwd.dataset.traceId = String(++S.seq);
      if (!R.viewBwd.hidden) R.footKernel.textContent = `kernel ${d.source.file}:${d.source.name}`;
      R.bError.hidden = true;
      paint(R, S.G, d, S.ix, 0);
      if (opts.changed) opts.changed(false);
    }
    const go = (pos) => { S.pos = Math.max(0, Math.min(pos, S.d.steps.length)); paint(R, S.G, S.d, S.ix, S.pos); if (opts.changed) opts.changed(S.playing); };
    const pause = () => { const was = S.playing; S.playing = false; clearTimeout(S.timer); R.bPlay.textContent = "Play"; if (was && opts.changed) opts.changed(false); };
    const tick = () => { if (!S.playing) return; if (S.pos >= S.d.steps.length) { pause(); return; } go(S.pos + 1); S.timer = setTimeout(tick, 1000 / opts.speed()); };
    const play = () => { if (S.pos >= S.d.steps.length) go(0); S.playing = true; R.bPlay.textContent = "Pause"; tick(); };
    async function post(body) {
      const res = await fetch(opts.api, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const json = await res.json().catch(() => ({ error: `the server answered ${res.status}` }));
      if (!res.ok) throw new Error(json.error || `the server answered ${res.status}`);
      return json;
    }
    async function reload(p, then) {
      if (!opts.api) return;
      const my = ++S.reqSeq;
      R.viewBwd.dataset.busy = "1";
      try {
        let d = await post(p);
        if (S.edits.x.size || S.edits.w.size || S.edits.dy.size) {
          const body = { ...p };
          for (const [key, name] of [["x", "x"], ["dy", "dy"]]) {
            if (!S.edits[key].size) continue;
            body[name] = d[name].map((row) => row.slice());
            for (const [rc, v] of S.edits[key]) { const [r, c] = rc.split(".").map(Number); if (r < p.rows && c < p.n) body[name][r][c] = v; }
          }
          if (S.edits.w.size) { body.weight = d.weight.slice(); for (const [c, v] of S.edits.w) if (Number(c) < p.n) body.weight[Number(c)] = v; }
          d = await post(body);
        }
        if (my !== S.reqSeq) return;
        pause(); setData(d);
        if (then) then();
      } catch (e) {
        if (my === S.reqSeq) { R.bError.hidden = false; R.bError.textContent = "Not run: " + e.message; }
      } finally {
        if (my === S.reqSeq) delete R.viewBwd.dataset.busy;
      }
    }
    S.reqSeq = 0;
    let debounce = null;
    // an answer to an earlier request would reset the controls being edited: drop it
    const onControl = () => { ++S.reqSeq; clearTimeout(debounce); debounce = setTimeout(() => reload(params()), 300); };
    for (const k of ["bRows", "bProgs", "bEps"]) R[k].addEventListener("input", onControl);
    R.bN.addEventListener("input", () => { fillBlocks(Number(R.bN.value), Number(R.bBlock.value)); onControl(); });
    for (const k of ["bBlock", "bDtype"]) R[k].addEventListener("change", onControl);
    R.bRun.addEventListener("click", () => { if (!opts.api) { go(0); play(); return; } clearTimeout(debounce); reload(params(), play); });
    R.bRandom.addEventListener("click", () => { S.edits.dy.clear(); reload({ ...params(), seed: Math.floor(Math.random() * 2147483647) }); });
    R.bReset.addEventListener("click", () => { for (const m of Object.values(S.edits)) m.clear(); reload({ ...S.d.limits.defaults }); });
    R.bFirst.addEventListener("click", () => { pause(); go(0); });
    R.bBack.addEventListener("click", () => { pause(); go(S.pos - 1); });
    R.bFwd.addEventListener("click", () => { pause(); go(S.pos + 1); });
    R.bLast.addEventListener("click", () => { pause(); go(S.d.steps.length); });
    R.bPlay.addEventListener("click", () => (S.playing ? pause() : play()));
    for (const grid of [R.bInGrid, R.bDyGrid]) {
      grid.addEventListener("click", (ev) => {
        const cell = ev.target.closest(".cell[data-kind]");
        if (!cell || !opts.api || cell.querySelector("input")) return;
        const kind = cell.dataset.kind, r = cell.dataset.r, c = cell.dataset.c;
        const old = kind === "w" ? S.d.weight[c] : S.d[kind][r][c];
        V.editCell(cell, old, kind === "w" ? `w[${c}]` : `${kind}[${r}][${c}]`, (v) => {
          if (kind === "w") S.edits.w.set(c, v); else S.edits[kind].set(`${r}.${c}`, v);
          reload(params());
        }, (msg) => { R.bError.hidden = false; R.bError.textContent = `Not run: ${msg}`; });
      });
    }
    if (!opts.api) {
      for (const k of ["bRows", "bN", "bBlock", "bProgs", "bEps", "bDtype", "bRandom", "bReset"]) R[k].disabled = true;
      R.bEditHint.hidden = true;
    }
    let started = false;
    return {
      show() {
        if (started) return;
        started = true;
        if (opts.data) setData(opts.data);
        else if (opts.api) {
          reload(init.params, () => go(init.step || 0)).then(async () => {
            if (S.d || R.bError.hidden) return;
            const why = R.bError.textContent.replace(/^Not run: /, ""); // a link's bad parameters
            for (const m of Object.values(S.edits)) m.clear();
            await reload({});
            R.bError.hidden = false; R.bError.textContent = "The link's backward parameters were not accepted: " + why;
          });
        }
        else { R.bError.hidden = false; R.bError.textContent = "This exported page carries no backward trace."; }
      },
      go: (p) => S.d && go(p), play: () => S.d && play(), pause, toggle: () => S.d && (S.playing ? pause() : play()),
      get pos() { return S.pos; }, get data() { return S.d; }, get steps() { return S.d ? S.d.steps.length : 0; }, edits: S.edits,
    };
  };
})((window.RmsViz = window.RmsViz || {}));
