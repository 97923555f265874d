"""Hugging Face patching: per family, a tiny random model, patched against unpatched.

Tolerance (fp32 models): a patched tensor t passes against the unpatched one r when
max|t - r| <= TOL * max|r|, TOL = 1e-4. Why not bitwise: in fp32 each norm differs from HF's by a
few ulp, because the kernel sums the squares in another order and computes rsqrt correctly
rounded (torch.rsqrt on the CPU is not: it differs from 1/sqrt rounded once in ~30% of inputs),
and the backward is the analytic gradient rather than autograd's chain of ops. Measured on
transformers 5.23 (2 layers, hidden 64), over the 13 families: logits <= 1.8e-7 and gradients
<= 1.2e-7 apart, at most 8.2e-7 of their largest values, so 1e-4 leaves two decades of margin,
while a wrong offset or eps moves them by 2e-2 to 15 times their largest values
(test_tolerance_catches_a_wrong_offset). The casting mode shows only in half precision:
test_module_matches_hf checks one norm in bf16 / fp16, where the patched module equals HF's
bit for bit except where the two fp32 values round to neighbouring half-precision numbers.
Sizes: M * N per norm call is (2 x 8) x 64, or (2 x 8 x 4 heads) x 16 for q_norm / k_norm; the
interpreter runs each family's forward and backward in well under a second, the file in ~10 s
on 2 idle cores.
"""

import importlib
import subprocess
import sys

import pytest
import torch

transformers = pytest.importorskip("transformers")

from rmsnorm_triton import interpreted, patch_model, patch_transformers, unpatch_model  # noqa: E402
from rmsnorm_triton.hf import FAMILIES, HFRMSNorm  # noqa: E402
from rmsnorm_triton.testing import TOLERANCE  # noqa: E402

TOL = 1e-4
# Models and inputs live where this process's kernels run: the CPU under Triton's interpreter,
# the GPU where Triton is compiled for it (such a process cannot run CPU tensors).
DEV = "cpu" if interpreted() else "cuda"
VOCAB, BATCH, SEQ = 96, 2, 8
TINY = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
            pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
            rms_norm_eps=1e-3)  # large enough that a lost eps shows (ms of the embeddings ~4e-4)
# family -> (config model_type, extra config): every FAMILIES row needs one.
CONFIGS = {
    "llama": ("llama", {}),
    "mistral": ("mistral", {}),
    "mixtral": ("mixtral", dict(num_local_experts=4, num_experts_per_tok=2)),
    "qwen2": ("qwen2", {}),
    "qwen2_moe": ("qwen2_moe", dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                                    shared_expert_intermediate_size=32)),
    "qwen3": ("qwen3", {}),
    "qwen3_moe": ("qwen3_moe", dict(num_experts=4, num_experts_per_tok=2,
                                    moe_intermediate_size=32)),
    "phi3": ("phi3", {}),
    "gemma": ("gemma", {}),
    "gemma2": ("gemma2", dict(sliding_window=4)),
    "gemma3": ("gemma3_text", dict(sliding_window=4)),  # "gemma3" is the multimodal config
    "olmo2": ("olmo2", {}),
    "olmo3": ("olmo3", {}),
}


def _has(family):
    return importlib.util.find_spec(f"transformers.models.{family}") is not None


def _family_params():
    return [pytest.param(f, marks=pytest.mark.skipif(
        not _has(f), reason=f"transformers {transformers.__version__} has no {f}"))
        for f in FAMILIES]


def _build(family, seed=0):
    model_type, extra = CONFIGS[family]
    cfg = transformers.AutoConfig.for_model(model_type, **TINY, **extra)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    return model.float().eval().to(DEV)


def _perturb_norms(model, seed=1):
    """HF initialises norm weights to 1 (Gemma: 0); spread them so offset and dw are tested."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.2 * torch.randn(p.shape, generator=g).to(p.device))


def _hf_norms(model, family):
    return [m for m in model.modules() if type(m).__name__ in FAMILIES[family][0]]


def _batch(seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (BATCH, SEQ), generator=g).to(DEV)


def _run(model, ids):
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()
             if p.grad is not None}
    return out.logits.detach().clone(), grads


def _scaled_diff(t, ref):
    return ((t - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def _assert_match(got, ref, what):
    logits, grads = got
    ref_logits, ref_grads = ref
    assert logits.shape == ref_logits.shape
    assert _scaled_diff(logits, ref_logits) <= TOL, f"{what}: logits"
    assert grads.keys() == ref_grads.keys(), f"{what}: different parameters got gradients"
    for name, g in ref_grads.items():
        assert _scaled_diff(grads[name], g) <= TOL, f"{what}: gradient of {name}"


@pytest.mark.parametrize("family", _family_params())
def test_patch_model_matches_unpatched(family):
    model = _build(family)
    _perturb_norms(model)
    ids = _batch()
    ref = _run(model, ids)
    originals = _hf_norms(model, family)
    keys = list(model.state_dict())
    assert originals, f"the {family} model has no {FAMILIES[family][0]}"

    assert patch_model(model) == len(originals)
    assert not [m for m in model.modules() if "RMSNorm" in type(m).__name__
                and not isinstance(m, HFRMSNorm)], "an RMSNorm was left unpatched"
    patched = [m for m in model.modules() if isinstance(m, HFRMSNorm)]
    assert len(patched) == len(originals)
    for new in patched:
        old = new.hf_original
        assert new.weight is old.weight
        assert new.eps == getattr(old, "variance_epsilon", getattr(old, "eps", None))
    assert list(model.state_dict()) == keys
    _assert_match(_run(model, ids), ref, f"{family} patched")
    assert patch_model(model) == 0, "patching twice replaced modules again"

    assert unpatch_model(model) == len(originals)
    restored = _hf_norms(model, family)
    assert len(restored) == len(originals) and all(a is b for a, b in zip(restored, originals))
    logits, grads = _run(model, ids)
    assert torch.equal(logits, ref[0]), "unpatched model differs from the original"


@pytest.mark.parametrize("family", _family_params())
def test_patch_transformers_builds_patched_models(family):
    reference = _build(family)
    n_norms = len(_hf_norms(reference, family))
    with patch_transformers(family) as handle:
        assert handle.entries
        model = _build(family)
    # built under the patch: this library's norms, HF's initialisation (Gemma: 0, others: 1)
    assert sum(isinstance(m, HFRMSNorm) for m in model.modules()) == n_norms
    assert not _hf_norms(model, family)
    ref_state = reference.state_dict()
    for k, v in model.state_dict().items():
        assert torch.equal(v, ref_state[k]), f"{k} initialised differently under the patch"
    _perturb_norms(model)
    _perturb_norms(reference)
    ids = _batch()
    _assert_match(_run(model, ids), _run(reference, ids), f"{family} patch_transformers")
    # undone: the modeling module holds the original class again, new builds are unpatched
    modeling = importlib.import_module(f"transformers.models.{family}.modeling_{family}")
    for name in FAMILIES[family][0]:
        assert not issubclass(getattr(modeling, name), HFRMSNorm)
    assert not any(isinstance(m, HFRMSNorm) for m in _build(family).modules())
    assert unpatch_model(model) == n_norms
    assert len(_hf_norms(model, family)) == n_norms


@pytest.mark.parametrize("family", ["llama", "gemma"])  # Gemma: the loaded weights must replace
def test_from_pretrained_under_patch_transformers(family, tmp_path):  # the zero init
    reference = _build(family)
    _perturb_norms(reference)
    reference.save_pretrained(tmp_path)
    with patch_transformers(family):
        model = transformers.AutoModelForCausalLM.from_pretrained(
            tmp_path, attn_implementation="eager").float().eval().to(DEV)
    assert sum(isinstance(m, HFRMSNorm) for m in model.modules()) == len(
        _hf_norms(reference, family))
    ids = _batch()
    _assert_match(_run(model, ids), _run(reference, ids), f"{family} from_pretrained")
    unpatch_model(model)  # the originals come back holding the loaded weights
    assert torch.equal(model(input_ids=ids).logits, reference(input_ids=ids).logits)


def test_patch_refuses_hooked_norms_and_changes_nothing():
    model = _build("llama")
    hooked = model.model.layers[1].input_layernorm
    hooked.register_forward_hook(lambda *a: None)
    with pytest.raises(ValueError, match="hooks"):
        patch_model(model)
    assert not any(isinstance(m, HFRMSNorm) for m in model.modules())


def test_tolerance_catches_a_wrong_offset():
    """The tolerance is tight enough to see a wrong offset (1 + w instead of w)."""
    model = _build("llama")
    _perturb_norms(model)
    ids = _batch()
    ref = _run(model, ids)
    patch_model(model)
    for m in model.modules():
        if isinstance(m, HFRMSNorm):
            m.offset = 1.0
    with pytest.raises(AssertionError):
        _assert_match(_run(model, ids), ref, "llama with a wrong offset")


@pytest.mark.parametrize("family", _family_params())
@pytest.mark.parametrize("x_dtype,w_dtype", [(torch.float32, torch.float32),
                                             (torch.bfloat16, torch.bfloat16),
                                             (torch.bfloat16, torch.float32),
                                             (torch.float16, torch.float16)])
def test_module_matches_hf(family, x_dtype, w_dtype):
    """One norm alone, across dtypes: HF's output dtype (Llama: promote_types(x, w)) and values
    within one rounding of the output dtype (the testing table's tolerance)."""
    modeling = importlib.import_module(f"transformers.models.{family}.modeling_{family}")
    torch.manual_seed(3)
    n = 127
    hf = getattr(modeling, FAMILIES[family][0][0])(n, 0.25).to(DEV, w_dtype)  # an eps that shows
    with torch.no_grad():
        hf.weight.normal_(0.5, 0.5)
    holder = torch.nn.ModuleList([hf])
    x = (3 * torch.randn(5, 3, n)).to(DEV, x_dtype)
    ref = hf(x)
    assert patch_model(holder) == 1
    out = holder[0](x)
    assert out.dtype == ref.dtype
    rel, abs_ = TOLERANCE[ref.dtype]
    err = ((out.double() - ref.double()).abs() - rel * ref.double().abs()).max().item()
    assert err <= abs_, f"{family} {x_dtype} x, {w_dtype} weight"
    if ref.dtype != torch.float32:  # rounded where HF rounds: nearly all bits equal (measured
        # >= 99.8%); the wrong casting mode leaves 60-80% equal
        same = (out == ref).double().mean().item()
        assert same >= 0.99, f"{family}: only {same:.1%} of the elements equal HF's"


def test_unknown_family_lists_supported():
    with pytest.raises(ValueError) as e:
        patch_transformers("llama", "not_a_model")
    msg = str(e.value)
    assert "'not_a_model'" in msg
    assert all(f in msg for f in FAMILIES)
    # nothing half-applied: the known family in the same call was left alone
    modeling = importlib.import_module("transformers.models.llama.modeling_llama")
    assert not issubclass(modeling.LlamaRMSNorm, HFRMSNorm)


def test_package_import_does_not_import_transformers():
    code = ("import sys, rmsnorm_triton as r; r.patch_model; r.unpatch_model; "
            "r.patch_transformers; assert 'transformers' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
