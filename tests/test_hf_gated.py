"""Hugging Face's gated norms patched (hf.GATED_FAMILIES): a tiny random model per family,
patched against unpatched, logits and every gradient, with tests/test_hf.py's tolerance
(TOL = 1e-4 of the largest value: fp32 models, where the kernel differs from HF's chain of ops
by the order of its sums and a correctly rounded rsqrt); one norm alone in half precision,
against HF's own module, nearly bit for bit.
"""

import importlib

import pytest
import torch

transformers = pytest.importorskip("transformers")

from rmsnorm_triton import interpreted, patch_model, patch_transformers, unpatch_model  # noqa: E402
from rmsnorm_triton.hf import GATED_FAMILIES, HFRMSNormGated  # noqa: E402
from rmsnorm_triton.testing import TOLERANCE  # noqa: E402

TOL = 1e-4
DEV = "cpu" if interpreted() else "cuda"
VOCAB = 96
TINY = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
            pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
CONFIGS = {  # family -> extra config: every GATED_FAMILIES row needs one
    "mamba2": dict(num_heads=4, n_groups=2, state_size=8, expand=1, chunk_size=4, conv_kernel=4),
    "qwen3_next": dict(linear_num_value_heads=2, linear_num_key_heads=2, linear_key_head_dim=16,
                       linear_value_head_dim=16, num_experts=4, num_experts_per_tok=2,
                       moe_intermediate_size=32, shared_expert_intermediate_size=32,
                       layer_types=["linear_attention", "full_attention"]),
    "kimi_linear": dict(layer_types=["linear_attention", "full_attention"], linear_head_dim=16,
                        linear_num_heads=4, num_local_experts=4, num_experts_per_tok=2,
                        moe_intermediate_size=32, qk_rope_head_dim=8, qk_nope_head_dim=8,
                        v_head_dim=16, kv_lora_rank=16, q_lora_rank=None,
                        num_key_value_heads=4),  # (its MLA has no GQA)
}
FAMILY_PARAMS = [pytest.param(f, marks=pytest.mark.skipif(
    importlib.util.find_spec(f"transformers.models.{f}") is None,
    reason=f"transformers {transformers.__version__} has no {f}")) for f in GATED_FAMILIES]


def _build(family, seed=0):
    cfg = transformers.AutoConfig.for_model(family, **{**TINY, **CONFIGS[family]})
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # HF initialises norm weights to 1: spread them so dw is tested
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.2 * torch.randn(p.shape, generator=g))
    return model.float().eval().to(DEV)


def _norms(model, family):
    return [m for m in model.modules() if type(m).__name__ in GATED_FAMILIES[family][0]]


def _run(model):
    ids = torch.randint(3, VOCAB, (2, 8), generator=torch.Generator().manual_seed(2)).to(DEV)
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    return out.logits.detach().clone(), {n: p.grad.detach().clone()
                                         for n, p in model.named_parameters()
                                         if p.grad is not None}


def _assert_match(got, ref, what):
    def diff(t, r):
        return ((t - r).abs().max() / r.abs().max().clamp_min(1e-30)).item()

    assert diff(got[0], ref[0]) <= TOL, f"{what}: logits"
    assert got[1].keys() == ref[1].keys()
    for name, g in ref[1].items():
        assert diff(got[1][name], g) <= TOL, f"{what}: gradient of {name}"


@pytest.mark.parametrize("family", FAMILY_PARAMS)
def test_patch_model_matches_unpatched(family):
    model = _build(family)
    ref = _run(model)
    originals = _norms(model, family)
    assert originals
    assert patch_model(model) >= len(originals)
    patched = [m for m in model.modules() if isinstance(m, HFRMSNormGated)]
    assert len(patched) == len(originals) and not _norms(model, family)
    for new in patched:
        old = new.hf_original
        assert new.weight is old.weight and new.eps == old.variance_epsilon
        assert new.group_size == getattr(old, "group_size", None)
    _assert_match(_run(model), ref, f"{family} patched")
    unpatch_model(model)
    assert [m for m in _norms(model, family)] == originals
    assert torch.equal(_run(model)[0], ref[0])


@pytest.mark.parametrize("family", FAMILY_PARAMS)
def test_patch_transformers_builds_patched_models(family):
    reference = _build(family)
    with patch_transformers(family):
        model = _build(family)
    assert sum(isinstance(m, HFRMSNormGated) for m in model.modules()) == len(
        _norms(reference, family))
    _assert_match(_run(model), _run(reference), f"{family} patch_transformers")
    assert not any(isinstance(m, HFRMSNormGated) for m in _build(family).modules())


@pytest.mark.parametrize("family", FAMILY_PARAMS)
@pytest.mark.parametrize("x_dtype,w_dtype", [(torch.bfloat16, torch.bfloat16),
                                             (torch.float16, torch.float16),
                                             (torch.bfloat16, torch.float32)])
def test_module_matches_hf(family, x_dtype, w_dtype):
    """One norm, half precision: HF's output dtype, and rounded where HF rounds (nearly every
    element equal; a wrong casting or order leaves far fewer)."""
    modeling = importlib.import_module(f"transformers.models.{family}.modeling_{family}")
    cls = getattr(modeling, GATED_FAMILIES[family][0][0])
    n = 128
    hf = (cls(n, group_size=32, eps=0.25) if family == "mamba2" else cls(n, eps=0.25))
    hf = hf.to(DEV, w_dtype)
    torch.manual_seed(3)
    with torch.no_grad():
        hf.weight.normal_(0.5, 0.5)
    x = (3 * torch.randn(5, 3, n)).to(DEV, x_dtype)
    z = (2 * torch.randn(5, 3, 2 * n)).to(DEV, x_dtype)[..., n:]
    ref = hf(x, z)
    holder = torch.nn.ModuleList([hf])
    assert patch_model(holder) == 1
    out = holder[0](x, z)
    assert out.dtype == ref.dtype
    rel, abs_ = TOLERANCE[x_dtype]  # (x_hat is rounded to x's dtype, whatever y's is)
    err = ((out.double() - ref.double()).abs() - 2 * rel * ref.double().abs()).max().item()
    assert err <= abs_, f"{family} {x_dtype} x, {w_dtype} weight"
    if ref.dtype != torch.float32:
        same = (out == ref).double().mean().item()
        assert same >= 0.97, f"{family}: only {same:.1%} of the elements equal HF's"
