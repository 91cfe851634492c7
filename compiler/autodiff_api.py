"""The differentiation API: ``tj.grad``, ``tj.value_and_grad``, ``tj.vjp``, ``tj.jvp`` and
``tj.hessian``.

Each works two ways, chosen per call:

- with traced Tensors (inside ``tj.jit``/``tj.trace``, or nested in another ``tj.grad``),
  the function is traced on placeholders and the backward nodes join the current trace
  (``passes/autodiff``), so the gradient is fused and compiled with the code around it,
  and grad of grad works because backward nodes are ordinary nodes;
- with arrays, the forward-and-backward graph is traced and compiled once per argument
  signature (pytree structure, shapes, dtypes), cached on the returned function, and
  every later call is one native call.

Arguments may be nested tuples, lists and dicts of arrays; gradients come back in the
structure of the differentiated arguments. ``argnums`` is an int (gradient of that
argument) or a tuple (a tuple of gradients), as in JAX.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tensorjit.compiler.api import _OPTIONS, compile, forget_compiled_graphs, paused_gc
from tensorjit.compiler.frontend.fnkey import function_key
from tensorjit.compiler.frontend.lift import to_tensor, tracing, tracing_scope
from tensorjit.compiler.frontend.pytree import TreeDef, flatten, unflatten
from tensorjit.compiler.frontend.tensor import Tensor
from tensorjit.compiler.frontend.trace import trace
from tensorjit.compiler.memo import RecentCache
from tensorjit.ir.build import const
from tensorjit.ir.errors import DTypeError, ShapeError, TensorJitError, UnsupportedError
from tensorjit.ir.graph import Node
from tensorjit.ir.shapes import format_shape
from tensorjit.passes import autodiff
from tensorjit.passes.autodiff import nodes as n
from tensorjit.runtime.compiled import PROBE_MISS, CompiledFunction

Argnums = int | Sequence[int]


# --- helpers -----------------------------------------------------------------------------
def _argnums(argnums: Argnums, nargs: int, what: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums:
        raise TensorJitError(f"{what}: argnums is empty")
    for a in nums:
        if not isinstance(a, int) or not -nargs <= a < nargs:
            raise TensorJitError(f"{what}: argnums {argnums!r} does not fit a call with "
                                 f"{nargs} positional argument(s)")
    return tuple(a % nargs for a in nums)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _traced(args: Any) -> bool:
    if tracing():
        return True
    leaves, _ = flatten(args)
    return any(isinstance(x, Tensor) for x in leaves)


def _float_leaf(value: Any, what: str) -> Tensor:
    t = to_tensor(value, what)
    if not t.dtype.is_float:
        raise DTypeError(f"{what}: differentiation needs float inputs, got {t.dtype} "
                         "(pass integer arguments outside argnums)")
    return t


class _Inputs:
    """The differentiated arguments of one traced call: each leaf replaced by a placeholder
    (see ``passes/autodiff/substitute``), and the mapping back to the actual nodes.

    ``fresh``: the leaves are parameters of a graph built for this call alone (the
    compiled path), which nothing else can reach, so they are differentiated directly:
    no placeholder, and no substitution pass that would rebuild every forward node."""

    def __init__(self, args: Sequence[Any], argnums: Sequence[int], what: str,
                 require_float: bool = True, fresh: bool = False) -> None:
        self.args = list(args)
        self.defs: list[TreeDef] = []
        self.holders: list[Node] = []
        self.counts: list[int] = []
        self.mapping: dict[Node, Node] = {}
        for i in argnums:
            leaves, td = flatten(args[i])
            new = []
            for leaf in leaves:
                t = to_tensor(leaf, f"{what}: argument {i}")
                if require_float:
                    _float_leaf(t, f"{what}: argument {i}")
                if t.dtype.is_float and fresh and t.node.op == "param":
                    self.holders.append(t.node)
                    new.append(t)
                elif t.dtype.is_float:
                    h = autodiff.placeholder(t.shape, t.dtype)
                    self.holders.append(h)
                    self.mapping[h] = t.node
                    new.append(Tensor(h, t.weak))
                else:
                    new.append(t)
            self.args[i] = unflatten(td, new)
            self.defs.append(td)
            self.counts.append(len(leaves))
        self._leaves_of = [flatten(self.args[i])[0] for i in argnums]

    def resolve(self, nodes: Sequence[Node]) -> list[Node]:
        return autodiff.substitute(nodes, self.mapping)

    def trees(self, per_holder: Sequence[Node | None]) -> list[Any]:
        """One tree per differentiated argument from one node per placeholder; integer
        leaves (allowed when ``require_float`` is off) get zeros of their own dtype."""
        found = dict(zip(self.holders, per_holder))
        out = []
        for td, leaves in zip(self.defs, self._leaves_of):
            items = []
            for leaf in leaves:
                node = found.get(leaf.node)
                if node is None:
                    node = n.zeros_like(leaf.node)
                items.append(Tensor(node))
            out.append(unflatten(td, items))
        return out


def _call(fn: Callable[..., Any], args: Sequence[Any]) -> Any:
    with tracing_scope():
        return fn(*args)


def _scalar(out: Any, fn: Callable[..., Any], what: str) -> Tensor:
    t = to_tensor(out, f"{what}: output of {_name(fn)}")
    if t.shape != ():
        raise ShapeError(f"{what}: {_name(fn)} must return a scalar (shape ()), got shape "
                         f"{format_shape(t.shape)}; use tj.vjp or tj.jvp for non-scalar "
                         "outputs, or reduce it (.sum(), .mean())")
    if not t.dtype.is_float:
        raise DTypeError(f"{what}: {_name(fn)} must return a float scalar, got {t.dtype}")
    return t


def _split_aux(out: Any, fn: Callable[..., Any], what: str) -> tuple[Any, Any]:
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TensorJitError(f"{what}(has_aux=True): {_name(fn)} must return a pair "
                             "(value, aux)")
    return out[0], out[1]


def _tensor_nodes(leaves: Sequence[Any]) -> list[Node]:
    return [x.node for x in leaves if isinstance(x, Tensor)]


def _rebuild(leaves: Sequence[Any], nodes: Sequence[Node]) -> list[Any]:
    """``leaves`` with their Tensors replaced, in order, by Tensors of ``nodes``."""
    it = iter(nodes)
    return [Tensor(next(it)) if isinstance(x, Tensor) else x for x in leaves]


# --- compiled execution with arrays ------------------------------------------------------
def _leaf_key(x: Any) -> tuple:
    if isinstance(x, np.ndarray):
        return (x.shape, x.dtype)
    if isinstance(x, (bool, int, float)):
        return ((), type(x).__name__)
    a = np.asarray(x)
    return (a.shape, a.dtype, "asarray")


def _spec(x: Any) -> Any:
    if isinstance(x, (bool, int, float, np.ndarray)):
        return x
    return np.asarray(x)


def _arg(x: Any) -> Any:
    return x if isinstance(x, (bool, int, float, np.ndarray)) else np.asarray(x)


# Builds shared by programs of functions with equal ``function_key``s: a new function
# object for the same code (``tj.grad(make_loss(n))`` again) skips tracing and autodiff.
_SHARED: RecentCache[tuple, tuple[CompiledFunction, TreeDef]] = RecentCache()


def clear_caches() -> None:
    """``tj.clear_caches()``: forget the compiled code this process keeps for reuse, so
    that the next ``tj.compile`` of a graph, or the first call of a new ``tj.grad``,
    ``tj.value_and_grad``, ... function, compiles again (frees their memory; measures a
    cold compile). Functions already called keep the code they hold, and the disk cache
    is untouched (``tensorjit cache clear`` empties it)."""
    _SHARED.clear()
    forget_compiled_graphs()


class _Program:
    """A traced-and-compiled function of pytree arguments, one build per signature.

    ``key``, when not None, says what ``build`` computes (the transform, its settings and
    the user function's ``function_key``): programs with equal keys share builds."""

    def __init__(self, name: str, build: Callable[..., Any], options: dict[str, Any],
                 key: tuple | None = None) -> None:
        self.name = name
        self.build = build  # (*args as Tensor trees) -> output tree of Tensors
        self.options = options
        self.key = key
        self.entries: dict[tuple, tuple[CompiledFunction, TreeDef]] = {}
        # Calls whose arguments are all plain arrays skip flattening: (shape, dtype) per
        # argument -> (compiled function, rebuild of its flat outputs).
        self.flat: dict[tuple, tuple[CompiledFunction, Callable[[Any], Any]]] = {}
        # With one such signature, its probe call function and rebuild: the common case
        # (a training loop, a solver) then builds no key at all.
        self.single: tuple[Callable[..., Any], Callable[[Any], Any], int] | None = None

    def fast(self, args: Sequence[Any]) -> Any:
        """The result for all-array arguments already compiled, else ``_MISS``."""
        single = self.single
        if single is not None and len(args) == single[2]:
            out = single[0](*args)
            if out is not PROBE_MISS:
                return single[1](out)
        key = tuple([(a.shape, a.dtype) for a in args if a.__class__ is np.ndarray])
        entry = self.flat.get(key)
        if entry is None or len(key) != len(args):
            return _MISS
        return entry[1](entry[0](*args))

    def compiled(self, args: Sequence[Any]) -> tuple[CompiledFunction, TreeDef, list[Any]]:
        leaves, td = flatten(tuple(args))
        key = (td, tuple(_leaf_key(x) for x in leaves))
        entry = self.entries.get(key)
        if entry is None:
            shared = None if self.key is None else (self.key, key)
            entry = _SHARED.get(shared) if shared is not None else None
            if entry is None:
                entry = self._build(td, leaves)
                if shared is not None:
                    entry = _SHARED.add(shared, entry)
            self.entries[key] = entry
        return entry[0], entry[1], leaves

    def _build(self, td: TreeDef, leaves: list[Any]) -> tuple[CompiledFunction, TreeDef]:
        out_defs: list[TreeDef] = []

        def flat(*ts: Any) -> tuple[Any, ...]:
            out_leaves, out_def = flatten(self.build(*unflatten(td, list(ts))))
            out_defs.append(out_def)
            return tuple(out_leaves)

        with paused_gc():
            graph = trace(flat, *[_spec(x) for x in leaves], name=self.name)
            return compile(graph, **self.options), out_defs[0]

    def __call__(self, *args: Any) -> Any:
        result = self.fast(args)
        if result is not _MISS:
            return result
        fn, out_def, leaves = self.compiled(args)
        rebuild = _rebuilder(out_def)
        if all(type(a) is np.ndarray for a in args):
            self.flat[tuple((a.shape, a.dtype) for a in args)] = (fn, rebuild)
            probe = fn.probe() if len(self.flat) == 1 else None
            self.single = None if probe is None else (probe, rebuild, len(args))
        return rebuild(fn(*[_arg(x) for x in leaves]))


_MISS = object()


def _rebuilder(out_def: TreeDef) -> Callable[[Any], Any]:
    """Flat outputs (a tuple) -> the output tree, with the common cases precomputed."""
    if out_def.kind == "leaf":
        return lambda outs: outs[0]
    if out_def.kind == "tuple" and all(c.kind == "leaf" for c in out_def.children):
        return lambda outs: outs
    return lambda outs: unflatten(out_def, list(outs))


def _check_options(options: dict[str, Any], what: str) -> None:
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise TensorJitError(f"{what}: unknown option(s) {sorted(unknown)}; options are "
                             f"{', '.join(_OPTIONS)}")


# --- grad and value_and_grad -------------------------------------------------------------
def _value_and_grad_traced(fn: Callable[..., Any], args: Sequence[Any], argnums: Argnums,
                           has_aux: bool, what: str,
                           fresh: bool = False) -> tuple[Tensor, Any, Any]:
    nums = _argnums(argnums, len(args), what)
    inputs = _Inputs(args, nums, what, fresh=fresh)
    out = _call(fn, inputs.args)
    aux: Any = None
    if has_aux:
        out, aux = _split_aux(out, fn, what)
    value = _scalar(out, fn, what)
    seed = const(1.0, value.dtype)
    with n.location(value.node.loc):
        grads = autodiff.vjp([value.node], [seed], inputs.holders)
    aux_leaves, aux_def = flatten(aux)
    aux_nodes = _tensor_nodes(aux_leaves)
    grads_full = [g if g is not None else n.zeros_like(h) for g, h in zip(grads, inputs.holders)]
    resolved = inputs.resolve([value.node, *grads_full, *aux_nodes])
    k = 1 + len(grads_full)
    trees = inputs.trees(resolved[1:k])
    grad_tree = trees[0] if isinstance(argnums, int) else tuple(trees)
    aux_tree = unflatten(aux_def, _rebuild(aux_leaves, resolved[k:]))
    return Tensor(resolved[0]), grad_tree, aux_tree


class _ValueAndGrad:
    """What ``tj.grad`` and ``tj.value_and_grad`` return."""

    def __init__(self, fn: Callable[..., Any], argnums: Argnums, has_aux: bool,
                 with_value: bool, options: dict[str, Any]) -> None:
        self._what = "value_and_grad" if with_value else "grad"
        _check_options(options, self._what)
        if not callable(fn):
            raise TensorJitError(f"{self._what}: expected a function, got {type(fn).__name__}")
        self._target = fn
        self._argnums = argnums
        self._has_aux = has_aux
        self._with_value = with_value
        self._program = _Program(f"{_name(fn)}_{self._what}",
                                 lambda *a: self._traced(*a, fresh=True), options,
                                 _program_key(fn, self._what, argnums, has_aux, options))
        functools.update_wrapper(self, fn, updated=())

    def _traced(self, *args: Any, fresh: bool = False) -> Any:
        value, grads, aux = _value_and_grad_traced(self._target, args, self._argnums,
                                                   self._has_aux, self._what, fresh)
        out: Any = (value, grads) if self._with_value else grads
        return (out, aux) if self._has_aux else out

    def __call__(self, *args: Any) -> Any:
        if not tracing():
            result = self._program.fast(args)
            if result is not _MISS:
                return result
        if _traced(args):
            return self._traced(*args)
        return self._program(*args)


def grad(fn: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False,
         **options: Any) -> Callable[..., Any]:
    """d fn / d args[argnums] for a function returning a float scalar.

    Called with arrays, it compiles forward-and-backward once per signature (``options``
    as for ``tj.compile``); called with Tensors, it adds backward nodes to the trace.
    ``has_aux=True``: ``fn`` returns ``(value, aux)`` and the call returns
    ``(grads, aux)``.
    """
    return _ValueAndGrad(fn, argnums, has_aux, False, options)


def value_and_grad(fn: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False,
                   **options: Any) -> Callable[..., Any]:
    """``(fn(*args), grad(fn)(*args))`` from one forward-and-backward graph; with
    ``has_aux=True``, ``((value, aux), grads)`` as in JAX."""
    inner = _ValueAndGrad(fn, argnums, has_aux, True, options)
    if not has_aux:
        return inner

    @functools.wraps(fn)
    def reorder(*args: Any) -> Any:
        (value, grads), aux = inner(*args)
        return (value, aux), grads

    return reorder


# --- vjp ---------------------------------------------------------------------------------
def _vjp_traced(fn: Callable[..., Any], primals: Sequence[Any],
                fresh: bool = False) -> tuple[Any, Callable]:
    inputs = _Inputs(primals, range(len(primals)), "vjp", require_float=False, fresh=fresh)
    out = _call(fn, inputs.args)
    out_leaves, out_def = flatten(out)
    out_ts = [to_tensor(x, f"vjp: output of {_name(fn)}") for x in out_leaves]
    out_nodes = [t.node for t in out_ts]
    resolved_out = inputs.resolve(out_nodes)

    def vjp_fn(cotangents: Any) -> tuple[Any, ...]:
        ct_leaves, ct_def = flatten(cotangents)
        if ct_def != out_def:
            raise ShapeError("vjp: the cotangent's structure does not match the output's")
        cts: list[Node | None] = []
        for k, (c, o) in enumerate(zip(ct_leaves, out_nodes)):
            t = to_tensor(c, f"vjp: cotangent {k}")
            if t.shape != o.shape:
                raise ShapeError(f"vjp: cotangent {k} has shape {format_shape(t.shape)}, "
                                 f"the output has {format_shape(o.shape)}")
            cts.append(n.cast(t.node, o.dtype) if o.dtype.is_float else None)
        grads = autodiff.vjp(out_nodes, cts, inputs.holders)
        full = [g if g is not None else n.zeros_like(h) for g, h in zip(grads, inputs.holders)]
        return tuple(inputs.trees(inputs.resolve(full)))

    return unflatten(out_def, [Tensor(x) for x in resolved_out]), vjp_fn


_PROGRAMS: weakref.WeakKeyDictionary[Any, dict[str, _Program]] = weakref.WeakKeyDictionary()


def _program(fn: Callable[..., Any], kind: str, build: Callable[..., Any]) -> _Program:
    """The cached program of ``kind`` for ``fn`` (cached per function object)."""
    try:
        table = _PROGRAMS.setdefault(fn, {})
    except TypeError:  # not weak-referenceable: no caching across calls
        table = {}
    prog = table.get(kind)
    if prog is None:
        prog = table[kind] = _Program(f"{_name(fn)}_{kind}", build, {},
                                      _program_key(fn, kind))
    return prog


def _program_key(fn: Callable[..., Any], kind: str, *settings: Any) -> tuple | None:
    """What a program of ``kind`` for ``fn`` computes, as a key, or None (not shared)."""
    fn_key = function_key(fn)
    if fn_key is None:
        return None
    key = (kind, fn_key, repr(settings))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def vjp(fn: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], tuple]]:
    """``(fn(*primals), vjp_fn)``; ``vjp_fn(cotangent)`` (shaped like the output) returns
    one cotangent per primal, in the primals' structure.

    With arrays, the forward and the backward are compiled (once per signature) as two
    programs; the backward recomputes the forward values it needs.
    """
    if _traced(primals):
        return _vjp_traced(fn, primals)
    forward = _program(fn, "forward", fn)
    backward = _program(fn, "vjp", lambda ps, ct: _vjp_traced(fn, ps, fresh=True)[1](ct))
    out = forward(*primals)

    def vjp_fn(cotangents: Any) -> tuple[Any, ...]:
        return backward(tuple(primals), cotangents)

    return out, vjp_fn


# --- jvp ---------------------------------------------------------------------------------
def _jvp_traced(fn: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any],
                fresh: bool = False) -> tuple[Any, Any]:
    inputs = _Inputs(primals, range(len(primals)), "jvp", require_float=False, fresh=fresh)
    t_leaves, t_def = flatten(tuple(tangents))
    p_leaves, p_def = flatten(tuple(primals))
    if t_def != p_def:
        raise ShapeError("jvp: tangents must have the structure of the primals")
    tangent_of: list[Node | None] = []
    for k, (t, p) in enumerate(zip(t_leaves, p_leaves)):
        pt = to_tensor(p, f"jvp: primal {k}")
        if not pt.dtype.is_float:
            continue
        tt = to_tensor(t, f"jvp: tangent {k}")
        if tt.shape != pt.shape:
            raise ShapeError(f"jvp: tangent {k} has shape {format_shape(tt.shape)}, its primal "
                             f"{format_shape(pt.shape)}")
        tangent_of.append(n.cast(tt.node, pt.dtype))
    out = _call(fn, inputs.args)
    out_leaves, out_def = flatten(out)
    out_nodes = [to_tensor(x, f"jvp: output of {_name(fn)}").node for x in out_leaves]
    tout = autodiff.jvp(out_nodes, inputs.holders, tangent_of)
    full = [t if t is not None else n.zeros_like(o) for t, o in zip(tout, out_nodes)]
    resolved = inputs.resolve(out_nodes + full)
    k = len(out_nodes)
    return (unflatten(out_def, [Tensor(x) for x in resolved[:k]]),
            unflatten(out_def, [Tensor(x) for x in resolved[k:]]))


def jvp(fn: Callable[..., Any], primals: Sequence[Any],
        tangents: Sequence[Any]) -> tuple[Any, Any]:
    """``(fn(*primals), J @ tangents)``: forward mode (see ``passes/autodiff/forward``)."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TensorJitError("jvp: primals and tangents must be tuples or lists of arguments")
    if _traced((primals, tangents)):
        return _jvp_traced(fn, primals, tangents)
    prog = _program(fn, "jvp", lambda ps, ts: _jvp_traced(fn, ps, ts, fresh=True))
    return prog(tuple(primals), tuple(tangents))


# --- hessian -----------------------------------------------------------------------------
def _static_size(node: Node, what: str) -> int:
    size = 1
    for d in node.shape:
        if not isinstance(d, int):
            raise UnsupportedError(f"{what}: symbolic dim {d!r} (the Hessian's size must be "
                                   "known)")
        size *= d
    return size


def _unit(i: int, like: Node) -> Node:
    """The one-hot cotangent e_i shaped like ``like`` (a padded scalar: an index map)."""
    size = _static_size(like, "hessian")
    one = n.reshape(n.full(1.0, (), like.dtype), (1,))
    hot = n.op("pad", [one], {"pads": ((i, size - 1 - i),), "value": 0.0}) \
        if size > 1 else one
    return n.reshape(hot, like.shape)


def _hessian_blocks(fn: Callable[..., Any], args: Sequence[Any], argnums: Argnums,
                    vs: Sequence[Any] | None,
                    fresh: bool = False) -> tuple[_Inputs, list[list[Node]]]:
    """Blocks H[a][b] (or, given ``vs``, the products H v as blocks [a][0])."""
    nums = _argnums(argnums, len(args), "hessian")
    inputs = _Inputs(args, nums, "hessian", fresh=fresh)
    value = _scalar(_call(fn, inputs.args), fn, "hessian")
    holders = inputs.holders
    grads = autodiff.vjp([value.node], [const(1.0, value.dtype)], holders)
    grads_full = [g if g is not None else n.zeros_like(h) for g, h in zip(grads, holders)]
    if vs is not None:
        v_nodes = [n.cast(to_tensor(v).node, h.dtype) for v, h in zip(vs, holders)]
        hv = autodiff.vjp(grads_full, v_nodes, holders)
        return inputs, [[g if g is not None else n.zeros_like(h) for g, h in zip(hv, holders)]]
    blocks: list[list[Node]] = []
    for a, ga in enumerate(grads_full):
        rows: list[list[Node]] = [[] for _ in holders]
        for i in range(_static_size(ga, "hessian")):
            seeds: list[Node | None] = [None] * len(holders)
            seeds[a] = _unit(i, ga)
            row = autodiff.vjp(grads_full, seeds, holders)
            for b, (r, h) in enumerate(zip(row, holders)):
                r = r if r is not None else n.zeros_like(h)
                rows[b].append(n.reshape(r, (1, _static_size(h, "hessian"))))
        line = []
        for b, h in enumerate(holders):
            stacked = rows[b][0] if len(rows[b]) == 1 else n.op("concat", rows[b], {"axis": 0})
            line.append(n.reshape(stacked, ga.shape + h.shape))
        blocks.append(line)
    return inputs, blocks


def _nest(inputs: _Inputs, argnums: Argnums, blocks: list[list[Any]]) -> Any:
    """H as a tree of trees shaped like the differentiated arguments (JAX's layout)."""
    def outer(items: Sequence[Any]) -> Any:
        trees = []
        pos = 0
        for td, count in zip(inputs.defs, inputs.counts):
            trees.append(unflatten(td, list(items[pos:pos + count])))
            pos += count
        return trees[0] if isinstance(argnums, int) else tuple(trees)

    return outer([outer(line) for line in blocks])


class _Hessian:
    def __init__(self, fn: Callable[..., Any], argnums: Argnums) -> None:
        self._target = fn
        self._argnums = argnums
        self._hvp_program = _Program(f"{_name(fn)}_hvp", self._hvp, {})
        functools.update_wrapper(self, fn, updated=())

    def _hvp(self, args: Sequence[Any], vs: Sequence[Any]) -> Any:
        inputs, blocks = _hessian_blocks(self._target, args, self._argnums, vs, fresh=True)
        return [Tensor(x) for x in inputs.resolve(blocks[0])]

    def __call__(self, *args: Any) -> Any:
        if _traced(args):
            inputs, blocks = _hessian_blocks(self._target, args, self._argnums, None)
            flat = inputs.resolve([x for line in blocks for x in line])
            width = len(blocks)
            tensors = [[Tensor(flat[a * width + b]) for b in range(width)]
                       for a in range(width)]
            return _nest(inputs, self._argnums, tensors)
        return self._by_products(args)

    def _by_products(self, args: Sequence[Any]) -> Any:
        """With arrays: one compiled Hessian-vector product, called once per unit vector
        (compile time independent of the size)."""
        nums = _argnums(self._argnums, len(args), "hessian")
        leaves = [np.asarray(x) for i in nums for x in flatten(args[i])[0]]
        for leaf in leaves:
            if leaf.dtype.kind != "f":
                raise DTypeError(f"hessian: differentiation needs float inputs, got {leaf.dtype}")
        zeros = [np.zeros(x.shape, x.dtype) for x in leaves]
        blocks: list[list[np.ndarray]] = []
        for a, leaf in enumerate(leaves):
            rows: list[list[np.ndarray]] = [[] for _ in leaves]
            for i in range(leaf.size):
                vs = list(zeros)
                v = np.zeros(leaf.size, leaf.dtype)
                v[i] = 1.0
                vs[a] = v.reshape(leaf.shape)
                hv = self._hvp_program(tuple(args), vs)
                for b, r in enumerate(hv):
                    rows[b].append(np.asarray(r).reshape(-1))
            blocks.append([np.stack(rows[b]).reshape(leaf.shape + leaves[b].shape)
                           if rows[b] else np.zeros(leaf.shape + leaves[b].shape, leaf.dtype)
                           for b in range(len(leaves))])
        inputs = _DefsOnly(args, nums)
        return _nest(inputs, self._argnums, blocks)  # type: ignore[arg-type]


class _DefsOnly:
    """The tree structure of the differentiated arguments (for ``_nest``)."""

    def __init__(self, args: Sequence[Any], nums: Sequence[int]) -> None:
        self.defs = [flatten(args[i])[1] for i in nums]
        self.counts = [d.num_leaves for d in self.defs]


def hessian(fn: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """Second derivatives of a scalar function: for an array argument of shape S, an array
    of shape S + S; for several arguments or pytrees, blocks nested as in JAX."""
    return _Hessian(fn, argnums)
