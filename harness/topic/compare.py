"""Comparing results with their oracle, with failure messages that say how far off and where."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from harness.spec import Tolerance
from harness.spec.outcomes import CheckFailure

__all__ = ["assert_close", "as_numpy"]


def as_numpy(value: Any) -> np.ndarray:
    """A tensor, array, number or nested list as a numpy array (tensors are detached and moved to the CPU)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy() if value.dtype != torch.bfloat16 else value.detach().float().cpu().numpy()
    return np.asarray(value)


def _dtype_name(value: Any) -> str:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return str(value.dtype).removeprefix("torch.")
    return type(value).__name__


def distinct(actual: float, expected: float) -> tuple[str, str]:
    """Both numbers printed with the fewest significant digits (at least 6) that tell them apart."""
    for digits in range(6, 18):
        shown = f"{actual:.{digits}g}", f"{expected:.{digits}g}"
        if shown[0] != shown[1] or actual == expected:
            return shown
    return repr(actual), repr(expected)


def assert_close(actual: Any, expected: Any, tolerance: Tolerance, *, what: str = "result", check_dtype: bool = True) -> None:
    """Elementwise ``|actual - expected| <= atol + rtol * |expected|``, NaN only where NaN is expected.

    Args:
        actual: the implementation's output (tensor, array or number).
        expected: the oracle's output.
        tolerance: from the spec (``spec_check.tolerance_for(dtype)``).
        what: names the compared quantity in the message ("gradient of x", ...).
        check_dtype: also require equal dtypes when both are tensors or arrays.

    Raises:
        CheckFailure: shape, dtype or values differ; ``numbers`` holds max_abs_error, max_rel_error,
            mismatched and total.
    """
    if not isinstance(actual, (torch.Tensor, np.ndarray, int, float, bool, list, tuple, np.generic)):
        raise CheckFailure(f"{what}: expected a tensor or array like the oracle's, got {type(actual).__name__}")
    a, e = as_numpy(actual), as_numpy(expected)
    if a.shape != e.shape:
        raise CheckFailure(f"{what}: shape {tuple(a.shape)} but the oracle's is {tuple(e.shape)}")
    if check_dtype and isinstance(actual, (torch.Tensor, np.ndarray)) and isinstance(expected, (torch.Tensor, np.ndarray)):
        if _dtype_name(actual) != _dtype_name(expected):
            raise CheckFailure(f"{what}: dtype {_dtype_name(actual)} but the oracle's is {_dtype_name(expected)}")
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        abs_error = np.abs(a64 - e64)
        allowed = tolerance.atol + tolerance.rtol * np.abs(e64)
        bad = ~(abs_error <= allowed)
        both_nan = np.isnan(a64) & np.isnan(e64)
        both_same_inf = np.isinf(a64) & (a64 == e64)
        bad &= ~(both_nan | both_same_inf)
        rel_error = np.where(np.abs(e64) > 0, abs_error / np.abs(e64), np.where(abs_error > 0, np.inf, 0.0))
    if not bad.any():
        return
    finite_abs = np.where(np.isnan(abs_error), np.inf, abs_error)
    worst = np.unravel_index(int(np.argmax(finite_abs)), a.shape) if a.ndim else ()
    numbers = {
        "max_abs_error": float(finite_abs.max()),
        "max_rel_error": float(np.nanmax(np.where(both_nan, 0.0, rel_error))),
        "mismatched": int(bad.sum()),
        "total": int(bad.size),
        "worst_index": [int(i) for i in worst],
    }
    nan_count = int((np.isnan(a64) & ~np.isnan(e64)).sum())
    got, wanted = distinct(float(a64[worst]), float(e64[worst]))
    message = (
        f"{what}: {numbers['mismatched']} of {numbers['total']} elements "
        f"({100 * numbers['mismatched'] / max(numbers['total'], 1):.1f}%) outside rtol={tolerance.rtol:g}, atol={tolerance.atol:g} "
        f"(shape {tuple(a.shape)}, {_dtype_name(actual)}); "
        f"max abs error {numbers['max_abs_error']:.3g} at index {tuple(numbers['worst_index'])} "
        f"(got {got}, expected {wanted}); max rel error {numbers['max_rel_error']:.3g}"
        + (f"; {nan_count} NaN where the oracle has a number" if nan_count else "")
    )
    raise CheckFailure(message, numbers)
