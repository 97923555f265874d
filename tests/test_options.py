"""options: one settings object, read from the environment once, changed by override (which
drops the launch plans made under other settings); a bad value names its variable."""

import pytest
import torch

from rmsnorm_triton import options, plan, rms_norm

ENV = {"RMSNORM_TRITON_SPLIT": "0", "RMSNORM_TRITON_PDL": "0", "RMSNORM_TRITON_PTXAS": "torch",
       "RMSNORM_TRITON_W_NATIVE": "0", "RMSNORM_TRITON_W_FIRST_WAVES": "5",
       "RMSNORM_TRITON_SPLIT_DYNAMIC": "1", "RMSNORM_TRITON_TABLE": "generic",
       "RMSNORM_TRITON_LAUNCHER": "public", "RMSNORM_TRITON_COOPERATIVE": "1"}


def test_every_variable_is_read():
    assert options.from_env({}) == options.Options()
    got = options.from_env(ENV)
    assert got == options.Options(split=False, pdl=False, ptxas="torch", w_native=False,
                                  w_first_waves=5, split_dynamic=True, table="generic",
                                  launcher="public", cooperative=True)
    assert options.from_env({"RMSNORM_TRITON_SPLIT_DYNAMIC": "table"}).split_dynamic is None
    assert options.from_env({"RMSNORM_TRITON_SPLIT_DYNAMIC": "0"}).split_dynamic is False


@pytest.mark.parametrize("var, value", [
    ("RMSNORM_TRITON_SPLIT", "off"), ("RMSNORM_TRITON_PDL", "true"),
    ("RMSNORM_TRITON_PTXAS", "newest"), ("RMSNORM_TRITON_W_FIRST_WAVES", "-1"),
    ("RMSNORM_TRITON_SPLIT_DYNAMIC", "yes"), ("RMSNORM_TRITON_TABLE", "h100"),
    ("RMSNORM_TRITON_LAUNCHER", "private"), ("RMSNORM_TRITON_COOPERATIVE", "2")])
def test_a_bad_value_names_its_variable(var, value):
    with pytest.raises(ValueError, match=f"^{var} is '{value}', expected"):
        options.from_env({var: value})


def test_override_changes_the_settings_and_drops_the_plans():
    before = options.get()
    x, w = torch.randn(3, 32), torch.randn(32)
    rms_norm(x, w)
    assert plan.PLANS
    with options.override(w_first_waves=0, pdl=False) as inside:
        assert inside is options.get() and inside.w_first_waves == 0 and not inside.pdl
        assert not plan.PLANS, "plans made under other settings are dropped"
        rms_norm(x, w)
        assert plan.PLANS
    assert options.get() == before and not plan.PLANS
    with pytest.raises(TypeError, match="unexpected keyword"):
        with options.override(no_such_setting=1):
            pass
    with pytest.raises(TypeError, match="options.split is 'no', expected True or False"):
        with options.override(split="no"):
            pass
    assert options.get() == before
