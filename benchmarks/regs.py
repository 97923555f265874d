"""What the compiled kernels cost in registers, and whether two versions compile to the same code.

Compiles the kernels for Hopper (sm_90) on any machine, GPU or not (Triton's bundled ptxas does
the work; no CUDA device is needed), and prints what the cubin reports per configuration:
registers per thread and stack bytes (spills). A compile error or a spill shows here, before any
time on the GPU machine is spent.

    python benchmarks/regs.py [--dtype bf16]          SPLIT and one-pass layouts of one dtype
    python benchmarks/regs.py --table                 every launch-table entry, as launched
    python benchmarks/regs.py --heads                 q/k rows at two strides (HEAD_ROWS, TWO_W)
        at head_dim 64-256, and the gated kernels at N = 2K-16K
    python benchmarks/regs.py --same-as c21b879       every table entry (and the block loop,
        dw_reduce) built from this tree and from that commit: the SASS instruction by
        instruction (kernel-parameter offsets aside), registers and stack; exit 1 on a difference

Kernels are compiled as launched on Hopper: with PDL (options.pdl). Rows "early": EARLY with
PAIRS and, in 16 bits, the weight multiplied in that dtype (W_NATIVE), as the long-row tables
run them.
"""

import argparse
import importlib.util
import itertools
import os
import re
import subprocess
import sys
import tempfile

# compile for real even where rmsnorm_triton would interpret: "0", not unset, because importing
# rmsnorm_triton (tables, for --table and --same-as) sets an unset one to "1" on a CPU machine
os.environ["TRITON_INTERPRET"] = "0"

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "src", "rmsnorm_triton", "kernels")
TY = {"bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}


def load_kernels(path=SRC, name="_kernels_sm90"):
    """The kernels at `path`: the kernels/ package, or a single kernels.py as older commits had."""
    if os.path.isdir(path):
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(path, "__init__.py"), submodule_search_locations=[path])
    else:
        spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def kernels_at(rev):
    """The kernels of git commit `rev`, written out to a temporary folder and loaded."""
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                          check=True, cwd=HERE).stdout.strip()
    d = tempfile.mkdtemp()
    tree = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "src/rmsnorm_triton/"],
                          capture_output=True, text=True, check=True, cwd=root).stdout.split()
    files = [f for f in tree if f.startswith("src/rmsnorm_triton/kernels")]
    for f in files:
        out = os.path.join(d, os.path.relpath(f, "src/rmsnorm_triton"))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as fh:
            fh.write(subprocess.run(["git", "show", f"{rev}:{f}"], capture_output=True,
                                    check=True, cwd=root).stdout)
    single = os.path.join(d, "kernels.py")
    return load_kernels(single if os.path.isfile(single) else os.path.join(d, "kernels"),
                        "_kernels_" + rev.replace("/", "_"))


def compile_one(fn, types, consts, num_warps, maxnreg=0):
    # a parameter named in neither dict takes its default (as the launcher leaves it): a
    # constexpr's value, or None for an optional pointer or scalar (FP8's SCALE, scale_ub)
    fixed = [p for p in fn.params if p.is_constexpr or p.name not in types]
    sig = {p.name: ("constexpr" if p in fixed else types[p.name]) for p in fn.params}
    cx = {(i,): consts.get(p.name, p.default) for i, p in enumerate(fn.params) if p in fixed}
    # As the launcher's tensors and sizes are (16-byte aligned pointers, strides and N % 16 == 0):
    # without this, loads are not vectorized and the register counts mean little.
    div = {(i,): [["tt.divisibility", 16]] for i, p in enumerate(fn.params)
           if p not in fixed and (types[p.name].startswith("*") or types[p.name] == "i32")
           and p.name not in ("M", "NUM_GROUPS", "NUM_PROGS", "EPOCH")}
    src = triton.compiler.ASTSource(fn=fn, signature=sig, constexprs=cx, attrs=div)
    opts = {"num_warps": num_warps, **({"maxnreg": maxnreg} if maxnreg else {})}
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=opts)


def sass(k):
    """The cubin's instructions, one a line, with addresses, comments and kernel-parameter
    offsets (c[0x0][...], which shift when a parameter is added or dropped) left out."""
    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.TemporaryDirectory() as d:
        f = os.path.join(d, "k.cubin")
        with open(f, "wb") as fh:
            fh.write(k.asm["cubin"])
        out = subprocess.run([tool, "-sass", f], capture_output=True, text=True, check=True).stdout
    code = []
    for line in out.splitlines():
        m = re.match(r"\s*/\*[0-9a-f]{4,}\*/\s*(.*?)\s*;", line)
        if m:
            code.append(re.sub(r"c\[0x0\]\[0x[0-9a-f]+\]", "c[0x0][param]", m.group(1)))
    return code


def usage(k):
    """(registers per thread, spill store bytes, spill load bytes) of the compiled cubin."""
    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.TemporaryDirectory() as d:
        f = os.path.join(d, "k.cubin")
        with open(f, "wb") as fh:
            fh.write(k.asm["cubin"])
        out = subprocess.run([tool, "--dump-resource-usage", f], capture_output=True, text=True,
                             check=True).stdout
    regs = int(re.search(r"REG:(\d+)", out).group(1))
    st = int(re.search(r"STACK:(\d+)", out).group(1))
    return regs, st, out.count("spill")


def _heads(types, consts, dt, heads, two_w, outers):
    """HEAD_ROWS (rows at two strides) and TWO_W (q and k weights), as qk_norm_ launches them."""
    if heads:
        types.update(HEADS="i32", **{f"outer_{t}": "i32" for t in outers})
    if two_w:
        types.update(W2=f"*{dt}", Q_HEADS="i32")
    consts.update(HEAD_ROWS=heads, TWO_W=two_w)


def fwd(K, dt, block_n, warps, split, has_r=False, block_m=1, pairs=False, early=False,
        w_first=False, native=False, maxnreg=0, pdl=True, dynamic=False, s_pow2=32,
        one_pass=None, heads=False, two_w=False):
    # (TRACE_BLK, TRACE_ROW and TRACE: the forward's trace arguments in commits before the
    # kernels/ package; named here so that --same-as can build those too)
    types = dict(X=f"*{dt}", R=f"*{dt}", W=f"*{dt}", Y=f"*{dt}", H=f"*{dt}", RSTD="*fp32",
                 TRACE_BLK="*fp32", TRACE_ROW="*fp32", PART="*i64", stride_x="i32",
                 stride_r="i32", stride_y="i32", stride_h="i32", M="i32", N="i32", eps="fp32",
                 offset="fp32", NUM_GROUPS="i32", EPOCH="i32")
    one_pass = not split if one_pass is None else one_pass
    consts = dict(BLOCK_M=block_m, BLOCK_N=block_n, ONE_PASS=one_pass, SPLIT=split,
                  S_POW2=s_pow2, PAIRS=pairs, EARLY=early, HAS_W=True, HAS_R=has_r,
                  STORE_RSTD=True, CASTING=1, TRACE=False,
                  W_FIRST=w_first, W_NATIVE=native, DYNAMIC=dynamic, PDL=pdl)
    _heads(types, consts, dt, heads, two_w, ("x", "y"))
    return compile_one(K.rms_norm_fwd, types, consts, warps, maxnreg)


def bwd(K, dt, block_n, warps, split, block_m=1, pairs=False, early=False, maxnreg=0, pdl=True,
        s_pow2=32, one_pass=None, heads=False, two_w=False):
    types = dict(DY=f"*{dt}", X=f"*{dt}", W=f"*{dt}", RSTD="*fp32", DH=f"*{dt}", DX=f"*{dt}",
                 DR=f"*{dt}", DW_PART="*fp32", PART="*i64", stride_dy="i32",
                 stride_x="i32", stride_dh="i32", stride_dx="i32", stride_dr="i32", M="i32",
                 N="i32", offset="fp32", NUM_PROGS="i32", EPOCH="i32")
    one_pass = not split if one_pass is None else one_pass
    consts = dict(BLOCK_M=block_m, BLOCK_N=block_n, ONE_PASS=one_pass, SPLIT=split,
                  S_POW2=s_pow2, PAIRS=pairs, EARLY=early, HAS_W=True, STORE_DW=True,
                  HAS_DH=False, STORE_DR=False,
                  PDL=pdl)
    _heads(types, consts, dt, heads, two_w, ("dy", "x", "dx"))
    return compile_one(K.rms_norm_bwd, types, consts, warps, maxnreg)


def gated(K, dt, n, group, norm_before_gate, backward):
    """gated_fwd / gated_bwd for rows of n in groups of `group`, with a silu gate, as launched."""
    from rmsnorm_triton.gated import layout
    from rmsnorm_triton.bench.cases import DTYPES

    lay = layout(n, group, DTYPES[dt], backward)
    warps = lay.warps
    p = dict(HAS_Z=True, HAS_W=True, NORM_BEFORE_GATE=norm_before_gate, ACT=0, PDL=True,
             NG_P2=lay.ng2, G_P2=lay.g2, LOOP=lay.loop, BLOCK=lay.block)
    if not backward:
        types = dict(X=f"*{dt}", Z=f"*{dt}", W=f"*{dt}", Y=f"*{dt}", RSTD="*fp32",
                     stride_x="i32", stride_z="i32", stride_y="i32", M="i32", N="i32", G="i32",
                     eps="fp32", GPS="i32", SLABS="i32")
        return warps, compile_one(K.gated_fwd, types, dict(p, CASTING=1, STORE_RSTD=True), warps)
    types = dict(DY=f"*{dt}", X=f"*{dt}", Z=f"*{dt}", W=f"*{dt}", RSTD="*fp32", DX=f"*{dt}",
                 DZ=f"*{dt}", DW_PART="*fp32", stride_dy="i32", stride_x="i32", stride_z="i32",
                 stride_dx="i32", stride_dz="i32", M="i32", N="i32", G="i32", NUM_PROGS="i32",
                 GPS="i32", SLABS="i32")
    return warps, compile_one(K.gated_bwd, types, dict(p, STORE_DW=True), warps)


def heads_table(K, dt="bf16"):
    """Registers and spills of issue 25's kernels, beside the plain one-pass rows."""
    print(f"triton {triton.__version__}, sm_90, {dt}: rows of N = head_dim (BLOCK_M from the "
          "short-row formula) and gated rows")
    for n in (64, 128, 256):
        bm = max(1, min(256, 8192 // n))
        for label, kw in (("plain", {}), ("heads", dict(heads=True)),
                          ("q+k", dict(heads=True, two_w=True)),
                          ("q+k w_first", dict(heads=True, two_w=True, w_first=True))):
            for op, build in (("fwd", fwd), ("bwd", bwd)):
                if op == "bwd" and "w_first" in kw:
                    continue
                r, st, _ = usage(build(K, dt, n, 8, False, block_m=bm, **kw))
                print(f"{op} {label:>12} N {n:>5} {bm}x{n} w8: regs {r} stack {st}", flush=True)
    for n, group, nbg, backward in itertools.product((2048, 4096, 8192, 16384), (None, 1024),
                                                     (True, False), (False, True)):
        warps, k = gated(K, dt, n, group or n, nbg, backward)
        r, st, _ = usage(k)
        print(f"gated {'bwd' if backward else 'fwd'} N {n:>5} G {group or n:>5} "
              f"{'before' if nbg else 'after'} w{warps}: regs {r} stack {st}", flush=True)


def entries():
    """(label, build(K)) for every launch-table entry at the bench's N, as the launcher builds
    it: 16-bit SPLIT with PAIRS and the 16-bit product, the entry's cap, "+dyn", S_POW2 of that
    N; with cfg, for the table's own columns."""
    import torch

    from rmsnorm_triton import tables as H

    dts = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    for n, (name, dt), op in itertools.product([512 << i for i in range(10)], dts.items(),
                                               ("fwd", "res", "bwd")):
        cfg = H.bwd_config(n, dt) if op == "bwd" else H.fwd_config(n, dt, op == "res")
        split, half = cfg.split, name != "fp32"
        kw = dict(block_m=cfg.block_m, pairs=split and cfg.pairs and half,
                  early=split and cfg.early, maxnreg=cfg.maxnreg if split or cfg.one_pass else 0,
                  s_pow2=H.pow2(-(-n // cfg.block_n)))
        if op == "bwd":
            build = lambda K, name=name, cfg=cfg, split=split, kw=kw: bwd(  # noqa: E731
                K, name, cfg.block_n, cfg.num_warps, split, **kw)
        else:
            native = half and (split or cfg.block_n >= 16384)  # the launcher's W_NATIVE
            build = lambda K, name=name, cfg=cfg, split=split, kw=kw, op=op, native=native: fwd(  # noqa: E731
                K, name, cfg.block_n, cfg.num_warps, split, has_r=op == "res", native=native,
                dynamic=split and cfg.dynamic, **kw)
        yield (op, name, n, cfg), build


def others():
    """(label, build(K)) for what the tables do not show: the block loop (SPLIT off, fp64's
    long rows), with and without a residual, the backward's loop, and dw_reduce."""
    for dt in ("bf16", "fp32", "fp64"):
        yield f"fwd loop {dt}", lambda K, dt=dt: fwd(K, dt, 4096, 8, False, one_pass=False)
        yield f"res loop {dt}", lambda K, dt=dt: fwd(K, dt, 4096, 8, False, has_r=True,
                                                     one_pass=False)
        yield f"bwd loop {dt}", lambda K, dt=dt: bwd(K, dt, 4096, 8, False, one_pass=False)
    for dt in ("bf16", "fp32"):
        yield f"fwd 1p w_first {dt}", lambda K, dt=dt: fwd(K, dt, 4096, 8, False, w_first=True)
        yield f"dw_reduce {dt}", lambda K, dt=dt: compile_one(
            K.dw_reduce, dict(DW_PART="*fp32", DW=f"*{dt}", P="i32", N="i32"),
            dict(BLOCK_P=32, BLOCK_N=256, PDL=True), 4)


def table(K):
    """Every launch-table entry compiled as launched, with the programs an SM its registers
    allow beside those it asks for (FEWER) and any spill. (On a GPU with CUDA's torch the
    backward is built by torch's ptxas where it is newer: options.ptxas; here every kernel by
    Triton's own.)"""
    print(f"triton {triton.__version__}, sm_90, the tables as launched (STACK: spilled bytes)")
    for (op, name, n, cfg), build in entries():
        r, st, _ = usage(build(K))
        split = cfg.split
        threads = cfg.num_warps * 32
        fit = min(65536 // (-(-r // 8) * 8 * threads), 2048 // threads, 32)
        flags = ([f"STACK {st}"] if st else []) + (
            [f"FEWER {fit} < {cfg.progs_per_sm}"] if split and fit < cfg.progs_per_sm else [])
        mode = "split" if split else "1p" if cfg.one_pass else "loop"
        print(f"{op:>3} {name:>4} {n:>6} {cfg.block_m}x{cfg.block_n} w{cfg.num_warps} {mode} "
              f"pps {cfg.progs_per_sm} cap {cfg.maxnreg}: regs {r} {' '.join(flags)}", flush=True)


def same_as(K, rev):
    """Each table entry and each of others() built from K and from commit rev: the same SASS
    (parameter offsets aside), registers and stack? Returns the number that differ."""
    old = kernels_at(rev)
    print(f"triton {triton.__version__}, sm_90: this tree against {rev}")
    differ = 0
    jobs = [(f"{op} {name} {n}", b) for (op, name, n, _), b in entries()] + list(others())
    for label, build in jobs:
        a, b = build(K), build(old)
        same = sass(a) == sass(b) and usage(a)[:2] == usage(b)[:2]
        differ += not same
        print(f"{label:>22}: {'same' if same else 'DIFFERENT'} (regs {usage(a)[0]} / "
              f"{usage(b)[0]}, {len(sass(a))} / {len(sass(b))} instructions)", flush=True)
    print(f"{differ} of {len(jobs)} differ")
    return differ


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dtype", default="bf16", choices=sorted(TY))
    p.add_argument("--src", default=SRC, help="another kernels/ folder or kernels.py")
    p.add_argument("--table", action="store_true", help="every table entry as launched")
    p.add_argument("--same-as", metavar="REV", help="compare the code with git commit REV's")
    p.add_argument("--heads", action="store_true", help="q/k head rows and the gated kernels")
    args = p.parse_args()
    K = load_kernels(args.src)
    if args.table:
        return table(K)
    if args.heads:
        return heads_table(K, args.dtype)
    if args.same_as:
        return 1 if same_as(K, args.same_as) else 0
    dt = TY[args.dtype]
    rows = []
    for bn, w in [(2048, 4), (2048, 8), (4096, 4), (4096, 8), (8192, 8), (8192, 16), (16384, 16)]:
        for tag, kw in (("split", {}), ("pairs", {"pairs": dt != "fp32"}),
                        ("early", {"pairs": dt != "fp32", "early": True, "native": dt != "fp32"})):
            rows.append((f"fwd {tag}", bn, w, fwd(K, dt, bn, w, True, **kw)))
            rows.append((f"fwd+res {tag}", bn, w, fwd(K, dt, bn, w, True, has_r=True, **kw)))
            if tag != "early":
                rows.append((f"bwd {tag}", bn, w, bwd(K, dt, bn, w, True, **kw)))
    for bn, w in [(16384, 8), (32768, 16), (65536, 32)]:
        rows.append(("fwd one-pass", bn, w, fwd(K, dt, bn, w, False)))
    print(f"triton {triton.__version__}, sm_90, {args.dtype}")
    print(f"{'kernel':>15} {'BLOCK_N':>8} {'warps':>5} {'regs':>5} {'stack':>9} {'spill':>9}")
    for name, bn, w, k in rows:
        r, st, ld = usage(k)
        print(f"{name:>15} {bn:>8} {w:>5} {r:>5} {st:>9} {ld:>9}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
