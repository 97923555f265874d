/* The controller: one entry point, RmsViz.render(element, trace, options), then controls,
   playback, keyboard, editing, the views' tabs and the URL. options.api: the trace endpoint, or
   null in an exported page (playback only); options.bench: an exported page's speed charts. */
"use strict";
(function (V) {
  const SPEEDS = [0.5, 1, 2, 4, 8, 15, 30, 60]; // steps per second
  const PARAM_KEYS = { rows: "rows", n: "n", block: "block_size", eps: "eps", dtype: "dtype", seed: "seed", norm: "norm" };
  // the backward view's, beside them
  const BWD_KEYS = { brows: "rows", bn: "n", bblock: "block_size", bprogs: "programs", beps: "eps", bdtype: "dtype", bseed: "seed" };
  const cells = (m) => [...m].map(([k, v]) => `${k}:${v}`).join(",");
  function readCells(text, into) {
    for (const part of (text || "").split(",").filter(Boolean)) {
      const [k, v] = part.split(":");
      if (v !== undefined) into.set(k, Number(v));
    }
    return into;
  }

  /** Index of the trace's steps, so that any position can be shown without replaying. */
  function indexSteps(data) {
    const M = data.params.rows, nb = data.blocks.length, idx = {}, first = [], last = [];
    data.steps.forEach((s, i) => {
      const t = (idx[s.pass] = idx[s.pass] || Array.from({ length: M }, () => []));
      t[s.row][s.block === null ? 0 : t[s.row].length] = i; // block steps in visiting order
      if (first[s.row] === undefined) first[s.row] = i;
      last[s.row] = i;
    });
    for (const t of Object.values(idx)) t.forEach((row) => (row.byBlock = []));
    data.steps.forEach((s, i) => { if (s.block !== null) idx[s.pass][s.row].byBlock[s.block] = i; });
    return { idx, first, last, nb };
  }

  /** What the page shows after `pos` steps (pos = 0: before the launch). */
  function derive(data, ix, pos) {
    const cur = pos > 0 ? data.steps[pos - 1] : null, M = data.params.rows;
    const rowState = Array.from({ length: M }, (_, r) => (ix.last[r] < pos ? "done" : ix.first[r] < pos ? "active" : "waiting"));
    const visited = (pass, r) => (ix.idx[pass] ? ix.idx[pass][r].filter((i) => i < pos).length : 0);
    const done = (pass, r) => !!ix.idx[pass] && ix.idx[pass][r].every((i) => i < pos);
    const at = (pass, r, b) => ix.idx[pass][r].byBlock[b];
    return {
      pos, total: data.steps.length, cur, row: cur ? cur.row : null, block: cur ? cur.block : null,
      pass: cur ? cur.pass : null, blockN: data.kernel.block_n, rowState, visited, done,
      inState(r, b) {
        if (rowState[r] === "done") return "processed";
        if (!cur || r !== cur.row) return "";
        if (cur.block === b) return "processing";
        if (cur.block === null || at(cur.pass, r, b) < pos - 1) return "processed";
        return "";
      },
      outState(r, b) {
        const i = at("normalize", r, b);
        return i < pos - 1 ? "processed" : i === pos - 1 ? "processing" : "";
      },
    };
  }

  // ---- URL: the whole state, so that a link reproduces the view ---------------------------
  function readURL() {
    const q = new URLSearchParams(location.search), params = {}, edits = { x: new Map(), w: new Map() };
    for (const [k, key] of Object.entries(PARAM_KEYS)) {
      if (!q.has(k)) continue;
      const v = q.get(k);
      params[key] = ["dtype", "norm"].includes(key) ? v : Number(v);
    }
    readCells(q.get("x"), edits.x);
    readCells(q.get("w"), edits.w);
    const bwd = { params: {}, edits: { x: readCells(q.get("bx"), new Map()), w: readCells(q.get("bw"), new Map()), dy: readCells(q.get("bdy"), new Map()) },
      step: q.has("bstep") ? Number(q.get("bstep")) : 0 };
    for (const [k, key] of Object.entries(BWD_KEYS)) if (q.has(k)) bwd.params[key] = key === "dtype" ? q.get(k) : Number(q.get(k));
    return { params, edits, step: q.has("step") ? Number(q.get("step")) : null, speed: q.has("speed") ? Number(q.get("speed")) : null,
      mode: q.get("view") || "fwd", bwd };
  }

  function writeURL(S) {
    if (!S.api) return; // an exported file keeps its own address
    const p = S.data.params, q = new URLSearchParams();
    for (const [k, key] of Object.entries(PARAM_KEYS)) q.set(k, p[key]);
    if (S.edits.x.size) q.set("x", cells(S.edits.x));
    if (S.edits.w.size) q.set("w", cells(S.edits.w));
    q.set("step", S.pos);
    q.set("speed", S.speed);
    if (S.mode !== "fwd") q.set("view", S.mode);
    const b = S.bwd && S.bwd.data;
    if (b) {
      for (const [k, key] of Object.entries(BWD_KEYS)) q.set(k, b.params[key]);
      for (const [k, m] of [["bx", S.bwd.edits.x], ["bw", S.bwd.edits.w], ["bdy", S.bwd.edits.dy]]) if (m.size) q.set(k, cells(m));
      q.set("bstep", S.bwd.pos);
    }
    history.replaceState(null, "", "?" + q.toString());
  }

  // ---- the API --------------------------------------------------------------------------
  async function post(api, body) {
    const res = await fetch(api, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const json = await res.json().catch(() => ({ error: `the server answered ${res.status}` }));
    if (!res.ok) throw new Error(json.error || `the server answered ${res.status}`);
    return json;
  }

  /** Trace for params; with edits, x and w are the seed's values with the edited cells replaced. */
  async function fetchTrace(api, params, edits) {
    const base = await post(api, params);
    if (!edits.x.size && !edits.w.size) return base;
    const body = { ...params };
    if (edits.x.size) {
      body.x = base.x.map((row) => row.slice());
      for (const [rc, v] of edits.x) {
        const [r, c] = rc.split(".").map(Number);
        if (r < params.rows && c < params.n) body.x[r][c] = v;
      }
    }
    if (edits.w.size) {
      body.weight = base.weight.slice();
      for (const [c, v] of edits.w) if (Number(c) < params.n) body.weight[Number(c)] = v;
    }
    return post(api, body);
  }
  V.fetchTrace = fetchTrace;

  V.render = function (element, data, options = {}) {
    const R = V.skeleton(element);
    const S = { api: options.api || null, data: null, ix: null, pos: 0, playing: false, timer: null, speed: 3,
      edits: options.edits || { x: new Map(), w: new Map() }, seq: 0, reqSeq: 0, views: {}, mode: "fwd" };
    element.classList.add("rmsviz");
    element.dataset.api = S.api ? "server" : "none";
    if (!S.api) {
      R.banner.hidden = false;
      R.banner.textContent = "A static export: playback, stepping and the speed chart work offline. Changing the parameters or editing values runs the kernel, which needs `rmsnorm-triton viz`.";
      for (const k of ["rows", "n", "block", "eps", "dtype", "normRms", "normLayer", "random", "run", "reset"]) R[k].disabled = true;
      R.run.disabled = false; // plays the trace from the start
      R.editHint.hidden = true;
      R.copy.hidden = true;
    }

    function controls() {
      return { rows: Number(R.rows.value), n: Number(R.n.value), block_size: Number(R.block.value),
        eps: R.eps.value.trim() === "" ? NaN : Number(R.eps.value), dtype: R.dtype.value, seed: S.data.params.seed,
        norm: R.normLayer.getAttribute("aria-pressed") === "true" ? "layer" : "rms" };
    }

    function fillBlockChoices(n, want) {
      const choices = S.data.limits.block_choices[String(n)] || [];
      const pick = choices.includes(want) ? want : choices.filter((b) => b <= want).pop() || choices[0];
      R.block.replaceChildren(...choices.map((b) => V.h("option", { value: b, text: b })));
      if (pick !== undefined) R.block.value = String(pick);
    }

    function showControls(p) {
      R.rows.value = p.rows; R.n.value = p.n; R.eps.value = p.eps > 0 && p.eps < 1e-3 ? p.eps.toExponential() : String(p.eps); R.dtype.value = p.dtype;
      fillBlockChoices(p.n, p.block_size);
      R.normRms.setAttribute("aria-pressed", String(p.norm === "rms"));
      R.normLayer.setAttribute("aria-pressed", String(p.norm === "layer"));
    }

    function setData(d, pos) {
      S.data = d; S.ix = indexSteps(d);
      for (const rc of S.edits.x.keys()) {  // edits outside the new shape are dropped
        const [r, c] = rc.split(".").map(Number);
        if (r >= d.params.rows || c >= d.params.n) S.edits.x.delete(rc);
      }
      for (const c of S.edits.w.keys()) if (Number(c) >= d.params.n) S.edits.w.delete(c);
      S.pos = Math.max(0, Math.min(pos || 0, d.steps.length));
      showControls(d.params);
      R.device.textContent = d.device;
      if (S.mode === "fwd") R.footKernel.textContent = `kernel ${d.source.file}:${d.source.name}`;
      R.inNote.textContent = `${d.params.rows} × ${d.params.n}, ${d.params.dtype}` + (d.params.dtype === "fp32" ? "" : ", values as rounded to " + d.params.dtype);
      R.outNote.textContent = d.params.norm === "rms" ? "= x · rstd · w" : "= (x − μ) · rstd · w";
      R.srcName.textContent = `${d.source.file} · ${d.source.name}`;
      S.views.in = V.buildGrid(R.inGrid, d, d.x, { prefix: "r", kind: "x", weight: true });
      S.views.out = V.buildGrid(R.outGrid, d, d.y, { prefix: "r", kind: "y", hide: true });
      S.views.table = V.buildTable(R.calc, d);
      S.views.progs = V.buildPrograms(R.programs, d, (p) => { pause(); go(S.ix.first[p] + 1); });
      V.buildSource(R.source, d.source);
      V.compare(R.compare, d);
      R.countNote.textContent = V.countNote(d);
      element.dataset.norm = d.params.norm;
      element.dataset.traceId = String(++S.seq);
      paint();
    }

    function paint() {
      const d = S.data, st = derive(d, S.ix, S.pos);
      V.paintGrid(S.views.in, d, st, "in");
      V.paintWeight(S.views.in, d, st);
      V.paintGrid(S.views.out, d, st, "out");
      V.paintTable(S.views.table, d, st);
      V.paintStats(R.curStats, d, st);
      V.paintPrograms(S.views.progs, st);
      V.paintPartials(R.partials, d, st);
      V.paintCounters(R.counters, d, st);
      V.paintSource(R.source, d.source, st.pass);
      const ex = V.explain(d, st);
      R.exTitle.textContent = ex.title; R.exBody.textContent = ex.body; R.exFormula.textContent = ex.formula;
      R.psRow.textContent = st.row === null ? 0 : st.row;
      R.curRow.textContent = st.row === null ? "–" : String(st.row);
      R.curProg.textContent = st.cur ? `P${st.cur.program}` : "–";
      const blk = st.block === null ? null : d.blocks[st.block];
      R.blockRange.textContent = blk ? `[${blk.start}, ${blk.end})` + (blk.mask.includes(false) ? ` + ${blk.mask.filter((m) => !m).length} masked` : "")
        : st.cur ? "whole row" : "–";
      R.bar.style.width = `${(100 * S.pos) / (st.total || 1)}%`;
      R.progress.setAttribute("aria-valuemax", st.total); R.progress.setAttribute("aria-valuenow", S.pos);
      R.stepText.textContent = `step ${S.pos} of ${st.total}` + (st.cur ? ` · row ${st.row}: ${V.PASS_LABEL[st.cur.pass]}${st.block === null ? "" : ` b = ${st.block}`}` : " · before the launch");
      element.dataset.pos = String(S.pos);
      // Two frames on: rows and blocks out of view (content-visibility) get their real size
      // only in the frame that first shows them.
      const follow = () => {
        V.follow(R.inWrap, S.views.in, st); V.follow(R.outWrap, S.views.out, st);
        if (st.row === null) return;
        V.scrollWithin(R.calcWrap, S.views.table[st.row].tr);
        V.scrollWithin(R.programs, S.views.progs[st.row], 0);
        for (const hot of R.partials.querySelectorAll(".psum.hot")) V.scrollWithin(hot.parentElement, hot, 0);
      };
      requestAnimationFrame(() => requestAnimationFrame(follow));
      if (!S.playing || S.pos % 10 === 0) writeURL(S);
    }

    function go(pos) { S.pos = Math.max(0, Math.min(pos, S.data.steps.length)); paint(); }
    function pause() { S.playing = false; clearTimeout(S.timer); R.play.textContent = "Play"; writeURL(S); }
    function tick() {
      if (!S.playing) return;
      if (S.pos >= S.data.steps.length) { pause(); return; }
      go(S.pos + 1);
      S.timer = setTimeout(tick, 1000 / SPEEDS[S.speed]);
    }
    function play() {
      if (S.pos >= S.data.steps.length) go(0);
      S.playing = true; R.play.textContent = "Pause"; tick();
    }
    function setSpeed(i) {
      S.speed = Math.max(0, Math.min(SPEEDS.length - 1, i));
      R.speed.value = S.speed; R.speedOut.textContent = `${SPEEDS[S.speed]} steps/s`;
    }

    function showError(msg) { R.error.hidden = !msg; R.error.textContent = msg ? "Not run: " + msg : ""; }

    async function reload(params, then) {
      if (!S.api) return;
      const seq = ++S.reqSeq;
      element.dataset.busy = "1";
      try {
        const d = await fetchTrace(S.api, params, S.edits);
        if (seq !== S.reqSeq) return;
        showError(""); pause(); setData(d, 0);
        if (then) then();
      } catch (e) {
        if (seq === S.reqSeq) showError(e.message);
      } finally {
        if (seq === S.reqSeq) delete element.dataset.busy;
      }
    }

    let debounce = null;
    function onControl() {
      ++S.reqSeq; // an answer to an earlier request would reset the controls being edited
      clearTimeout(debounce);
      debounce = setTimeout(() => reload(controls()), 300);
    }
    R.rows.addEventListener("input", onControl);
    R.n.addEventListener("input", () => { fillBlockChoices(Number(R.n.value), Number(R.block.value)); onControl(); });
    R.eps.addEventListener("input", onControl);
    for (const k of ["block", "dtype"]) R[k].addEventListener("change", onControl);
    const setNorm = (norm) => {
      R.normRms.setAttribute("aria-pressed", String(norm === "rms"));
      R.normLayer.setAttribute("aria-pressed", String(norm === "layer"));
      clearTimeout(debounce); reload(controls());
    };
    R.normRms.addEventListener("click", () => setNorm("rms"));
    R.normLayer.addEventListener("click", () => setNorm("layer"));
    R.run.addEventListener("click", () => {
      if (!S.api) { go(0); play(); return; }
      clearTimeout(debounce); reload(controls(), play);
    });
    R.random.addEventListener("click", () => {
      S.edits.x.clear();
      reload({ ...controls(), seed: Math.floor(Math.random() * S.data.limits.seed[1]) });
    });
    R.reset.addEventListener("click", () => {
      S.edits.x.clear(); S.edits.w.clear(); setSpeed(3);
      reload({ ...S.data.limits.defaults });
    });
    R.copy.addEventListener("click", () => {
      writeURL(S);
      navigator.clipboard.writeText(location.href).then(() => (R.copy.textContent = "Link copied"), () => (R.copy.textContent = "Copy the address bar"));
      setTimeout(() => (R.copy.textContent = "Copy link"), 2000);
    });
    R.first.addEventListener("click", () => { pause(); go(0); });
    R.back.addEventListener("click", () => { pause(); go(S.pos - 1); });
    R.fwd.addEventListener("click", () => { pause(); go(S.pos + 1); });
    R.last.addEventListener("click", () => { pause(); go(S.data.steps.length); });
    R.play.addEventListener("click", () => (S.playing ? pause() : play()));
    R.speed.addEventListener("input", () => { setSpeed(Number(R.speed.value)); writeURL(S); });

    // Editing: click a cell of x (or w), type, Enter runs the kernel again; Esc cancels.
    R.inGrid.addEventListener("click", (ev) => {
      const cell = ev.target.closest(".cell[data-kind]");
      if (!cell || !S.api || cell.querySelector("input")) return;
      const kind = cell.dataset.kind, r = cell.dataset.r, c = cell.dataset.c;
      const old = kind === "w" ? S.data.weight[c] : S.data.x[r][c];
      V.editCell(cell, old, kind === "w" ? `w[${c}]` : `x[${r}][${c}]`, (v) => {
        if (kind === "w") S.edits.w.set(c, v); else S.edits.x.set(`${r}.${c}`, v);
        reload(controls());
      }, showError);
    });

    const showSpeed = V.speedView(R, V.speedSource(S.api ? "api/bench" : null, options.bench || (S.api ? null : { available: false,
      message: "This exported page carries no bench data." })));
    const showLaunch = V.launchView(R, V.launchSource(S.api ? "api/launch" : null, options.launches || null));
    const bwd = S.bwd = V.backwardView(R, { api: S.api ? "api/backward" : null, data: options.backward || null, speed: () => SPEEDS[S.speed],
      initial: options.bwd, changed: (playing) => { if (!playing || S.bwd.pos % 10 === 0) writeURL(S); } });
    const showMode = V.setupModes(element, (mode) => {
      if (mode !== "fwd") pause();
      if (mode !== "bwd") bwd.pause();
      S.mode = mode;
      if (mode === "bwd") bwd.show();
      const src = mode === "bwd" && bwd.data ? bwd.data.source : S.data.source;
      R.footKernel.textContent = mode === "gpu" ? "launches planned by layout.py and tables.py" : `kernel ${src.file}:${src.name}`;
      if (mode === "gpu") { showLaunch(); showSpeed(); }
      writeURL(S);
    });

    document.addEventListener("keydown", (e) => {
      if (e.target.closest && e.target.closest("input, select, textarea") && e.key !== "Escape") return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const k = e.key;
      const mode = { 1: "fwd", 2: "bwd", 3: "gpu" }[k];
      if (mode) { e.preventDefault(); showMode(mode); return; }
      if (S.mode === "bwd") { // the playback keys act on the trace that is shown
        const step = (to) => () => { bwd.pause(); bwd.go(to()); };
        const b = { " ": () => bwd.toggle(), ArrowRight: step(() => bwd.pos + 1), l: step(() => bwd.pos + 1),
          ArrowLeft: step(() => bwd.pos - 1), h: step(() => bwd.pos - 1), Home: step(() => 0), End: step(() => bwd.steps),
          "+": () => setSpeed(S.speed + 1), "=": () => setSpeed(S.speed + 1), "-": () => setSpeed(S.speed - 1), r: () => R.bRun.click(),
        }[k.length === 1 ? k.toLowerCase() : k];
        if (b) { e.preventDefault(); b(); }
        return;
      }
      if (S.mode !== "fwd") return;
      const act = {
        " ": () => (S.playing ? pause() : play()), ArrowRight: () => { pause(); go(S.pos + 1); }, l: () => { pause(); go(S.pos + 1); },
        ArrowLeft: () => { pause(); go(S.pos - 1); }, h: () => { pause(); go(S.pos - 1); },
        Home: () => { pause(); go(0); }, End: () => { pause(); go(S.data.steps.length); },
        "+": () => setSpeed(S.speed + 1), "=": () => setSpeed(S.speed + 1), "-": () => setSpeed(S.speed - 1),
        r: () => R.run.click(), n: () => S.api && setNorm(S.data.params.norm === "rms" ? "layer" : "rms"),
      }[k.length === 1 ? k.toLowerCase() : k];
      if (act) { e.preventDefault(); act(); }
    });

    setSpeed(options.speed ?? 3);
    setData(data, options.step || 0);
    showMode(options.mode || "fwd");
    return { go, play, pause, backward: bwd, get pos() { return S.pos; }, get data() { return S.data; } };
  };

  /** Boot: an inlined trace (exported file) or the server's API with the URL's state. */
  async function boot() {
    const el = document.getElementById("app");
    const inline = document.getElementById("trace-data").textContent.trim();
    if (inline) {
      const read = (id) => { const t = document.getElementById(id).textContent.trim(); return t ? JSON.parse(t) : null; };
      V.controller = V.render(el, JSON.parse(inline), { api: null, bench: read("bench-data"), backward: read("backward-data"),
        launches: read("launch-data") });
      return;
    }
    const url = readURL(), api = "api/trace";
    let data, err = null;
    try {
      data = await fetchTrace(api, url.params, url.edits);
    } catch (e) {
      err = e.message; url.edits.x.clear(); url.edits.w.clear();
      data = await fetchTrace(api, {}, url.edits);
    }
    V.controller = V.render(el, data, { api, edits: url.edits, step: url.step, speed: url.speed, mode: url.mode, bwd: url.bwd });
    if (err) { const box = el.querySelector("[data-ref=error]"); box.hidden = false; box.textContent = "The link's parameters were not accepted: " + err; }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot); else boot();
})((window.RmsViz = window.RmsViz || {}));
