"""rmsnorm_triton: the fastest RMSNorm for PyTorch, in Triton; a visualizer and a bench on top.

On a machine without CUDA the kernels run through Triton's interpreter. Triton reads that choice
(TRITON_INTERPRET) when a kernel is defined, so it is made here, before the kernels are imported,
whatever imported Triton first (_interpret.py); a value the user set is left alone.
"""

from ._interpret import choose_triton_mode as _choose_triton_mode

__version__ = "0.1.0"

_choose_triton_mode()

from .checks import interpreted  # noqa: E402
from .fp8 import rms_norm_fp8  # noqa: E402
from .gated import rms_norm_gated  # noqa: E402
from .heads import qk_norm_  # noqa: E402
from .module import RMSNorm, RMSNormGated  # noqa: E402
from .ops import fused_add_rms_norm_, rms_norm  # noqa: E402

__all__ = ["rms_norm", "fused_add_rms_norm_", "rms_norm_fp8", "qk_norm_", "rms_norm_gated",
           "RMSNorm", "RMSNormGated", "interpreted", "__version__",
           "patch_model", "unpatch_model", "patch_transformers"]

_HF = ("patch_model", "unpatch_model", "patch_transformers")


def __getattr__(name):  # Hugging Face patching (hf.py), loaded on first use
    if name in _HF:
        from . import hf

        return getattr(hf, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
