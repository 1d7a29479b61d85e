"""Memory layouts of test inputs: the same values in a non-contiguous tensor or array.

An implementation that assumes contiguous memory (``.view`` on its input, raw-buffer walks) must fail on them, so
no two dimensions of the copy may merge: it is cut from a buffer one larger in every dimension, with every element
two apart.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

__all__ = ["LAYOUTS", "non_contiguous", "in_layout"]

LAYOUTS = ("contiguous", "non_contiguous")
T = TypeVar("T", torch.Tensor, np.ndarray)


def non_contiguous(value: T) -> T:
    """The same values (and ``requires_grad``) in a non-contiguous tensor or array whose dimensions cannot be merged,
    whenever it has more than one element: ``.view`` to another shape and raw-memory walks then go wrong."""
    if value.ndim == 0 or (value.numel() if isinstance(value, torch.Tensor) else value.size) <= 1:
        return value
    inside = (*(slice(0, size) for size in value.shape), 0)
    if isinstance(value, torch.Tensor):
        spread = torch.empty((*(size + 1 for size in value.shape), 2), dtype=value.dtype, device=value.device)[inside]
        spread.copy_(value.detach())
        return spread.requires_grad_(value.requires_grad)
    spread_array = np.empty((*(size + 1 for size in value.shape), 2), dtype=value.dtype)[inside]
    spread_array[...] = value
    return spread_array


def in_layout(value: T, layout: str) -> T:
    """``value`` as is (``"contiguous"``) or through :func:`non_contiguous` (``"non_contiguous"``)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout is one of {LAYOUTS}, got {layout!r}")
    return non_contiguous(value) if layout == "non_contiguous" else value
