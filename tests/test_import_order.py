"""Any import order works (issue 22): whatever imported Triton before rmsnorm_triton, a call runs.

Each case is a fresh Python process (the order of first imports is the point), started without
TRITON_INTERPRET so the package makes the choice itself. It imports something that builds
Triton's language library first, then computes rms_norm forward and backward on the CPU and
checks both against float64. Without CUDA, the kernels run through Triton's interpreter there;
with CUDA, on the GPU (the order matters less there, and is checked all the same).
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

SRC = str(Path(__file__).resolve().parents[1] / "src")

FIRST = {  # case: what runs before `import rmsnorm_triton`
    "import triton": "import triton",
    "torch._inductor.config": "import torch._inductor.config",
    "a torch.compile call": textwrap.dedent("""
        import torch
        f = torch.compile(lambda a: a * 2 + 1)
        assert torch.equal(f(torch.ones(4)), torch.full((4,), 3.0))
    """),
    "common_methods_invocations": textwrap.dedent("""
        import sys, types, unittest
        try:
            import expecttest  # noqa: F401
        except ImportError:  # torch's test utilities subclass its TestCase; nothing else runs
            sys.modules["expecttest"] = types.SimpleNamespace(TestCase=unittest.TestCase,
                                                              ACCEPT=False)
        import torch.testing._internal.common_methods_invocations
    """),
}

CHECK = textwrap.dedent("""
    import sys
    assert "rmsnorm_triton" not in sys.modules
    assert "triton.language" in sys.modules, "the case did not build Triton's language library"
    import torch
    import rmsnorm_triton
    from rmsnorm_triton.reference import rms_norm_ref

    dev = "cpu" if rmsnorm_triton.interpreted() else "cuda"
    g = torch.Generator().manual_seed(0)
    x64 = torch.randn(5, 1000, generator=g, dtype=torch.float64)
    w64 = torch.randn(1000, generator=g, dtype=torch.float64)
    dy64 = torch.randn(5, 1000, generator=g, dtype=torch.float64)
    x = x64.float().to(dev).requires_grad_()
    w = w64.float().to(dev).requires_grad_()
    y = rmsnorm_triton.rms_norm(x, w, 1e-6)
    y.backward(dy64.float().to(dev))

    xr, wr = x64.clone().requires_grad_(), w64.clone().requires_grad_()
    yr = rms_norm_ref(xr, wr, 1e-6)[0]
    yr.backward(dy64)
    for name, out, ref in [("y", y, yr), ("dx", x.grad, xr.grad), ("dw", w.grad, wr.grad)]:
        err = ((out.double().cpu() - ref).norm() / ref.norm()).item()
        assert err < 1e-6, f"{name}: relative error {err:.3g} against float64"
    print("ok", dev)
""")


def _run(code, **env_set):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([SRC] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(env_set)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow)
                                  if c == "a torch.compile call" else c for c in FIRST])
def test_any_import_order_works(case):
    proc = _run(FIRST[case] + "\n" + CHECK)
    assert proc.returncode == 0 and "ok" in proc.stdout, (
        f"after {case!r} first: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the choice made where there is no CUDA")
def test_a_mode_the_user_chose_is_kept():
    """TRITON_INTERPRET=0 set by the user: Triton's library stays compiled (nothing rebuilt),
    and a CPU tensor gets the error that says why, not the interpreter's."""
    proc = _run(textwrap.dedent("""
        import triton, torch, rmsnorm_triton
        from triton.runtime.jit import JITFunction
        assert isinstance(triton.language.sum, JITFunction) and not rmsnorm_triton.interpreted()
        try:
            rmsnorm_triton.rms_norm(torch.randn(2, 8))
        except RuntimeError as e:
            assert "runs Triton compiled for the GPU" in str(e), e
            print("ok")
    """), TRITON_INTERPRET="0")
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]
