"""Where this process's kernels run: compiled for the GPU, or through Triton's interpreter.

On a machine without CUDA the kernels run through Triton's interpreter. Triton decides that per
function, when `@triton.jit` decorates it: with TRITON_INTERPRET=1 (3.6 and 3.9 read it as
`triton.knobs.runtime.interpret`, from the environment at each decoration) it returns an
InterpretedFunction, else a JITFunction to compile. So the choice is made before our kernels are
defined. Triton's own library (`tl.sum`, `tl.max`, `tl.cdiv`, `tl.rand`, ...) is `@triton.jit`
code too, decorated once when `triton.language` is first imported. If anything imported Triton
before us (`import triton`, `torch._inductor`, a `torch.compile` call), that library was built
as JITFunctions, and an interpreted kernel that calls one fails with "Cannot call @triton.jit'd
outside of the scope of a kernel". The interpreter runs a function's source against its module's
globals, so rebuilding those JITFunctions in place, through `triton.jit` itself, is the fix.
"""

import os
import sys


def choose_triton_mode() -> None:
    """TRITON_INTERPRET=1 where torch sees no CUDA (a value the user set is left alone); then
    Triton's language library, if it was already built, is rebuilt to match the mode."""
    if "TRITON_INTERPRET" not in os.environ:
        import torch

        if not torch.cuda.is_available():
            os.environ["TRITON_INTERPRET"] = "1"
    if "triton.language" in sys.modules:  # built before us, maybe in the other mode
        rebuild_triton_language()


def _mode_probe():
    pass


def rebuild_triton_language() -> int:
    """When `triton.jit` now interprets, every JITFunction that triton.language's modules (and
    its tensor methods: `x.sum()`) hold is replaced by `triton.jit` of the same Python function,
    one object per original, so the library is what an import under TRITON_INTERPRET=1 builds.
    Returns how many were rebuilt; does nothing where `triton.jit` compiles."""
    import triton
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    if not isinstance(triton.jit(_mode_probe), InterpretedFunction):
        return 0
    owners = [m for name, m in list(sys.modules.items()) if m is not None
              and (name == "triton.language" or name.startswith("triton.language."))]
    owners.append(triton.language.core.tensor)
    rebuilt = {}  # id(JITFunction) -> its interpreted twin
    for owner in owners:
        for name, value in list(vars(owner).items()):
            if isinstance(value, JITFunction):
                if id(value) not in rebuilt:
                    rebuilt[id(value)] = triton.jit(value.fn)
                setattr(owner, name, rebuilt[id(value)])
    return len(rebuilt)
