"""Where a tensor's rows lie: one stride apart (rows_view), or at two strides (head_rows).

The kernels address row r at r * stride, or (HEAD_ROWS) at (r // H) * outer + (r % H) * stride:
a [..., H, D] view with unit last stride whose leading dims collapse into one, such as q or k
inside a fused qkv tensor. Anything else is copied by rows_view.
"""

from typing import NamedTuple

import torch


def rows_view(t: torch.Tensor, n: int) -> torch.Tensor:
    """(M, N) view with a unit last stride; strided rows stay as they are, other layouts copy."""
    if t.dim() == 2 and t.stride(-1) == 1:
        return t
    try:
        v = t.view(-1, n)
        if v.stride(-1) == 1 or v.shape[0] == 0:
            return v
    except RuntimeError:
        pass
    return t.contiguous().view(-1, n)


class HeadRows(NamedTuple):
    """Rows of a [..., H, D] view with unit last stride that no (M, N) view holds (q or k inside
    a fused qkv tensor): row r starts at (r // heads) * outer + (r % heads) * stride."""
    m: int
    heads: int
    stride: int
    outer: int

    def named(self, suffix: str) -> dict:
        return {f"stride_{suffix}": self.stride, f"outer_{suffix}": self.outer}


def head_rows(t: torch.Tensor, n: int):
    """HeadRows of t where rows_view would copy it and its rows lie at two strides (its dims
    before the last two collapse into one, the tokens'); else None."""
    if t.dim() < 3 or t.stride(-1) != 1 or t.numel() == 0 or rows_view(t, n).data_ptr() == \
            t.data_ptr():
        return None
    outer = token_stride(t.shape[:-2], t.stride()[:-2])
    return None if outer is None else HeadRows(t.numel() // n, t.shape[-2], t.stride(-2), outer)


def token_stride(sizes, strides):
    """The one stride of dims that collapse into one (0 where all have size 1), else None."""
    outer, expect = 0, None
    for size, st in zip(reversed(sizes), reversed(strides)):
        if size == 1:
            continue
        if expect is not None and st != expect:
            return None
        outer = outer if expect is not None else st
        expect = st * size
    return outer


def plain_rows(t: torch.Tensor, heads: int) -> HeadRows:
    """An (M, N) tensor's rows, one stride apart, as two-stride rows of `heads` heads."""
    return HeadRows(t.shape[0], heads, t.stride(0), heads * t.stride(0))
