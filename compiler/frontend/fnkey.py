"""When do two Python functions trace to the same graph? A key for reusing traces.

Tracing and differentiating scalar-style code (a chain of 100 joints) takes far longer
than compiling a cached graph, and code often builds a new function object for the same
computation (``tj.grad(make_loss(n))`` in a loop, a closure per call). Two functions get
the same key when they run the same code object with equal closure values, defaults and
referenced globals, where "equal" means: equal immutable scalars and strings (and tuples
of them), or the very same object for modules, functions, classes and other values
compared by identity. A function whose closure or globals hold anything else (an array,
a list, a dict: values that can change between traces) gets no key and is traced every
time.

As with any trace cache (JAX's ``jit`` keys on the function object), a global that a
*called* helper reads is not part of the key: rebinding it does not retrace.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_BY_IDENTITY = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type,
                types.MethodType)


class _Unkeyable(Exception):
    pass


class _Same:
    """Wraps an object so that keys compare it by identity (and keep it alive, so that
    its id cannot be reused by another object while the key exists)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


def _value_key(v: Any, depth: int = 0) -> Any:
    if isinstance(v, _SCALARS):
        return (type(v), v)
    if isinstance(v, tuple) and depth < 4:
        return (tuple, tuple(_value_key(x, depth + 1) for x in v))
    if isinstance(v, _BY_IDENTITY):
        return _Same(v)
    raise _Unkeyable


def function_key(fn: Callable[..., Any]) -> tuple | None:
    """A hashable key equal for functions that trace the same (see the module docstring),
    or None when ``fn`` cannot be keyed (not a plain function, or mutable state)."""
    if not isinstance(fn, types.FunctionType):
        return None
    code = fn.__code__
    try:
        cells = tuple(_value_key(c.cell_contents) for c in fn.__closure__ or ())
        defaults = _value_key(fn.__defaults__ or ())
        kwdefaults = tuple(sorted((k, _value_key(v))
                                  for k, v in (fn.__kwdefaults__ or {}).items()))
        glob = fn.__globals__
        names = tuple((name, _value_key(glob[name])) for name in _global_names(code)
                      if name in glob)
    except (_Unkeyable, ValueError):  # ValueError: an empty closure cell
        return None
    return (code, cells, defaults, kwdefaults, names)


def _global_names(code: types.CodeType) -> list[str]:
    """Names the code (and code nested in it) may look up as globals; attribute names
    are included too (they are not told apart without disassembling)."""
    out: set[str] = set()
    stack = [code]
    while stack:
        c = stack.pop()
        out.update(c.co_names)
        stack += [k for k in c.co_consts if isinstance(k, types.CodeType)]
    return sorted(out)
