"""Element-by-element results: a select chain on the loop variable becomes direct stores.

The gradient of scalar-style code (``a[0]``, ``a[1]``, ... read one by one) is built as
``select(i == 99, g99, select(i == 98, g98, ... 0))``: linear in size, but a loop over
it does ``n`` selects per element, and LLVM's instruction combining and vectorizers work
on the whole chain in every copy of the loop. Storing ``g99`` at position 99, ``g98`` at
98 and so on (after a loop writing the default wherever no case applies) does the same
with ``n`` scalar stores.
"""

from __future__ import annotations

from tensorjit.ir.dtypes import DType
from tensorjit.ir.loops import Const, Expr, Kernel, Loop, Op, Stmt, Store, Var, rebuild

# Loops up to this extent are rewritten; longer ones keep their loop (and may be split
# across threads), since the rewrite leaves the kernel without a single top-level loop.
MAX_EXTENT = 1 << 12


def _case(cond: Expr, var: str) -> int | None:
    """The constant ``c`` if ``cond`` is ``var == c`` (either way round)."""
    if not (isinstance(cond, Op) and cond.op == "eq"):
        return None
    x, y = cond.args
    if isinstance(y, Var):
        x, y = y, x
    if isinstance(x, Var) and x.name == var and isinstance(y, Const):
        return int(y.value)
    return None


def substitute(e: Expr, var: str, value: int, varies: dict[int, bool]) -> Expr:
    """``e`` with loop variable ``var`` replaced by the constant ``value``. ``varies``
    memoizes which nodes mention ``var`` (share it between calls: the cases of a chain
    share most of their nodes, and only nodes that mention ``var`` are rebuilt)."""
    def mentions(x: Expr) -> bool:
        hit = varies.get(id(x))
        if hit is None:
            hit = (isinstance(x, Var) and x.name == var) or any(map(mentions, x.children()))
            varies[id(x)] = hit
        return hit

    memo: dict[int, Expr] = {}

    def go(x: Expr) -> Expr:
        if not mentions(x):
            return x
        hit = memo.get(id(x))
        if hit is None:
            hit = Const(value, DType.int64) if isinstance(x, Var) else \
                rebuild(x, tuple(go(c) for c in x.children()))
            memo[id(x)] = hit
        return hit

    return go(e)


def _rewrite(loop: Loop) -> tuple[Stmt, ...] | None:
    if not (isinstance(loop.extent, Const) and len(loop.body) == 1
            and isinstance(loop.body[0], Store)):
        return None
    extent = int(loop.extent.value)
    store = loop.body[0]
    cases: dict[int, Expr] = {}  # the first (outermost) select for a position wins
    e = store.value
    while isinstance(e, Op) and e.op == "select":
        c = _case(e.args[0], loop.var)
        if c is None:
            break
        if 0 <= c < extent:
            cases.setdefault(c, e.args[1])
        e = e.args[2]
    if len(cases) < 2 or extent > MAX_EXTENT:
        return None
    out: list[Stmt] = []
    varies: dict[int, bool] = {}
    if len(cases) < extent:  # the default where no case applies
        out.append(Loop(loop.var, loop.extent, (Store(store.buffer, store.index, e),),
                        loop.kind))
    for c in sorted(cases):
        out.append(Store(store.buffer, substitute(store.index, loop.var, c, varies),
                         substitute(cases[c], loop.var, c, varies)))
    return tuple(out)


def unroll_select_chains(kernel: Kernel) -> Kernel:
    """Rewrite the kernel's top-level loops whose one store is a select chain on the loop
    variable (see the module docstring)."""
    body: list[Stmt] = []
    changed = False
    for s in kernel.body:
        new = _rewrite(s) if isinstance(s, Loop) else None
        if new is None:
            body.append(s)
        else:
            body += new
            changed = True
    return Kernel(kernel.name, kernel.params, tuple(body), kernel.note) if changed else kernel
