/* The words: what the current step does, with its formula and the trace's numbers in it; and the
   RMSNorm / LayerNorm comparison. */
"use strict";
(function (V) {
  const h = V.h, fmt = V.fmt;

  function lanes(data, b) {
    const blk = data.blocks[b], off = blk.mask.filter((m) => !m).length;
    const range = blk.end - blk.start === 1 ? `column ${blk.start}` : `columns ${blk.start}…${blk.end - 1}`;
    return range + (off ? ` (+${off} masked lane${off > 1 ? "s" : ""}: c ≥ N, loaded as 0)` : "");
  }

  function runningBefore(data, pass, r, b) {
    return b === 0 ? "0" : fmt(data.partial[pass].running[r][b - 1]);
  }

  function example(data, r, b) {
    const c = data.blocks[b].start, p = data.params;
    const x = fmt(data.x[r][c]), w = fmt(data.weight[c]), y = fmt(data.y[r][c]);
    if (p.norm === "rms") {
      const cast = p.dtype === "fp32" ? "" : `, rounded to ${p.dtype}`;
      return `y[${r},${c}] = (x · rstd${cast}) · w\n        = (${x} · ${fmt(data.rstd[r])}) · ${w} = ${y}`;
    }
    return `y[${r},${c}] = (x − μ) · rstd · w\n        = (${x} − ${fmt(data.mean[r])}) · ${fmt(data.rstd[r])} · ${w} = ${y}`;
  }

  /** {title, body, formula} for the position st. */
  V.explain = function (data, st) {
    const p = data.params, k = data.kernel, nb = data.blocks.length, M = p.rows, N = p.n;
    if (!st.cur) {
      const walk = k.one_pass
        ? `The row fits one block of ${k.block_n} lanes (N = ${N} ≤ BLOCK_N), so each program loads it once and keeps it in registers.`
        : `A row takes ${nb} blocks of ${k.block_n}; each program walks its row ${p.norm === "rms" ? "twice: once to reduce, once to normalize" : "three times: mean, variance, normalize"}.`;
      return { title: "The launch", body: `${data.source.name}[grid](…) starts ${M} program${M > 1 ? "s" : ""}, one per row. ${walk} Press Play or → to step through it.`,
        formula: p.norm === "rms" ? "y = x / √(mean(x²) + ε) · w" : "y = (x − mean(x)) / √(var(x) + ε) · w" };
    }
    const s = st.cur, r = s.row, b = s.block, blk = b === null ? null : data.blocks[b];
    const tag = `Row ${r} · program ${s.program}`;
    if (st.pos === st.total) {
      const e = data.error;
      return { title: "Done: every row normalized", body: `All ${M} programs have stored their rows of y. Compared with the float64 reference, the largest difference is ${fmt(e.y_max_abs, 3)}, ${e.within_tolerance ? "inside" : "OUTSIDE"} the ${p.dtype} tolerance (relative ${fmt(e.tolerance_rel, 3)}).`,
        formula: `max |y − y_ref| = ${fmt(e.y_max_abs, 3)}` };
    }
    switch (s.pass) {
      case "sum_sq":
      case "sum": {
        const sq = s.pass === "sum_sq", part = data.partial[s.pass];
        const what = sq ? "squares the lanes and adds them up with one tl.sum" : "adds the lanes up with one tl.sum (the mean needs the total first)";
        const extra = sq ? "" : "This pass is the one RMSNorm does without. ";
        return { title: `${tag} · ${sq ? "sum of squares" : "pass 1, the sum"}, block ${b + 1} of ${nb}`,
          body: `${extra}The program loads ${lanes(data, b)}, ${what}, and adds the block's result to a running sum held in a register.`,
          formula: `block ${sq ? "Σ x²" : "Σ x"} = ${fmt(part.block[r][b])}\nrunning   = ${runningBefore(data, s.pass, r, b)} + ${fmt(part.block[r][b])} = ${fmt(part.running[r][b])}` };
      }
      case "mean":
        return { title: `${tag} · the mean`, body: "With the row summed, the program divides by N. The variance cannot start before this: it is measured around the mean.",
          formula: `μ = Σx / N = ${fmt(data.sum[r])} / ${N} = ${fmt(data.mean[r])}` };
      case "sum_sq_dev": {
        const part = data.partial.sum_sq_dev;
        const again = k.one_pass ? "The row is still in registers" : `The program reads ${lanes(data, b)} again`;
        return { title: `${tag} · pass 2, squared deviations, block ${b + 1} of ${nb}`,
          body: `${again}, subtracts μ, squares and sums. Masked lanes are set to 0 with tl.where first; left alone they would each add μ².`,
          formula: `block Σ(x − μ)² = ${fmt(part.block[r][b])}\nrunning        = ${runningBefore(data, s.pass, r, b)} + ${fmt(part.block[r][b])} = ${fmt(part.running[r][b])}` };
      }
      case "stats":
        if (p.norm === "rms") {
          return { title: `${tag} · mean square and rstd`, body: "The whole row is reduced. The program turns the sum into the statistics and stores rstd (the backward pass reads it). RMS is traced for the table; the kernel itself only needs rstd.",
            formula: `mean_sq = Σx² / N = ${fmt(data.sum_sq[r])} / ${N} = ${fmt(data.mean_sq[r])}\nrstd    = 1 / √(mean_sq + ε) = 1 / √(${fmt(data.mean_sq[r])} + ${fmt(p.eps)}) = ${fmt(data.rstd[r])}\nRMS     = √mean_sq = ${fmt(data.rms[r])}` };
        }
        return { title: `${tag} · variance and rstd`, body: "The program divides by N for the variance, then takes rstd; it stores μ and rstd for the backward pass.",
          formula: `var  = Σ(x − μ)² / N = ${fmt(data.sum_sq_dev[r])} / ${N} = ${fmt(data.var[r])}\nrstd = 1 / √(var + ε) = 1 / √(${fmt(data.var[r])} + ${fmt(p.eps)}) = ${fmt(data.rstd[r])}` };
      case "normalize": {
        let how;
        if (k.one_pass) how = "The row is still in registers, so only the weight is loaded";
        else if (p.norm === "rms") how = `Second walk, last block first (the likeliest still in L2): the program reloads x and w for ${lanes(data, b)}`;
        else how = `Third walk: the program reloads x and w for ${lanes(data, b)}`;
        const cast = p.norm === "rms" && p.dtype !== "fp32" ? ` x · rstd is rounded to ${p.dtype} before the weight, as Llama does.` : "";
        return { title: `${tag} · normalize, block ${b + 1} of ${nb}`, body: `${how}, scales by rstd and stores y.${cast}`, formula: example(data, r, b) };
      }
    }
    return { title: s.pass, body: "", formula: "" };
  };

  /** The RMSNorm / LayerNorm comparison, with this launch's costs from the trace. */
  V.compare = function (el, data) {
    const c = data.cost, cur = data.params.norm;
    const cost = (n, key, f) => `${f(c[n].total[key])} (min ${f(c[n].minimum[key])})`;
    const rows = [
      ["What it removes from a row", "its scale: divides by the root mean square", "its offset and its scale: subtracts the mean, divides by the standard deviation"],
      ["Statistics per row", "one: Σx²", "two: Σx, then Σ(x − μ)²"],
      ["Reductions that wait on each other", "none: a single reduction", "the variance waits for the mean"],
      ["Reads of a row longer than a block", "2 (reduce, normalize)", "3 (mean, variance, normalize)"],
      ["Learned parameters", "weight w", "weight w and bias b"],
      ["Adding a constant to every x", "changes y", "leaves y unchanged"],
      ["FLOPs per element (about)", "4", "7"],
      ["This launch: bytes loaded", cost("rms", "loaded", V.bytes), cost("layer", "loaded", V.bytes)],
      ["This launch: FLOPs", cost("rms", "flops", V.count), cost("layer", "flops", V.count)],
      ["Typical models", "Llama, Mistral, Gemma, Qwen, T5", "BERT, GPT-2, ViT, Whisper"],
    ];
    const th = (t, n) => h("th", { scope: "col", class: n === cur ? "now" : null, text: t });
    el.replaceChildren(
      h("h2", { text: "RMSNorm and LayerNorm side by side" }),
      h("p", { class: "note", text: cur === "layer"
        ? "You are watching LayerNorm: see its extra first pass (the sum for the mean) in the table, the partial sums and the source. Toggle back to compare."
        : "Toggle LayerNorm above to watch the extra mean pass it needs; both kernels come from this library." }),
      h("div", { class: "table-wrap" }, h("table", { class: "cmp" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "" }), th("RMSNorm", "rms"), th("LayerNorm", "layer"))),
        h("tbody", {}, rows.map(([a, b, d]) => h("tr", {}, h("th", { scope: "row", text: a }), h("td", { text: b }), h("td", { text: d })))))));
  };

  V.countNote = function (data) {
    const es = data.kernel.element_bytes;
    return `Bytes are what the kernel's loads and stores ask for (${es} B per ${data.params.dtype} element, masked lanes move nothing); the minimum reads x and w once and writes y once plus the per-row ${data.params.norm === "rms" ? "rstd" : "μ and rstd"}. On a GPU the repeat reads of x and of w mostly hit L2. FLOPs count every lane, masked ones too: they compute on the zeros they were given.`;
  };
})((window.RmsViz = window.RmsViz || {}));
