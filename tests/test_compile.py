"""torch.library registration and torch.compile (issue 3).

Runs with Inductor, torch.compile's default backend, on the CPU too: Inductor's CPU code needs
only the C++ compiler, and our op stays an opaque custom op that runs the same Triton kernels
(through the interpreter there).
"""

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend
from torch._dynamo.utils import counters

from conftest import randn
from rmsnorm_triton import RMSNorm, rms_norm

ops = torch.ops.rmsnorm_triton


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


# ---- opcheck ----------------------------------------------------------------------------------
FWD_CASES = {  # x dtype, weight dtype, residual dtype, eps, offset, casting, out, residual_dtype
    "plain": (torch.float32, torch.float32, None, 1e-6, 0.0, "llama", None, None),
    "no weight": (torch.float16, None, None, 1e-5, 0.0, "none", None, None),
    "fused": (torch.bfloat16, torch.float32, torch.bfloat16, 1e-6, 1.0, "gemma", torch.float32,
              torch.float32),
}


@pytest.mark.parametrize("case", list(FWD_CASES))
def test_opcheck_fwd(device, gen, case):
    xd, wd, rd, eps, offset, casting, out, resd = FWD_CASES[case]
    shape = (2, 3, 33)
    x = randn(shape, xd, device, gen).requires_grad_()
    w = randn(shape[-1:], wd, device, gen).requires_grad_() if wd else None
    r = randn(shape, rd, device, gen).requires_grad_() if rd else None
    torch.library.opcheck(ops.fwd.default, (x, w, r, eps, offset, casting, out, resd))


@pytest.mark.parametrize("with_dh", [False, True])
@pytest.mark.parametrize("with_w", [False, True])
def test_opcheck_bwd(device, gen, with_w, with_dh):
    x = randn((5, 33), torch.bfloat16, device, gen)
    w = randn((33,), torch.float32, device, gen) if with_w else None
    _, _, rstd = ops.fwd(x, w, None, 1e-6, 0.0, "llama", None, None)
    dy = randn((5, 33), torch.bfloat16, device, gen)
    dh = randn((5, 33), torch.bfloat16, device, gen) if with_dh else None
    torch.library.opcheck(ops.bwd.default, (dy, dh, x, w, rstd, 0.0, torch.bfloat16,
                                            torch.float32 if with_dh else None, with_w))


# ---- torch.compile ----------------------------------------------------------------------------
class Block(torch.nn.Module):
    """A pre-norm residual step: h = x + r, y = norm(h), out = 2 * y (exact, so bitwise)."""

    def __init__(self, n, **kw):
        super().__init__()
        self.norm = RMSNorm(n, eps=1e-6, **kw)

    def forward(self, x, r):
        y, h = self.norm(x, residual=r)
        return 2 * y, h


def run(fn, inputs, grads):
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    outs = fn(*leaves)
    torch.autograd.backward(outs, grads)
    return outs, [t.grad for t in leaves]


def test_module_fullgraph_forward_backward(device, gen):
    n = 127
    model = Block(n, device=device, dtype=torch.bfloat16, offset=1.0, casting="gemma")
    with torch.no_grad():
        model.norm.weight.copy_(randn((n,), torch.bfloat16, device, gen))
    x, r = randn((6, n), torch.bfloat16, device, gen), randn((6, n), torch.bfloat16, device, gen)
    grads = [randn((6, n), torch.bfloat16, device, gen) for _ in range(2)]
    eager_out, eager_g = run(model, (x, r), grads)
    eager_dw = model.norm.weight.grad.clone()
    model.norm.weight.grad = None
    compiled = torch.compile(model, fullgraph=True)
    comp_out, comp_g = run(compiled, (x, r), grads)
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] >= 1  # it really compiled
    for a, b in zip(comp_out + tuple(comp_g), eager_out + tuple(eager_g)):
        assert torch.equal(a, b), "compiled and eager results differ"
    assert torch.equal(model.norm.weight.grad, eager_dw)


@pytest.mark.parametrize("kw", [dict(prenorm=True, residual_dtype=torch.float32),
                                dict(casting="none", out_dtype=torch.float32)],
                         ids=["prenorm-fp32-h", "none-fp32-out"])
def test_function_options_match_eager(device, gen, kw):
    def f(x, w):
        return rms_norm(x, w, 1e-5, **kw)

    x = randn((4, 3, 65), torch.bfloat16, device, gen)
    w = randn((65,), torch.bfloat16, device, gen)
    eager = f(x, w)
    comp = torch.compile(f, fullgraph=True)(x, w)
    eager, comp = (eager, comp) if isinstance(eager, tuple) else ((eager,), (comp,))
    assert not counters["graph_break"]
    assert len(comp) == len(eager)
    for a, b in zip(comp, eager):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def test_changing_rows_recompiles_at_most_once(device, gen):
    n = 64
    model = Block(n, device=device)
    cnt = CompileCounterWithBackend("inductor")
    compiled = torch.compile(model, backend=cnt, fullgraph=True)
    for m in (3, 5, 9, 17, 33):
        x, r = randn((m, n), torch.float32, device, gen), randn((m, n), torch.float32, device, gen)
        grads = [randn((m, n), torch.float32, device, gen) for _ in range(2)]
        out, g = run(compiled, (x, r), grads)
        ref_out, ref_g = run(model, (x, r), grads)
        assert all(torch.equal(a, b) for a, b in zip(out + tuple(g), ref_out + tuple(ref_g)))
    # one compile for the first M, at most one more that makes M dynamic
    assert 1 <= cnt.frame_count <= 2, f"{cnt.frame_count} compiles for 5 values of M"
    assert not counters["graph_break"]
