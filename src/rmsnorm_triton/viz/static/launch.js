/* "How the GPU runs it": the launch the library's planning code makes for (op, M, N, dtype) on
   a chosen GPU (GET api/launch, or the launches an exported page carries), drawn as rows over
   programs and programs over SMs, with the bytes and the nearest measured cell of the bench.
   Every number is the server's; this file only lays them out. */
"use strict";
(function (V) {
  const h = V.h;
  const WALK = {
    one_pass: "One pass: the row stays in registers, read once",
    split: "SPLIT: each row is cut over several programs that meet through partial sums",
    loop: "Block loop: the row is walked in blocks, twice",
  };
  const OP = { fwd: "forward", bwd: "backward", latency_graph: "forward, per call replayed in a CUDA graph" };
  const n0 = (v) => Number(v).toLocaleString("en-US");
  const MB = (b) => (b >= 1e9 ? `${(b / 1e9).toPrecision(4)} GB` : b >= 1e6 ? `${(b / 1e6).toPrecision(4)} MB` : b >= 1e3 ? `${(b / 1e3).toPrecision(4)} KB` : `${b} B`);

  function fact(term, value, key, note) {
    return [h("dt", { text: term }), h("dd", { "data-key": key }, h("b", { text: value }), note ? h("span", { class: "muted", text: " " + note }) : null)];
  }

  /** The SMs as squares: full in the first wave, lighter where it holds fewer programs than
      fit, grey where idle. */
  function smPicture(L) {
    const sms = L.gpu.sms, per = L.resident_per_sm, full = Math.floor(L.waves), last = L.waves - full;
    const cells = [];
    const lastProgs = Math.round(last * sms * per);
    for (let i = 0; i < sms; i++) {
      const inLast = lastProgs > 0 ? Math.max(0, Math.min(per, lastProgs - i * per)) : 0;
      cells.push(h("i", { class: "sm" + (full >= 1 || inLast === per ? " busy" : inLast ? " part" : ""), title: `SM ${i}: ` +
        (full >= 1 ? `${per} program${per > 1 ? "s" : ""} at once` : inLast ? `${inLast} program${inLast > 1 ? "s" : ""}` : "idle") }));
    }
    return h("div", { class: "sms", role: "img", "aria-label": `${sms} SMs; ${L.waves.toFixed(2)} waves` }, cells);
  }

  /** A row of N elements as the walk cuts it: blocks, and which program owns each. */
  function rowPicture(L) {
    const c = L.config, chunks = L.chunks, cut = Math.min(chunks, 64);
    const kids = [];
    for (let i = 0; i < cut; i++) {
      kids.push(h("i", { class: "chunk " + L.walk, style: `flex-grow:${Math.min(L.params.n - i * c.block_n, c.block_n)}`,
        title: L.walk === "split" ? `chunk ${i}: program ${i} of the row's group` : `block ${i}` }));
    }
    const label = L.walk === "split" ? `${chunks} chunks of ${n0(c.block_n)}: one program each, meeting through partial sums`
      : L.walk === "loop" ? `${chunks} blocks of ${n0(c.block_n)}, walked by one program twice`
        : `one block of ${n0(c.block_n)} lanes (${n0(L.params.n)} used)` + (c.block_m > 1 ? `, ${c.block_m} rows a program` : "");
    return h("div", { class: "rowcut" }, h("div", { class: "chunks" }, kids), h("p", { class: "note", text: (chunks > cut ? `(first ${cut} of ${chunks}) ` : "") + label }));
  }

  V.drawLaunch = function (el, L) {
    const c = L.config, p = L.params, g = L.gpu, b = L.bytes, m = L.measured;
    const shape = L.walk === "split" ? [`${L.programs_per_row} programs per row`, "programs_per_row",
      `each holding ${n0(c.block_n)} of the row's ${n0(p.n)}; ${n0(L.grid / L.chunks)} such groups take ${n0(L.rows_per_group)} rows each`]
      : [`${n0(L.rows_per_program)} row${L.rows_per_program > 1 ? "s" : ""} per program`, "rows_per_program",
        L.persistent ? `(${L.config.block_m} a tile, tiles p, p + ${n0(L.grid)}, …)` : c.block_m > 1 ? `(BLOCK_M = ${c.block_m})` : ""];
    const facts = [
      ...fact("Row walk", WALK[L.walk], "walk"),
      ...fact("Layout", shape[0], shape[1], shape[2]),
      ...fact("Block", `${c.block_m} × ${n0(c.block_n)}, ${c.num_warps} warps`, "block", c.maxnreg ? `(≤ ${c.maxnreg} registers a thread)` : ""),
      ...fact("Grid", `${n0(L.grid)} programs`, "grid", L.persistent ? "(persistent: each loops over its share)" : ""),
      ...fact("Waves", L.waves >= 0.995 ? `${L.waves.toFixed(2)} over ${g.sms} SMs` : `${Math.min(100, L.waves * 100).toPrecision(2)}% of one wave`, "waves",
        `(${L.resident_per_sm} program${L.resident_per_sm > 1 ? "s" : ""} an SM at once: ${L.resident_basis}` + (L.waves < 1 ? `; ${n0(L.grid)} programs on ${n0(Math.min(L.grid, g.sms))} of ${g.sms} SMs)` : ")")),
      ...fact("Bytes it must move", MB(b.must), "must", "(each tensor once: the bench's count)"),
      ...fact("Bytes its loads and stores ask for", MB(b.moves), "moves", `(${(b.moves / b.must).toFixed(2)}× the minimum: ${b.parts.map(([w, v]) => `${w} ${MB(v)}`).join(", ")}; repeat reads mostly hit L2)`),
    ];
    const measured = m
      ? h("p", { class: "measured", "data-key": "measured" }, h("b", { text: `${m.pct_copy.toFixed(1)}% of copy, ${n0(Math.round(m.gbps))} GB/s` }),
        ` measured at M = ${n0(m.M)}, N = ${n0(m.N)} (${OP[m.op] || m.op}, ${m.dtype}) on ${m.gpu}` +
        (m.exact ? ": this very cell" : `: the bench's nearest cell to M = ${n0(p.m)}, N = ${n0(p.n)}`) +
        (m.same_gpu ? "" : `; the data file has no ${g.name} run yet`) + ` (run of ${m.date}, commit ${m.commit}).`)
      : h("p", { class: "measured", "data-key": "measured", text: L.measured_note || "No measured cell for this op and dtype in the bench's data file." });
    el.replaceChildren(
      h("h3", { text: `${OP[p.op]}, M = ${n0(p.m)}, N = ${n0(p.n)}, ${p.dtype} on ${g.name}` }),
      h("dl", { class: "facts" }, facts), measured,
      h("h3", { text: "One row" }), rowPicture(L),
      h("h3", { text: `The SMs in the first wave (${g.sms} on ${g.name})` }), smPicture(L),
      h("p", { class: "note", text: `Chosen by ${L.chosen_by.join(", ")} with ${g.name}'s properties from the library's table (${g.sms} SMs, compute capability ${g.cc.join(".")}, tables: ${g.table}), not from a GPU here. ${L.caveat}` }));
  };

  /** The panel's controller. source(query) -> Promise of a launch. Returns show(). */
  V.launchView = function (R, source) {
    let seq = 0, started = false;
    const FIELDS = { op: "lOp", m: "lM", n: "lN", dtype: "lDtype", gpu: "lGpu" };
    const query = () => ({ op: R.lOp.value, m: R.lM.value.trim(), n: R.lN.value.trim(), dtype: R.lDtype.value, gpu: R.lGpu.value });
    async function load(q) {
      const my = ++seq, sent = query();
      R.launchPanel.dataset.busy = "1";
      try {
        const L = await source(q);
        if (my !== seq) return;
        R.lError.hidden = true;
        if (!R.lGpu.options.length) R.lGpu.replaceChildren(...L.gpus.map((g) => h("option", { value: g.key, text: `${g.key} (${g.sms} SMs)` })));
        // the launch's own values (the defaults, an export's nearest), where not changed since
        for (const [k, ref] of Object.entries(FIELDS)) if (R[ref].value.trim() === sent[k]) R[ref].value = L.params[k];
        if (L.offline_note) { R.lNote.hidden = false; R.lNote.textContent = L.offline_note; }
        V.drawLaunch(R.launchOut, L);
        R.launchPanel.dataset.key = `${L.params.op}/${L.params.m}/${L.params.n}/${L.params.dtype}/${L.params.gpu}`;
      } catch (e) {
        if (my === seq) { R.lError.hidden = false; R.lError.textContent = "Not planned: " + e.message; }
      } finally {
        if (my === seq) delete R.launchPanel.dataset.busy;
      }
    }
    let debounce = null;
    const onInput = () => { clearTimeout(debounce); debounce = setTimeout(() => load(query()), 250); };
    for (const k of ["lM", "lN"]) R[k].addEventListener("input", onInput);
    for (const k of ["lOp", "lDtype", "lGpu"]) R[k].addEventListener("change", () => load(query()));
    return function show() { if (!started) { started = true; load({}); } };
  };

  /** Launches from the server's GET api/launch, or from an exported page's table of them. */
  V.launchSource = function (api, inline) {
    if (!api) {
      return async (q) => {
        if (!inline) throw new Error("this exported page carries no launches");
        const near = (list, v) => list.reduce((a, b) => (Math.abs(Math.log2(b / v)) < Math.abs(Math.log2(a / v)) ? b : a));
        const m = near(inline.ms, Number(q.m || inline.default.m) || 1), n = near(inline.ns, Number(q.n || inline.default.n) || 1);
        const key = [q.op || inline.default.op, m, n, q.dtype || inline.default.dtype, q.gpu || inline.default.gpu].join("/");
        const L = inline.launches[key];
        if (!L) throw new Error(`no launch for ${key} in this exported page`);
        return { ...L, gpus: inline.gpus, offline_note: `An exported page carries the launches for M in ${inline.ms.map(n0).join(", ")} and N in ${inline.ns.map(n0).join(", ")}; other values snap to the nearest. rmsnorm-triton viz plans any M and N.` };
      };
    }
    return async (q) => {
      const p = new URLSearchParams(Object.entries(q).filter(([, v]) => v !== "" && v !== undefined));
      const res = await fetch(api + (p.toString() ? "?" + p : ""));
      const json = await res.json().catch(() => ({ error: `the server answered ${res.status}` }));
      if (!res.ok) throw new Error(json.error || `the server answered ${res.status}`);
      return json;
    };
  };
})((window.RmsViz = window.RmsViz || {}));
