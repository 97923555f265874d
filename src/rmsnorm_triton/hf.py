"""Hugging Face patching: one table {family: (RMSNorm classes, offset, casting)} and one swap.

Every family's RMSNorm in transformers is one of three formulas (read from the `forward`s of
transformers 5.23; x_hat = x.float() * rsqrt(mean(x.float()**2) + eps)):

    Llama:  w * x_hat.to(x.dtype)                  -> offset 0, casting "llama"
    Gemma:  (x_hat * (1 + w.float())).type_as(x)   -> offset 1, casting "gemma"
    Olmo2:  (w * x_hat).to(x.dtype)                -> offset 0, casting "gemma"

The kernel rounds where each formula rounds and multiplies in the same order, so a patched norm
differs from HF's only by the order of the fp32 sum of squares and by rsqrt (the kernel's is
correctly rounded, torch.rsqrt on the CPU is not): a few fp32 ulp, which in bf16 / fp16 outputs
change a bit in fewer than 1 element in 500. The backward is the analytic gradient, not
autograd's chain of ops. Output dtype: "llama" gives promote_types(x, w), as
`w * x_hat.to(x.dtype)` does; the other two give x's dtype. (In transformers 5.23, 136 more
classes share Llama's forward and a dozen Gemma's or Olmo2's: each is one row here, plus a tiny
config in tests/test_hf.py.)

    n = patch_model(model)          # swap the RMSNorm modules of a built model; returns how many
    unpatch_model(model)            # put the originals back (with the current Parameters)
    with patch_transformers("llama"):   # or keep the handle and call .undo()
        model = AutoModelForCausalLM.from_config(cfg)   # built with this library's norms

Gated norms (GATED_FAMILIES: Mamba2's, Qwen3-Next's, Kimi's) are swapped the same way, for
HFRMSNormGated running rms_norm_gated. q_norm / k_norm stay one patched norm each, not one
qk_norm_ launch: HF's attention computes q and k with separate q_proj and k_proj Linears, so
there is no fused qkv tensor to normalize in place without rewriting the attention's forward.
Their inputs (q_proj(x).view(B, T, H, D)) are contiguous: no copy either way.

transformers is imported only when a patch_transformers call needs its modeling modules.
"""

import functools
import importlib
import importlib.util

import torch

from typing import NamedTuple

from .gated import rms_norm_gated
from .module import RMSNorm, RMSNormGated
from .ops import rms_norm

LLAMA, GEMMA, OLMO2 = (0.0, "llama"), (1.0, "gemma"), (0.0, "gemma")

# family (transformers' model_type) -> (RMSNorm class names in models/<family>/modeling_<family>.py,
# (offset, casting)). q_norm / k_norm (Qwen3, Gemma3, Olmo2) are instances of the same classes.
FAMILIES = {
    "llama": (("LlamaRMSNorm",), LLAMA),
    "mistral": (("MistralRMSNorm",), LLAMA),
    "mixtral": (("MixtralRMSNorm",), LLAMA),
    "qwen2": (("Qwen2RMSNorm",), LLAMA),
    "qwen2_moe": (("Qwen2MoeRMSNorm",), LLAMA),
    "qwen3": (("Qwen3RMSNorm",), LLAMA),
    "qwen3_moe": (("Qwen3MoeRMSNorm",), LLAMA),
    "phi3": (("Phi3RMSNorm",), LLAMA),
    "gemma": (("GemmaRMSNorm",), GEMMA),
    "gemma2": (("Gemma2RMSNorm",), GEMMA),
    "gemma3": (("Gemma3RMSNorm",), GEMMA),
    "olmo2": (("Olmo2RMSNorm",), OLMO2),
    "olmo3": (("Olmo3RMSNorm",), OLMO2),
}


class Gated(NamedTuple):
    """A gated norm's formula (activation and group_size are read from each module)."""
    norm_before_gate: bool
    casting: str
    out: str  # "x": y in x's dtype; "promote": promote_types(x, w)


# Gated norms, read from the forwards of transformers 5.25 (u = x.float(), s = act(z.float())):
#   Mamba2:     w * (rmsnorm_groups(u * s)).to(x.dtype)              -> after the gate, "llama"
#   Qwen3-Next: ((w * rmsnorm(u).to(x.dtype)) * s).to(x.dtype)       -> before, "llama"
#   Kimi:       (w.float() * rmsnorm(u) * s).to(x.dtype)             -> before, "gemma"
MAMBA2 = Gated(False, "llama", "promote")
QWEN3_NEXT = Gated(True, "llama", "x")
KIMI = Gated(True, "gemma", "x")
GATED_FAMILIES = {
    "mamba2": (("Mamba2RMSNormGated",), MAMBA2),
    "qwen3_next": (("Qwen3NextRMSNormGated",), QWEN3_NEXT),
    "kimi_linear": (("KimiLinearRMSNormGated",), KIMI),
}
_ALL = {**FAMILIES, **GATED_FAMILIES}


def _modeling(family: str) -> str:
    return f"transformers.models.{family}.modeling_{family}"


# (module, class name) -> (offset, casting): lets patch_model recognise a class without importing
# anything. Only the exact classes: a subclass may have changed the formula.
_BY_CLASS = {(_modeling(f), c): mode for f, (classes, mode) in _ALL.items() for c in classes}


def _key(cls: type):
    return cls.__module__, cls.__qualname__


class HFRMSNorm(RMSNorm):
    """This library's RMSNorm standing in for a Hugging Face one: the same Parameter and eps, the
    family's offset and casting, and HF's output dtype. Keeps the module it replaced (not as a
    submodule: the state_dict keys stay those of the original) so that unpatch_model can put it
    back. Instances are of a subclass per HF class, Triton<HF class name> (see _triton_class).
    """

    def __init__(self, original, offset, casting):
        w = original.weight
        super().__init__(w.shape[0], eps=_eps(original), device="meta", dtype=w.dtype,
                         offset=offset, casting=casting)
        self.weight = w  # the same Parameter: optimizers and tied references still hold
        self.train(original.training)
        object.__setattr__(self, "hf_original", original)

    def forward(self, x):
        out_dtype = (torch.promote_types(x.dtype, self.weight.dtype) if self.casting == "llama"
                     else x.dtype)
        return rms_norm(x, self.weight, self.eps, offset=self.offset, casting=self.casting,
                        out_dtype=out_dtype)

    def restored(self):
        """The original module, holding this module's current weight (FSDP or .to() may have
        replaced the Parameter since)."""
        original = self.hf_original
        original.weight = self.weight
        original.train(self.training)
        return original


class HFRMSNormGated(RMSNormGated):
    """This library's RMSNormGated standing in for a Hugging Face gated norm (GATED_FAMILIES),
    as HFRMSNorm does for the plain ones: the same Parameter, eps, activation and group_size."""

    def __init__(self, original, norm_before_gate, casting, out):
        w = original.weight
        super().__init__(w.shape[0], _eps(original), norm_before_gate=norm_before_gate,
                         activation=getattr(original, "activation", "silu"),
                         group_size=getattr(original, "group_size", None), casting=casting,
                         device="meta", dtype=w.dtype)
        self.weight = w
        self.out = out
        self.train(original.training)
        object.__setattr__(self, "hf_original", original)

    def forward(self, hidden_states, gate=None):
        x = hidden_states
        out = torch.promote_types(x.dtype, self.weight.dtype) if self.out == "promote" else x.dtype
        return rms_norm_gated(x, gate, self.weight, self.eps,
                              norm_before_gate=self.norm_before_gate, activation=self.activation,
                              group_size=self.group_size, casting=self.casting, out_dtype=out)

    restored = HFRMSNorm.restored


@functools.cache
def _triton_class(original: type) -> type:
    """HFRMSNorm subclass that HF's modeling code can call as it calls `original` (any signature:
    Gemma3 passes dim=, Olmo2 eps positionally): it builds the original, then takes its place.
    The name keeps "RMSNorm", which is how transformers' _init_weights finds norms."""
    mode = _BY_CLASS[_key(original)]
    base = _base(mode)

    def __init__(self, *args, **kwargs):
        base.__init__(self, original(*args, **kwargs), *mode)

    return type(f"Triton{original.__name__}", (base,),
                {"__init__": __init__, "__module__": __name__, "replaces": original})


def _base(mode) -> type:
    return HFRMSNormGated if isinstance(mode, Gated) else HFRMSNorm


def _replacement(m):
    cls = _triton_class(type(m))
    new = cls.__new__(cls)
    mode = _BY_CLASS[_key(type(m))]
    _base(mode).__init__(new, m, *mode)
    return new


def _eps(module) -> float:
    eps = getattr(module, "variance_epsilon", None)  # Llama-style; Gemma-style modules use .eps
    return float(eps if eps is not None else module.eps)


def _check_no_hooks(m) -> None:
    """A swap would silently drop hooks (accelerate's device-map hook replaces .forward itself)."""
    hooks = (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
             or m._backward_pre_hooks or "forward" in m.__dict__)
    if hooks:
        raise ValueError(
            f"{type(m).__name__} carries hooks (or an instance-level forward, as accelerate's "
            "device map installs) that a swap would drop; patch before adding them, or call "
            "patch_transformers(...) before from_pretrained so that the model is built patched")


def _swap(model: torch.nn.Module, wanted, replace) -> int:
    """Replaces each submodule m for which wanted(m) with replace(m), everywhere it is reachable
    (one new module for a module that several parents hold). Checks every module before it
    changes any: a refusal leaves the model as it was. Returns how many modules were replaced."""
    found, sites = {}, []
    for parent in model.modules():
        for name, child in parent._modules.items():
            if child is not None and wanted(child):
                _check_no_hooks(child)
                found[id(child)] = child
                sites.append((parent, name, id(child)))
    new = {key: replace(m) for key, m in found.items()}
    for parent, name, key in sites:
        parent._modules[name] = new[key]
    return len(new)


def patch_model(model: torch.nn.Module) -> int:
    """Swaps every RMSNorm submodule of a table family for this library's; returns how many.

    Modules already patched (also those built under patch_transformers) are left alone and not
    counted. Patch before wrapping the model (DDP, fully_shard, torch.compile): those hold on to
    the modules they saw. A norm with hooks raises ValueError rather than losing them.
    """
    return _swap(model, lambda m: _key(type(m)) in _BY_CLASS, _replacement)


def unpatch_model(model: torch.nn.Module) -> int:
    """Puts back the modules patch_model (or patch_transformers) replaced; returns how many."""
    return _swap(model, lambda m: isinstance(m, (HFRMSNorm, HFRMSNormGated)),
                 lambda m: m.restored())


def _family_names(families) -> list:
    names = []
    for f in families:
        key = f.lower() if isinstance(f, str) else f
        if key not in _ALL:
            raise ValueError(f"family is {f!r}, expected one of: {', '.join(sorted(_ALL))}")
        names.append(key)
    return names


class _Patched:
    """What patch_transformers did, to undo: .undo(), or use it as a context manager."""

    def __init__(self, entries):
        self.entries = entries  # [(modeling module, class name, original class)]

    def undo(self):
        for module, name, original in reversed(self.entries):
            setattr(module, name, original)
        self.entries = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.undo()


def patch_transformers(*families) -> _Patched:
    """Makes transformers build this library's RMSNorm in the given families (default: all in
    FAMILIES that the installed transformers has). Models built before are not changed (use
    patch_model). Returns a handle: .undo() or `with` restores the classes."""
    if importlib.util.find_spec("transformers") is None:
        raise ImportError("patch_transformers needs transformers: pip install rmsnorm_triton[hf]")
    if families:
        names = _family_names(families)
    else:
        names = [f for f in _ALL if importlib.util.find_spec(f"transformers.models.{f}")]
    entries = []
    for family in names:
        try:
            module = importlib.import_module(_modeling(family))
        except ImportError as e:
            raise ValueError(f"family {family!r} is not in the installed transformers "
                             f"({_transformers_version()}): {e}") from e
        for name in _ALL[family][0]:
            original = getattr(module, name)
            if isinstance(original, type) and issubclass(original, (HFRMSNorm, HFRMSNormGated)):
                continue  # patched already
            setattr(module, name, _triton_class(original))
            entries.append((module, name, original))
    return _Patched(entries)


def _transformers_version() -> str:
    try:
        import transformers
        return f"transformers {transformers.__version__}"
    except ImportError:
        return "transformers is not installed"
