"""Dtype names as specs write them (``float32``) and the torch dtypes they stand for."""

from __future__ import annotations

import torch

__all__ = ["torch_dtype", "dtype_name"]


def torch_dtype(name: str) -> torch.dtype:
    """``torch.float32`` for ``"float32"``; ValueError for a name torch does not have."""
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"{name!r} is not a torch dtype")
    return dtype


def dtype_name(dtype: torch.dtype) -> str:
    """``"float32"`` for ``torch.float32``."""
    return str(dtype).removeprefix("torch.")
