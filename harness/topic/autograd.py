"""Autograd through an implementation, for gradient checks: failures become CheckFailures with a reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.autograd.gradcheck import GradcheckError

from harness.spec import Tolerance
from harness.spec.outcomes import CheckFailure
from harness.topic.layouts import non_contiguous

__all__ = ["gradients", "gradcheck_or_fail", "functional_call"]


def _leaf(tensor: torch.Tensor) -> torch.Tensor:
    """A fresh leaf requiring grad with ``tensor``'s values, in its layout (a non-contiguous input stays one)."""
    if tensor.is_contiguous():
        return tensor.detach().clone().requires_grad_(True)
    return non_contiguous(tensor.detach()).requires_grad_(True)


def gradients(function: Callable[..., Any], inputs: Sequence[torch.Tensor | None], grad_out: torch.Tensor, what: str) -> list[torch.Tensor | None]:
    """Gradients of ``sum(grad_out * function(*inputs))`` w.r.t. each input (None stays None).

    Raises:
        CheckFailure: the output is not a tensor of grad_out's shape, or is not connected to the inputs' graph.
    """
    leaves = [None if t is None else _leaf(t) for t in inputs]
    output = function(*leaves)
    if not isinstance(output, torch.Tensor) or output.shape != grad_out.shape:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise CheckFailure(f"{what}: expected a tensor of shape {tuple(grad_out.shape)}, got {got}")
    if not output.requires_grad:
        raise CheckFailure(f"{what}: the output does not require grad: it is not connected to the inputs (detached?)")
    wanted = [leaf for leaf in leaves if leaf is not None]
    grads = iter(torch.autograd.grad(output, wanted, grad_out, allow_unused=True))
    return [None if leaf is None else next(grads) for leaf in leaves]


def gradcheck_or_fail(function: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...], tolerance: Tolerance, what: str) -> None:
    """``torch.autograd.gradcheck`` (float64 inputs) whose failure is a CheckFailure with gradcheck's explanation."""
    leaves = tuple(_leaf(t) for t in inputs)
    if not function(*leaves).requires_grad:
        raise CheckFailure(f"{what}: the output does not require grad: it is not connected to the inputs (detached?)")
    try:
        torch.autograd.gradcheck(function, leaves, atol=tolerance.atol, rtol=tolerance.rtol)
    except GradcheckError as error:
        raise CheckFailure(f"{what}: {' '.join(str(error).split())[:400]}") from None


def functional_call(module: Any, parameters: dict[str, torch.Tensor], args: tuple[Any, ...]) -> Any:
    """``torch.func.functional_call(module, parameters, args)`` on an implementation's module wherever it lives: under
    sealed grading in its worker, the outputs connected to the graph of ``parameters`` and ``args`` all the same."""
    from harness.sealed.client import beside

    return beside(_functional_call, module, parameters, args)


def _functional_call(module: Any, parameters: dict[str, torch.Tensor], args: tuple[Any, ...]) -> Any:
    return torch.func.functional_call(module, parameters, args)
