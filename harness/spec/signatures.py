"""Signatures written in specs, parsed and compared with the ones an implementation defines.

Only names, parameter kinds and default values are compared; annotations are the implementation's own.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any, NamedTuple

__all__ = ["Parameter", "parse_signature", "signature_of", "signature_mismatch"]

_NO_DEFAULT = "<required>"


class Parameter(NamedTuple):
    name: str
    kind: str  # positional-only, positional-or-keyword, var-positional, keyword-only, var-keyword
    default: str  # repr of the default value, or "<required>"


def parse_signature(text: str) -> list[Parameter]:
    """Parse a spec signature such as ``"(x, weight, bias=None, *, seed)"``.

    Raises:
        ValueError: not a parameter list, or a default that is not a Python literal.
    """
    try:
        function = ast.parse(f"def f{text}: pass").body[0]
    except SyntaxError as error:
        raise ValueError(f"signature {text!r} is not a Python parameter list: {error.msg}") from None
    assert isinstance(function, ast.FunctionDef)
    args = function.args

    def literal(node: ast.expr | None) -> str:
        if node is None:
            return _NO_DEFAULT
        try:
            return repr(ast.literal_eval(node))
        except ValueError:
            raise ValueError(f"signature {text!r}: default {ast.unparse(node)!r} is not a literal") from None

    positional = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = [
        Parameter(a.arg, "positional-only" if i < len(args.posonlyargs) else "positional-or-keyword", literal(d))
        for i, (a, d) in enumerate(zip(positional, defaults))
    ]
    if args.vararg:
        params.append(Parameter(args.vararg.arg, "var-positional", _NO_DEFAULT))
    params += [Parameter(a.arg, "keyword-only", literal(d)) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    if args.kwarg:
        params.append(Parameter(args.kwarg.arg, "var-keyword", _NO_DEFAULT))
    return params


_KIND_NAMES = {
    inspect.Parameter.POSITIONAL_ONLY: "positional-only",
    inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional-or-keyword",
    inspect.Parameter.VAR_POSITIONAL: "var-positional",
    inspect.Parameter.KEYWORD_ONLY: "keyword-only",
    inspect.Parameter.VAR_KEYWORD: "var-keyword",
}


def signature_of(obj: Any) -> list[Parameter]:
    """The parameters of a function, or of a class's constructor (without ``self``)."""
    signature = inspect.signature(obj)
    return [
        Parameter(p.name, _KIND_NAMES[p.kind], _NO_DEFAULT if p.default is inspect.Parameter.empty else repr(p.default))
        for p in signature.parameters.values()
    ]


def signature_mismatch(obj: Any, expected: str) -> str | None:
    """None when ``obj`` has the spec's signature, else a sentence saying how it differs."""
    try:
        actual = signature_of(obj)
    except (TypeError, ValueError) as error:
        return f"has no inspectable signature ({error})"
    wanted = parse_signature(expected)
    if actual == wanted:
        return None
    return f"has signature {_plain(obj)}, the spec requires {expected}"


def _plain(obj: Any) -> str:
    """The signature as written, annotations left out."""
    signature = inspect.signature(obj)
    empty = inspect.Parameter.empty
    plain = [p.replace(annotation=empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=plain, return_annotation=empty))
