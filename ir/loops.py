"""The loop IR: kernels as loop nests over flat buffers, and the module that runs them.

Expressions are small interned frozen nodes (identical subtrees are the same object, so
code generation shares them as common subexpressions). Index expressions are ``i64``
expressions over loop variables and symbolic dim sizes.

Text form (see :func:`format_kernel`)::

    kernel k0(in x: f32, out y: f32) {
      for i0 in 0..4096 {
        acc a0: max f32
        vfor i1 in 0..1024 { a0 <- max(x[i0 * 1024 + i1]) }
        ...
        y[i0] = a0
      }
    }

``for`` is a serial loop, ``vfor`` a loop the code generator vectorizes explicitly (a
vector body and a scalar tail), ``pfor`` a loop whose iterations may run on different
threads, ``tfor`` a transposing copy (one loop of one store inside, read along the inner
loop and written along this one; emitted a block of vector registers at a time).
``acc NAME: KIND DTYPE`` declares an accumulator that ``NAME <- KIND(value)`` updates;
later statements read it by name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tensorjit.ir.dtypes import DType
from tensorjit.ir.errors import VerificationError
from tensorjit.ir.interning import InternTable
from tensorjit.ir.shapes import Size

# ------------------------------------------------------------------------------------
# Expressions
# ------------------------------------------------------------------------------------


class Expr:
    """Base of interned expression nodes; compare and hash by identity."""

    __slots__ = ("__weakref__",)
    dtype: DType

    def children(self) -> tuple[Expr, ...]:
        return ()


_table = InternTable()
_lock = threading.Lock()


def _key_part(v: Any) -> Any:
    if isinstance(v, Expr):
        return ("e", id(v))
    if isinstance(v, float):
        return ("f", v.hex())
    if isinstance(v, tuple):
        return tuple(_key_part(x) for x in v)
    return (type(v).__name__, v)


def _intern(cls: type, *fields: Any) -> Any:
    return _intern_keyed(cls, (cls, *map(_key_part, fields)), fields)


def _intern_keyed(cls: type, key: tuple, fields: tuple) -> Any:
    """The live expression of ``cls`` for ``key``, else a new one made of ``fields``
    (the two hot classes, ``Const`` and ``Op``, build their keys directly)."""
    with _lock:
        e = _table.get(key)
        if e is None:
            e = _new_expr(cls)
            e._init(*fields)
            _table.put(key, e)
    return e


_new_expr = object.__new__


class Const(Expr):
    __slots__ = ("value", "dtype")

    def __new__(cls, value: Any, dtype: DType) -> Const:
        if dtype is DType.bool:
            value = bool(value)
        elif dtype.is_float:
            value = float(value)
        else:
            value = int(value)
        return _intern_keyed(cls, (cls, _key_part(value), dtype), (value, dtype))

    def _init(self, value: Any, dtype: DType) -> None:
        self.value, self.dtype = value, dtype


class Var(Expr):
    """A loop variable (i64)."""

    __slots__ = ("name", "dtype")

    def __new__(cls, name: str) -> Var:
        return _intern(cls, name)

    def _init(self, name: str) -> None:
        self.name, self.dtype = name, DType.int64


class DimParam(Expr):
    """The runtime size of a symbolic dim (i64), read from the call's dims array."""

    __slots__ = ("name", "index", "dtype")

    def __new__(cls, name: str, index: int) -> DimParam:
        return _intern(cls, name, index)

    def _init(self, name: str, index: int) -> None:
        self.name, self.index, self.dtype = name, index, DType.int64


class Load(Expr):
    """``buffer[index]``; with a ``mask`` (bool), lanes where it is false read nothing
    (their value is 0), so ``index`` may point outside the buffer there: padding."""

    __slots__ = ("buffer", "index", "dtype", "mask")

    def __new__(cls, buffer: str, index: Expr, dtype: DType, mask: Expr | None = None) -> Load:
        return _intern(cls, buffer, index, dtype, mask)

    def _init(self, buffer: str, index: Expr, dtype: DType, mask: Expr | None) -> None:
        self.buffer, self.index, self.dtype, self.mask = buffer, index, dtype, mask

    def children(self) -> tuple[Expr, ...]:
        return (self.index,) if self.mask is None else (self.index, self.mask)


class Op(Expr):
    """An operation on values: elementwise graph ops by name (``add``, ``exp``, ``select``,
    ...) plus index arithmetic on non-negative i64 values: ``idiv imod imin imax``."""

    __slots__ = ("op", "args", "dtype")

    def __new__(cls, op: str, args: tuple[Expr, ...], dtype: DType) -> Op:
        args = tuple(args)
        return _intern_keyed(cls, (cls, op, tuple(map(id, args)), dtype), (op, args, dtype))

    def _init(self, op: str, args: tuple[Expr, ...], dtype: DType) -> None:
        self.op, self.args, self.dtype = op, args, dtype

    def children(self) -> tuple[Expr, ...]:
        return self.args


class Cast(Expr):
    __slots__ = ("x", "dtype")

    def __new__(cls, x: Expr, dtype: DType) -> Cast:
        return _intern(cls, x, dtype)

    def _init(self, x: Expr, dtype: DType) -> None:
        self.x, self.dtype = x, dtype

    def children(self) -> tuple[Expr, ...]:
        return (self.x,)


class AccRef(Expr):
    """The value of an accumulator after its loop finished."""

    __slots__ = ("name", "dtype")

    def __new__(cls, name: str, dtype: DType) -> AccRef:
        return _intern(cls, name, dtype)

    def _init(self, name: str, dtype: DType) -> None:
        self.name, self.dtype = name, dtype


def walk(*roots: Expr) -> Iterator[Expr]:
    """Every node reachable from ``roots``, each once. Expressions are interned DAGs with
    much sharing (scalar-style code), so a tree walk would be exponential in depth."""
    stack = list(roots)
    seen: set[int] = set()
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        stack.extend(x.children())


def postorder(*roots: Expr, stop: Callable[[Expr], bool] | None = None) -> list[Expr]:
    """Every node reachable from ``roots`` once, children before their parents; nodes
    for which ``stop`` holds (already computed, say) are left out with all below them.
    Iterative: scalar-style code nests expressions thousands deep."""
    out: list[Expr] = []
    seen: set[int] = set()
    stack: list[tuple[Expr, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        e, expanded = stack.pop()
        if expanded:
            out.append(e)
            continue
        if id(e) in seen or (stop is not None and stop(e)):
            continue
        seen.add(id(e))
        stack.append((e, True))
        stack.extend((c, False) for c in reversed(e.children()) if id(c) not in seen)
    return out


def mentions(e: Expr, name: str) -> bool:
    """Does loop variable ``name`` occur in ``e``?"""
    return any(isinstance(x, Var) and x.name == name for x in walk(e))


def rebuild(e: Expr, children: tuple[Expr, ...]) -> Expr:
    """``e`` with its children replaced (same kind, same attributes)."""
    if isinstance(e, Op):
        return Op(e.op, children, e.dtype)
    if isinstance(e, Cast):
        return Cast(children[0], e.dtype)
    if isinstance(e, Load):
        return Load(e.buffer, children[0], e.dtype, children[1] if len(children) > 1 else None)
    return e


# ------------------------------------------------------------------------------------
# Statements, kernels, module
# ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    buffer: str
    index: Expr
    value: Expr


@dataclass(frozen=True)
class AccInit:
    """Declare accumulator ``name`` of ``kind`` (sum prod max min argmax argmin)."""

    name: str
    kind: str
    dtype: DType


def accumulator_identity(kind: str, dtype: DType) -> float | int | bool:
    """The value an accumulator of ``kind`` starts from (what an empty reduction gives)."""
    if kind == "sum":
        return 0
    if kind == "prod":
        return 1
    if dtype is DType.bool:
        return kind in ("min", "argmin")
    if dtype.is_float:
        big: float | int = float("inf")
    else:
        big = (1 << (dtype.itemsize * 8 - 1)) - 1
    return -big - (0 if dtype.is_float else 1) if kind in ("max", "argmax") else big


@dataclass(frozen=True)
class AccUpdate:
    """Fold ``value`` into accumulator ``name``; ``position`` is the argmax/argmin index."""

    name: str
    value: Expr
    position: Expr | None = None


@dataclass(frozen=True)
class Loop:
    var: str
    extent: Expr
    body: tuple[Stmt, ...]
    # serial | vector | parallel | transpose: the body is one loop whose one store reads
    # its value along the inner loop and writes it along this one (a transposing copy,
    # done a square block of vector registers at a time); printed for/vfor/pfor/tfor.
    kind: str = "serial"


@dataclass(frozen=True)
class Gemm:
    """One block of rows of a blocked matrix product ``out = epilogue(A @ B)``.

    Computes rows ``[block * mc, min(m, block * mc + mc))`` of an ``m x n`` result with
    a register-blocked micro-kernel of ``mr x nr`` (see ``compiler/codegen/gemm.py``).
    ``A[i, k]`` is at ``a_base + i * a_sm + k * a_sk`` (any strides: transposed or sliced
    operands are read in place while packing); ``b_packed`` holds B in panels of ``nr``
    columns (``pack_b`` layout: panel p, row k at ``b_base + (p * k_extent + k) * nr``);
    the result element ``(i, j)`` goes to ``out[out_base + i * n + j]`` as the value of
    ``epilogue``, an expression of ``AccRef("gemm.acc")`` (the product) and the variables
    ``gm``/``gn`` (row and column) — bias, activation and residual fused into the store.
    With ``b_value`` set, B is instead packed inside the GEMM, one ``kc x nr`` panel at a
    time into a stack buffer, from that expression of ``pk`` (row of B) and ``pn``
    (column): an operand read once per product (a conv's im2col windows) then never
    goes through memory; ``b_packed`` is empty.
    """

    block: Expr
    m: Expr
    n: Expr
    k: Expr
    a: str
    a_base: Expr
    a_sm: Expr
    a_sk: Expr
    b_packed: str
    b_base: Expr
    out: str
    out_base: Expr
    epilogue: Expr
    dtype: DType
    mc: int
    kc: int
    mr: int
    nr: int
    b_value: Expr | None = None

    @property
    def acc(self) -> Expr:
        return AccRef(GEMM_ACC, self.dtype)


GEMM_ACC = "gemm.acc"
Stmt = Store | AccInit | AccUpdate | Loop | Gemm


def walk_statements(body: tuple[Stmt, ...]) -> Iterator[Stmt]:
    """Every statement of ``body``, loops before their bodies, in program order."""
    for s in body:
        yield s
        if isinstance(s, Loop):
            yield from walk_statements(s.body)


def iterations(body: tuple[Stmt, ...], symbolic: int | None = None) -> int | None:
    """Statements executed by one pass over ``body``: nested loops multiply, statements
    one after the other add. A loop of symbolic extent counts ``symbolic`` iterations
    (None: the count is unknown); a GEMM makes it unknown."""
    total = 0
    for s in body:
        if isinstance(s, Gemm):
            return None
        if isinstance(s, Loop):
            inner = iterations(s.body, symbolic)
            extent = int(s.extent.value) if isinstance(s.extent, Const) else symbolic
            if inner is None or extent is None:
                return None
            total += extent * max(inner, 1)
        else:
            total += 1
    return total


def statement_exprs(s: Stmt) -> list[Expr]:
    """The expressions ``s`` itself evaluates (a loop: its extent, not its body)."""
    if isinstance(s, Store):
        return [s.index, s.value]
    if isinstance(s, AccUpdate):
        return [s.value] + ([s.position] if s.position is not None else [])
    if isinstance(s, Loop):
        return [s.extent]
    if isinstance(s, Gemm):
        return [s.block, s.m, s.n, s.k, s.a_base, s.a_sm, s.a_sk, s.b_base, s.out_base,
                s.epilogue] + ([s.b_value] if s.b_value is not None else [])
    return []


@dataclass(frozen=True)
class BufferParam:
    name: str
    dtype: DType
    role: str  # in | out | scratch (private to each call of the kernel, on its stack)
    numel: int = 0  # scratch only: the static element count


@dataclass(frozen=True)
class Kernel:
    name: str
    params: tuple[BufferParam, ...]
    body: tuple[Stmt, ...]
    note: str = ""  # why this kernel exists (which graph nodes it computes)


@dataclass(frozen=True)
class Buffer:
    """A buffer of the whole program: an argument, a result or an arena temporary."""

    name: str
    dtype: DType
    numel: Size
    kind: str  # input | output | temp | const | scratch (per kernel call, not in the arena)
    position: int = 0  # argument or result position; const buffers: index into consts


@dataclass
class Module:
    name: str
    buffers: list[Buffer]
    kernels: list[Kernel]
    symbols: tuple[str, ...]  # symbolic dim names, in the order of the dims array
    consts: list[Any] = field(default_factory=list)  # arrays bound to const buffers

    def __str__(self) -> str:
        return format_module(self)


# ------------------------------------------------------------------------------------
# Printing
# ------------------------------------------------------------------------------------

_INFIX = {"add": "+", "sub": "-", "mul": "*", "idiv": "//", "imod": "%"}


def format_expr(e: Expr) -> str:
    if isinstance(e, Const):
        return repr(e.value) if e.dtype in (DType.int64, DType.bool) else \
            f"{e.value!r}:{e.dtype.short}"
    if isinstance(e, Var):
        return e.name
    if isinstance(e, DimParam):
        return f"${e.name}"
    if isinstance(e, AccRef):
        return e.name
    if isinstance(e, Load):
        if e.mask is not None:
            return f"{e.buffer}[{format_expr(e.index)} if {format_expr(e.mask)}]"
        return f"{e.buffer}[{format_expr(e.index)}]"
    if isinstance(e, Cast):
        return f"{e.dtype.short}({format_expr(e.x)})"
    if isinstance(e, Op):
        if e.op in _INFIX and len(e.args) == 2 and e.dtype is DType.int64:
            return f"({format_expr(e.args[0])} {_INFIX[e.op]} {format_expr(e.args[1])})"
        return f"{e.op}({', '.join(format_expr(a) for a in e.args)})"
    raise TypeError(e)


def _format_stmt(s: Stmt, indent: str, out: list[str]) -> None:
    if isinstance(s, Loop):
        kw = {"serial": "for", "vector": "vfor", "parallel": "pfor", "transpose": "tfor"}[s.kind]
        out.append(f"{indent}{kw} {s.var} in 0..{format_expr(s.extent)} {{")
        for b in s.body:
            _format_stmt(b, indent + "  ", out)
        out.append(f"{indent}}}")
    elif isinstance(s, Store):
        out.append(f"{indent}{s.buffer}[{format_expr(s.index)}] = {format_expr(s.value)}")
    elif isinstance(s, AccInit):
        out.append(f"{indent}acc {s.name}: {s.kind} {s.dtype.short}")
    elif isinstance(s, AccUpdate):
        pos = f" at {format_expr(s.position)}" if s.position is not None else ""
        out.append(f"{indent}{s.name} <- {format_expr(s.value)}{pos}")
    elif isinstance(s, Gemm):
        a = f"{s.a}[{format_expr(s.a_base)} + gm*{format_expr(s.a_sm)} + gk*{format_expr(s.a_sk)}]"
        out.append(f"{indent}gemm rows {format_expr(s.block)}*{s.mc} +{s.mc} of "
                   f"{format_expr(s.m)}x{format_expr(s.n)}x{format_expr(s.k)} "
                   f"(tile {s.mr}x{s.nr}, kc {s.kc}) {{")
        bv = f"{s.b_packed}[packed]" if s.b_value is None else \
            f"pack(pk=gk, pn=gn: {format_expr(s.b_value)})"
        out.append(f"{indent}  {GEMM_ACC} = sum(gk) {a} * {bv}")
        out.append(f"{indent}  {s.out}[{format_expr(s.out_base)} + gm*n + gn] = "
                   f"{format_expr(s.epilogue)}")
        out.append(f"{indent}}}")


def format_kernel(k: Kernel) -> str:
    params = ", ".join(f"{p.role} {p.name}: {p.dtype.short}"
                       + (f"[{p.numel}]" if p.role == "scratch" else "") for p in k.params)
    out = [f"# {k.note}"] if k.note else []
    out.append(f"kernel {k.name}({params}) {{")
    for s in k.body:
        _format_stmt(s, "  ", out)
    out.append("}")
    return "\n".join(out)


def format_module(m: Module) -> str:
    lines = [f"module {m.name}"]
    for b in m.buffers:
        lines.append(f"  buffer {b.name}: {b.dtype.short}[{b.numel}] {b.kind}")
    return "\n".join(lines) + "\n\n" + "\n\n".join(format_kernel(k) for k in m.kernels)


# ------------------------------------------------------------------------------------
# Verification
# ------------------------------------------------------------------------------------


def verify_module(m: Module) -> None:
    """Check scoping of loop variables and accumulators and that buffers are declared."""
    names = {b.name for b in m.buffers}
    for k in m.kernels:
        params = {p.name for p in k.params}
        for p in params:
            if p not in names and not any(
                    pp.role == "scratch" for pp in k.params if pp.name == p):
                raise VerificationError(f"kernel {k.name}: buffer {p} is not in the module\n"
                                        + format_kernel(k))
        _verify_block(k, k.body, set(), set(), params)


def _verify_block(k: Kernel, body: tuple[Stmt, ...], vars_: set[str], accs: set[str],
                  params: set[str], verified: _Verified | None = None) -> None:
    verified = {} if verified is None else verified
    accs = set(accs)
    for s in body:
        if isinstance(s, Loop):
            _verify_expr(k, s.extent, vars_, accs, params)
            if s.var in vars_:
                raise VerificationError(f"kernel {k.name}: loop variable {s.var} shadows\n"
                                        + format_kernel(k))
            _verify_block(k, s.body, vars_ | {s.var}, accs, params, verified)
            if s.kind == "vector" and any(isinstance(b, Loop) for b in s.body):
                raise VerificationError(f"kernel {k.name}: vector loop {s.var} is not "
                                        "innermost\n" + format_kernel(k))
            if s.kind == "transpose" and not _is_transpose_nest(s):
                raise VerificationError(f"kernel {k.name}: transposing loop {s.var} must "
                                        "hold one loop holding one store\n"
                                        + format_kernel(k))
        elif isinstance(s, AccInit):
            accs.add(s.name)
        elif isinstance(s, AccUpdate):
            if s.name not in accs:
                raise VerificationError(f"kernel {k.name}: update of undeclared "
                                        f"accumulator {s.name}\n" + format_kernel(k))
            _verify_expr(k, s.value, vars_, accs, params, verified)
        elif isinstance(s, Gemm):
            for buf in (s.a, s.out) + ((s.b_packed,) if s.b_value is None else ()):
                if buf not in params:
                    raise VerificationError(f"kernel {k.name}: gemm uses undeclared {buf}\n"
                                            + format_kernel(k))
            gemm_vars = vars_ | {"gm", "gn"}
            for e in (s.block, s.m, s.n, s.k, s.a_base, s.a_sm, s.a_sk, s.b_base, s.out_base):
                _verify_expr(k, e, vars_, accs, params)
            _verify_expr(k, s.epilogue, gemm_vars, accs | {GEMM_ACC}, params)
            if s.b_value is not None:
                _verify_expr(k, s.b_value, vars_ | {"pk", "pn"}, accs, params)
        elif isinstance(s, Store):
            if s.buffer not in params:
                raise VerificationError(f"kernel {k.name}: store to undeclared {s.buffer}\n"
                                        + format_kernel(k))
            _verify_expr(k, s.index, vars_, accs, params, verified)
            _verify_expr(k, s.value, vars_, accs, params, verified)


def _is_transpose_nest(s: Loop) -> bool:
    return len(s.body) == 1 and isinstance(s.body[0], Loop) and len(s.body[0].body) == 1 \
        and isinstance(s.body[0].body[0], Store)


# Nodes already verified, per kernel and scope (loop variables, accumulators): statements
# of one scope share much of their expressions (scalar-style code), and a walk per
# statement would make verification quadratic.
_Verified = dict[tuple[frozenset[str], frozenset[str]], set[int]]


def _verify_expr(k: Kernel, e: Expr, vars_: set[str], accs: set[str], params: set[str],
                 verified: _Verified | None = None) -> None:
    done = set[int]() if verified is None else \
        verified.setdefault((frozenset(vars_), frozenset(accs)), set())
    stack = [e]
    while stack:
        x = stack.pop()
        if id(x) in done:
            continue
        done.add(id(x))
        stack.extend(x.children())
        if isinstance(x, Var) and x.name not in vars_:
            raise VerificationError(f"kernel {k.name}: variable {x.name} used outside its "
                                    f"loop in {format_expr(e)}\n" + format_kernel(k))
        if isinstance(x, AccRef) and x.name not in accs:
            raise VerificationError(f"kernel {k.name}: accumulator {x.name} read before it "
                                    f"is declared in {format_expr(e)}\n" + format_kernel(k))
        if isinstance(x, Load) and x.buffer not in params:
            raise VerificationError(f"kernel {k.name}: load from undeclared {x.buffer}\n"
                                    + format_kernel(k))
