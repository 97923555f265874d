"""The providers, one small class each, all called the way their users call them.

    rmsnorm_triton  this library: rms_norm(x, w), rms_norm(x, w, residual=r)
    torch_eager     the Hugging Face LlamaRMSNorm formula in eager PyTorch
                    (reference.llama_rms_norm); residual: h = x + r, then the formula
    torch_native    torch.nn.functional.rms_norm (no fused residual)
    torch_compile   torch.compile(dynamic=False) of the same formula (and of x + r then the formula)
    liger           Liger-Kernel: liger_kernel.ops.LigerRMSNormFunction (Llama casting, its default
                    in-place backward) and LigerFusedAddRMSNormFunction
    quack           Quack: quack.rmsnorm.rmsnorm(x, w), rmsnorm(x, w, residual=r, prenorm=True)
    fp8_*, flashinfer   the FP8 cells' own providers (bench/fp8.py); rmsnorm_triton runs
                    those cells with rms_norm_fp8

Each provider's `load()` imports what it needs and raises if it can't; the harness records the
error and moves on. Weights are in x's dtype (as in a bf16 model), eps = 1e-6, Llama casting.
"""

import torch

from ..reference import llama_rms_norm
from . import fp8


def _add_norm(x, r, w, eps):
    h = x + r
    return llama_rms_norm(h, w, eps), h


class Provider:
    name = "?"
    ops = ("fwd", "bwd", "fwd_residual")

    def load(self) -> None:
        """Imports what the provider needs; raises (ImportError or other) when it can't run."""

    def setup(self) -> None:
        """Called once before each new shape and dtype, outside any timed region."""

    def fwd(self, x, w, eps):
        raise NotImplementedError

    def fwd_residual(self, x, r, w, eps):
        raise NotImplementedError

    def bwd(self, x, w, dy, eps):
        """Runs the forward once, outside any timed region, and returns a callable that runs only
        the backward: torch.autograd.grad(y, (x, w), dy, retain_graph=True) -> (dx, dw).

        That is the provider's whole backward and nothing else: every kernel its autograd graph
        launches for dx and dw (eager PyTorch: the elementwise kernels and the reduction over rows
        for dw; torch.compile: the backward graph Inductor generated; the libraries: their
        backward kernels and their dw partial-sum reduction), and no forward. Every provider goes
        through the same entry point, so the autograd engine's host cost (tens of us) is the same
        for all, and with 2^26 elements it hides behind the device time of a backward that moves
        at least 384 MB. retain_graph keeps the saved tensors so the callable can run again;
        autograd.grad returns new gradients and accumulates into nothing.
        """
        xg = x.detach().requires_grad_(True)
        wg = w.detach().requires_grad_(True)
        y = self.fwd(xg, wg, eps)
        return lambda: torch.autograd.grad(y, (xg, wg), dy, retain_graph=True)

    def prepare(self, op, x, w, eps, r=None, dy=None):
        """A zero-argument callable that runs `op` once on inputs that already exist."""
        if op not in self.ops:
            raise ValueError(f"op is {op!r}, expected one of {self.ops} for provider {self.name}")
        if op == "fwd":
            return lambda: self.fwd(x, w, eps)
        if op == "fwd_residual":
            return lambda: self.fwd_residual(x, r, w, eps)
        return self.bwd(x, w, dy, eps)


class RmsnormTriton(Provider):
    name = "rmsnorm_triton"
    ops = Provider.ops + fp8.OPS

    def load(self):
        from .. import rms_norm
        from ..fp8 import rms_norm_fp8

        self._f, self._fp8 = rms_norm, rms_norm_fp8

    def prepare(self, op, x, w, eps, r=None, dy=None):
        if op in fp8.OPS:
            return fp8._Fp8.prepare(self, op, x, w, eps, r)
        return super().prepare(op, x, w, eps, r, dy)

    def fp8(self, mode, x, w, eps, r, scale):
        return self._fp8(x, w, eps, residual=r, scale=scale, group_size=fp8.GROUP)

    def fwd(self, x, w, eps):
        return self._f(x, w, eps)

    def fwd_residual(self, x, r, w, eps):
        return self._f(x, w, eps, residual=r)


class TorchEager(Provider):
    name = "torch_eager"

    def fwd(self, x, w, eps):
        return llama_rms_norm(x, w, eps)

    def fwd_residual(self, x, r, w, eps):
        return _add_norm(x, r, w, eps)


class TorchNative(Provider):
    name = "torch_native"
    ops = ("fwd", "bwd")

    def load(self):
        self._f = torch.nn.functional.rms_norm

    def fwd(self, x, w, eps):
        return self._f(x, (x.shape[-1],), w, eps)


class TorchCompile(Provider):
    """torch.compile of the formula, specialised to each shape (dynamic=False): what a job with
    fixed shapes gets. Dynamo's caches are reset before each shape, so every cell holds one
    compiled graph: no recompile limit is reached and no guard list grows across cells."""

    name = "torch_compile"

    def load(self):
        self._f = torch.compile(llama_rms_norm, dynamic=False)
        self._fr = torch.compile(_add_norm, dynamic=False)

    def setup(self):
        torch._dynamo.reset()

    def fwd(self, x, w, eps):
        return self._f(x, w, eps)

    def fwd_residual(self, x, r, w, eps):
        return self._fr(x, r, w, eps)


class Liger(Provider):
    """Liger-Kernel as its LigerRMSNorm module calls it: Llama casting, in_place=True backward."""

    name = "liger"

    def load(self):
        from liger_kernel.ops import LigerFusedAddRMSNormFunction, LigerRMSNormFunction

        self._f, self._fr = LigerRMSNormFunction, LigerFusedAddRMSNormFunction

    def fwd(self, x, w, eps):
        return self._f.apply(x, w, eps, 0.0, "llama", True, None)

    def fwd_residual(self, x, r, w, eps):
        return self._fr.apply(x, r, w, eps, 0.0, "llama", False)

    def bwd(self, x, w, dy, eps):
        """As Provider.bwd, with one difference: Liger's default backward writes dx over dy (no
        new M x N buffer; in_place=False would add a zero-fill kernel of M x N to its time).
        It gets its own copy of dy, made here, outside the timed region. The check sees the
        first call's dx; after it, each timed call takes the previous call's dx as its dy.
        The values drift (they may reach inf or NaN), which changes nothing a GPU does per
        element in these kernels: no branch depends on a value."""
        return super().bwd(x, w, dy.clone(), eps)


class Quack(Provider):
    name = "quack"

    def load(self):
        from quack.rmsnorm import rmsnorm

        self._f = rmsnorm

    def fwd(self, x, w, eps):
        return self._f(x, w, eps=eps)

    def fwd_residual(self, x, r, w, eps):
        return self._f(x, w, residual=r, eps=eps, prenorm=True)


ALL = (RmsnormTriton, TorchEager, TorchNative, TorchCompile, Liger, Quack) + fp8.ALL
NAMES = tuple(p.name for p in ALL)


def make(names=None) -> list[Provider]:
    """Fresh provider objects, by name, in the order given (default: all of them)."""
    by_name = {p.name: p for p in ALL}
    names = list(names or NAMES)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"providers {unknown} unknown, expected names from {list(NAMES)}")
    return [by_name[n]() for n in names]
