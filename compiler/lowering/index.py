"""Index arithmetic with simplification, so fused movement ops stay affine.

Index expressions are kept in a canonical affine form ``sum(coef * atom) + const`` where
atoms are loop variables, symbolic dim sizes or products of them. ``floordiv`` and ``mod``
by a size fold away when the remainder's range is known to fit, which turns the
``unravel(ravel(i))`` of a reshape back into ``i``.
"""

from __future__ import annotations

from collections.abc import Mapping

from tensorjit.ir.dtypes import DType
from tensorjit.ir.loops import Const, DimParam, Expr, Op, Var, format_expr, mentions
from tensorjit.ir.shapes import Dim, Size

I64 = DType.int64
Affine = tuple[dict[Expr, int], int]


def const(v: int) -> Expr:
    return Const(v, I64)


def affine(e: Expr) -> Affine:
    if isinstance(e, Const):
        return {}, int(e.value)
    if isinstance(e, Op) and e.dtype is I64:
        if e.op in ("add", "sub"):
            ta, ca = affine(e.args[0])
            tb, cb = affine(e.args[1])
            sign = 1 if e.op == "add" else -1
            terms = dict(ta)
            for k, v in tb.items():
                terms[k] = terms.get(k, 0) + sign * v
            return {k: v for k, v in terms.items() if v}, ca + sign * cb
        if e.op == "mul":
            a, b = e.args
            if isinstance(b, Const):
                a, b = b, a
            if isinstance(a, Const):
                tb, cb = affine(b)
                c = int(a.value)
                return ({k: v * c for k, v in tb.items() if v * c}, cb * c)
    return {e: 1}, 0


def _order(e: Expr) -> tuple:
    if isinstance(e, Var):
        return (0, e.name)
    if isinstance(e, DimParam):
        return (1, e.name)
    return (2, format_expr(e))


def build(terms: Mapping[Expr, int], c: int) -> Expr:
    out: Expr | None = None
    for atom in sorted(terms, key=_order):
        coef = terms[atom]
        term = atom if coef == 1 else Op("mul", (atom, const(coef)), I64)
        out = term if out is None else Op("add", (out, term), I64)
    if out is None:
        return const(c)
    return out if c == 0 else Op("add", (out, const(c)), I64)


def add(a: Expr, b: Expr) -> Expr:
    ta, ca = affine(a)
    tb, cb = affine(b)
    terms = dict(ta)
    for k, v in tb.items():
        terms[k] = terms.get(k, 0) + v
    terms, c = _recombine({k: v for k, v in terms.items() if v}, ca + cb)
    return build(terms, c)


def _recombine(terms: dict[Expr, int], c: int) -> tuple[dict[Expr, int], int]:
    """``q * (x // d) * d + q * (x % d)`` -> ``q * x``: a reshape's unravel followed by a
    ravel of the same split collapses back to the flat index."""
    for atom in list(terms):
        if not (isinstance(atom, Op) and atom.op == "imod" and atom in terms):
            continue
        x, d = atom.args
        quotient = Op("idiv", (x, d), I64)
        coef = terms[atom]
        scaled = quotient if not isinstance(d, Const) else None
        if isinstance(d, Const) and terms.get(quotient, 0) == coef * int(d.value):
            del terms[atom], terms[quotient]
        elif scaled is not None:
            product = Op("mul", tuple(sorted((quotient, d), key=_order)), I64)
            if terms.get(product, 0) != coef:
                continue
            del terms[atom], terms[product]
        else:
            continue
        tx, cx = affine(x)
        for k, v in tx.items():
            terms[k] = terms.get(k, 0) + v * coef
        c += cx * coef
        terms = {k: v for k, v in terms.items() if v}
    return terms, c


def sub(a: Expr, b: Expr) -> Expr:
    return add(a, mul(b, const(-1)))


def mul(a: Expr, b: Expr) -> Expr:
    if isinstance(a, Const) and not isinstance(b, Const):
        a, b = b, a
    if isinstance(b, Const):
        c = int(b.value)
        ta, ca = affine(a)
        return build({k: v * c for k, v in ta.items() if v * c}, ca * c)
    ta, ca = affine(a)
    tb, cb = affine(b)
    if not ta and ca == 0 or not tb and cb == 0:
        return const(0)
    if not ta:
        return mul(b, const(ca))
    if not tb:
        return mul(a, const(cb))
    return Op("mul", tuple(sorted((a, b), key=_order)), I64)


def size_expr(size: Size, dims: Mapping[str, Expr]) -> Expr:
    out: Expr = const(size.coef)
    for s in size.syms:
        out = mul(out, dims[s])
    return out


def dim_expr(d: Dim | Size, dims: Mapping[str, Expr]) -> Expr:
    if isinstance(d, Size):
        return size_expr(d, dims)
    return dims[d] if isinstance(d, str) else const(d)


# Ranges: every loop variable v takes values in [0, extent(v)).
Extents = Mapping[str, Expr]


def _upper(e: Expr, extents: Extents) -> Expr | None:
    """An exclusive upper bound of a non-negative atom, or None if unknown."""
    if isinstance(e, Var):
        return extents.get(e.name)
    if isinstance(e, Op) and e.op == "imod":
        return e.args[1]
    top = max_value(e, extents)
    return None if top is None else const(top + 1)


def max_value(e: Expr, extents: Extents) -> int | None:
    """The largest value of a non-negative static index expression, or None if unknown
    (symbolic extents, negative coefficients)."""
    if isinstance(e, Const):
        return int(e.value)
    if isinstance(e, Var):
        up = extents.get(e.name)
        return int(up.value) - 1 if isinstance(up, Const) else None
    if not isinstance(e, Op):
        return None
    if e.op == "imod" and isinstance(e.args[1], Const):
        return int(e.args[1].value) - 1
    if e.op == "idiv" and isinstance(e.args[1], Const):
        top = max_value(e.args[0], extents)
        return None if top is None else top // int(e.args[1].value)
    terms, c = affine(e)
    if terms == {e: 1} or c < 0 or any(v < 0 for v in terms.values()):
        return None
    total = c
    for atom, coef in terms.items():
        top = max_value(atom, extents)
        if top is None:
            return None
        total += coef * top
    return total


def _fits(terms: Mapping[Expr, int], c: int, divisor: Expr, extents: Extents) -> bool:
    """True if 0 <= sum(terms) + c < divisor for every value of the variables."""
    if c < 0 or any(v < 0 for v in terms.values()):
        return False
    if isinstance(divisor, Const):
        total = c
        for atom, coef in terms.items():
            up = _upper(atom, extents)
            if not isinstance(up, Const):
                return False
            total += coef * (int(up.value) - 1)
        return total < int(divisor.value)
    # Symbolic divisor: only the pattern "one variable whose extent is the divisor".
    return c == 0 and len(terms) == 1 and next(iter(terms.values())) == 1 and \
        _upper(next(iter(terms)), extents) is divisor


def _split(terms: Mapping[Expr, int], divisor: Expr) -> tuple[dict[Expr, int], dict[Expr, int]]:
    """Terms divisible by ``divisor`` (already divided) and the rest."""
    quot: dict[Expr, int] = {}
    rest: dict[Expr, int] = {}
    for atom, coef in terms.items():
        if isinstance(divisor, Const):
            d = int(divisor.value)
            if coef % d == 0:
                quot[atom] = coef // d
                continue
        elif coef == 1 and atom is divisor:
            quot[const(1)] = quot.get(const(1), 0) + 1
            continue
        elif isinstance(atom, Op) and atom.op == "mul" and divisor in atom.args:
            other = atom.args[1] if atom.args[0] is divisor else atom.args[0]
            quot[other] = quot.get(other, 0) + coef
            continue
        rest[atom] = coef
    return quot, rest


def floordiv(a: Expr, divisor: Expr, extents: Extents) -> Expr:
    """``a // divisor`` for non-negative ``a``: (d*Q + R) // d == Q + R // d, and R // d
    is 0 when R is known to stay below d."""
    if isinstance(divisor, Const) and int(divisor.value) == 1:
        return a
    terms, c = affine(a)
    quot, rest = _split(terms, divisor)
    if any(v < 0 for v in rest.values()):
        # R may be negative for some values (3 - i = 2 + (1 - i)), where ``idiv``, defined
        # on non-negative operands, would round it the wrong way: divide ``a`` itself.
        return Op("idiv", (a, divisor), I64)
    cq = 0
    if isinstance(divisor, Const):
        cq, c = divmod(c, int(divisor.value))
    ones = sum(v for k, v in quot.items() if isinstance(k, Const))
    q = add(build({k: v for k, v in quot.items() if not isinstance(k, Const)}, cq),
            const(ones))
    if _fits(rest, c, divisor, extents):
        return q
    return add(q, Op("idiv", (build(rest, c), divisor), I64))


def mod(a: Expr, divisor: Expr, extents: Extents) -> Expr:
    """``a % divisor`` for non-negative ``a``: multiples of the divisor drop out."""
    if isinstance(divisor, Const) and int(divisor.value) == 1:
        return const(0)
    terms, c = affine(a)
    _, rest = _split(terms, divisor)
    if any(v < 0 for v in rest.values()):  # (see floordiv)
        return Op("imod", (a, divisor), I64)
    if isinstance(divisor, Const):
        c %= int(divisor.value)
    if _fits(rest, c, divisor, extents):
        return build(rest, c)
    return Op("imod", (build(rest, c), divisor), I64)


def ravel(index: list[Expr], shape: tuple[Dim, ...], dims: Mapping[str, Expr]) -> Expr:
    flat: Expr = const(0)
    for i, d in zip(index, shape):
        flat = add(mul(flat, dim_expr(d, dims)), i)
    return flat


def unravel(flat: Expr, shape: tuple[Dim, ...], dims: Mapping[str, Expr],
            extents: Extents) -> list[Expr]:
    out: list[Expr] = []
    rest = flat
    for k in range(len(shape) - 1, -1, -1):
        de = dim_expr(shape[k], dims)
        if isinstance(de, Const) and int(de.value) == 1:
            out.append(const(0))
        elif k == 0:
            out.append(rest)  # flat < numel, so the outermost index needs no mod
        else:
            out.append(mod(rest, de, extents))
            rest = floordiv(rest, de, extents)
    out.reverse()
    return out


def clamp(i: Expr, hi: Expr) -> Expr:
    """min(max(i, 0), hi - 1): keeps a speculative load inside its buffer."""
    return Op("imin", (Op("imax", (i, const(0)), I64), sub(hi, const(1))), I64)


def linear_in(e: Expr, name: str) -> tuple[Expr, Expr] | None:
    """``e == coef * name + rest`` with coef and rest free of variable ``name``, or None."""
    terms, c = affine(e)
    coef: Expr = const(0)
    rest: dict[Expr, int] = {}
    for atom, k in terms.items():
        if isinstance(atom, Var) and atom.name == name:
            coef = add(coef, const(k))
        elif isinstance(atom, Op) and atom.op == "mul" and len(atom.args) == 2 and any(
                isinstance(a, Var) and a.name == name for a in atom.args):
            other = atom.args[1] if isinstance(atom.args[0], Var) and \
                atom.args[0].name == name else atom.args[0]
            if mentions(other, name):
                return None
            coef = add(coef, mul(other, const(k)))
        elif mentions(atom, name):
            return None
        else:
            rest[atom] = k
    return coef, build(rest, c)
