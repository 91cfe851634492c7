"""The ``tensorjit bench`` suites: each case is one workload, with a candidate per system.

A case's ``setup`` compiles what it needs and returns zero-argument callables, one per
system (``tensorjit`` always; ``numpy`` and ``interp`` always; ``torch`` and ``jax`` when
requested and importable). Every candidate's result is checked against NumPy's before
anything is timed. ``unit`` says what the rate means: ``bytes`` (GB/s, compared with the
triad bandwidth), ``flops`` (GFLOP/s, compared with the FMA peak), ``call`` (time per
call only), ``compile`` (time to first result only).
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tensorjit as tj
from tensorjit.compiler.bench import workloads as w

SUITES = ("elementwise", "reductions", "matmul", "mlp", "conv", "train", "dispatch", "compile")
SYSTEMS = ("numpy", "interp", "torch", "jax")

Candidates = dict[str, Callable[[], Any]]


@dataclass
class Options:
    threads: int
    compare: tuple[str, ...]

    @property
    def tj_threads(self) -> int | None:
        return 1 if self.threads == 1 else None

    def module(self, name: str) -> Any:
        """torch/jax if compared and importable, else None."""
        if name not in self.compare:
            return None
        try:
            return importlib.import_module(name)
        except ImportError:
            return None


@dataclass
class Case:
    suite: str
    name: str
    unit: str  # bytes | flops | call | compile
    work: float  # bytes or flops per call
    setup: Callable[[Options], Candidates]
    rtol: float = 1e-5
    atol: float = 1e-6
    check: bool = True
    rounds: int | None = None  # None: the runner's default


@dataclass
class Skipped:
    suite: str
    reason: str


@dataclass
class Suite:
    name: str
    cases: list[Case] = field(default_factory=list)
    skipped: str | None = None


def _interp(fn: Callable[..., Any], *args: np.ndarray) -> Callable[[], Any]:
    graph = tj.trace(fn, *args)

    def run() -> Any:
        out = tj.interpret(graph, args)
        return out[0] if len(out) == 1 else out

    return run


def _torch_fn(opts: Options, fn: Callable[..., Any], *arrays: np.ndarray) -> Candidates:
    """``fn(torch, *tensors)`` on the arrays as torch tensors, if torch is compared."""
    torch = opts.module("torch")
    if torch is None:
        return {}
    torch.set_num_threads(opts.threads)
    tensors = [torch.from_numpy(a) for a in arrays]

    def run() -> Any:
        with torch.no_grad():
            return fn(torch, *tensors).numpy()

    return {"torch": run}


def _jax_fn(opts: Options, fn: Callable[..., Any], *args: np.ndarray) -> Candidates:
    jax = opts.module("jax")
    if jax is None:
        return {}
    jitted = jax.jit(fn)
    dev = [jax.device_put(a) for a in args]
    return {"jax": lambda: np.asarray(jitted(*dev).block_until_ready())}


# --- elementwise -------------------------------------------------------------------------
def _chain_case(opts: Options, x: np.ndarray) -> Candidates:
    f = tj.compile(tj.trace(w.chain, x), threads=opts.tj_threads)
    c: Candidates = {"tensorjit": lambda: f(x), "numpy": lambda: w.chain_numpy(x),
                     "interp": _interp(w.chain, x)}

    c.update(_torch_fn(opts, lambda torch, t: torch.tanh(t * w.A + w.B) * torch.sigmoid(t)
                       + 0.5 * t * t, x))
    jnp = opts.module("jax") and importlib.import_module("jax.numpy")
    if jnp:
        c.update(_jax_fn(opts, lambda v: jnp.tanh(v * w.A + w.B) * (1 / (1 + jnp.exp(-v)))
                         + 0.5 * v * v, x))
    return c


def _add_case(opts: Options) -> Candidates:
    a, b = w.vector(w.ELEMENTWISE_N, 1), w.vector(w.ELEMENTWISE_N, 2)
    f = tj.compile(tj.trace(lambda p, q: p + q, a, b), threads=opts.tj_threads)
    c: Candidates = {"tensorjit": lambda: f(a, b), "numpy": lambda: a + b,
                     "interp": _interp(lambda p, q: p + q, a, b)}
    c.update(_torch_fn(opts, lambda torch, ta, tb: ta + tb, a, b))
    if opts.module("jax"):
        c.update(_jax_fn(opts, lambda p, q: p + q, a, b))
    return c


def elementwise() -> Suite:
    n = w.ELEMENTWISE_N
    return Suite("elementwise", [
        Case("elementwise", "tanh(1.3x+.2)*sigmoid(x)+.5x^2 16M", "bytes", 2 * 4 * n,
             lambda o: _chain_case(o, w.vector(n)), rtol=1e-5, atol=1e-5),
        Case("elementwise", "a + b 16M", "bytes", 3 * 4 * n, _add_case),
    ])


# --- reductions ----------------------------------------------------------------------------
def _rows_case(opts: Options, which: str) -> Candidates:
    x, g, b = w.rows_inputs()
    if which == "softmax":
        f = tj.compile(tj.trace(w.softmax, x), threads=opts.tj_threads)
        c: Candidates = {"tensorjit": lambda: f(x), "numpy": lambda: w.softmax_numpy(x),
                         "interp": _interp(w.softmax, x)}
        c.update(_torch_fn(opts, lambda t, tx: t.softmax(tx, dim=-1), x))
        if opts.module("jax"):
            jax = importlib.import_module("jax")
            c.update(_jax_fn(opts, lambda v: jax.nn.softmax(v, axis=-1), x))
        return c
    f = tj.compile(tj.trace(w.layer_norm, x, g, b), threads=opts.tj_threads)
    c = {"tensorjit": lambda: f(x, g, b), "numpy": lambda: w.layer_norm_numpy(x, g, b),
         "interp": _interp(w.layer_norm, x, g, b)}
    c.update(_torch_fn(opts, lambda t, tx, tg, tb: t.nn.functional.layer_norm(
        tx, (x.shape[-1],), tg, tb, eps=w.EPS), x, g, b))
    if opts.module("jax"):
        jnp = importlib.import_module("jax.numpy")
        c.update(_jax_fn(opts, lambda v, gg, bb: (v - v.mean(-1, keepdims=True))
                         / jnp.sqrt(v.var(-1, keepdims=True) + w.EPS) * gg + bb, x, g, b))
    return c


def _sum_case(opts: Options, axis: int | None) -> Candidates:
    x = w.vector(w.ELEMENTWISE_N)
    if axis is not None:
        x = x.reshape(-1, 1024)

    def fn(v: Any) -> Any:
        return v.sum(axis=axis)

    f = tj.compile(tj.trace(fn, x), threads=opts.tj_threads)
    c: Candidates = {"tensorjit": lambda: f(x), "numpy": lambda: x.sum(axis=axis),
                     "interp": _interp(fn, x)}
    c.update(_torch_fn(opts, lambda t, tx: tx.sum() if axis is None else tx.sum(dim=axis), x))
    if opts.module("jax"):
        c.update(_jax_fn(opts, fn, x))
    return c


def reductions() -> Suite:
    rows = w.ROWS[0] * w.ROWS[1]
    n = w.ELEMENTWISE_N
    return Suite("reductions", [
        Case("reductions", "sum 16M", "bytes", 4 * n,
             lambda o: _sum_case(o, None), rtol=1e-4, atol=1e-2),
        Case("reductions", f"sum axis=0 {n // 1024}x1024", "bytes", 4 * n,
             lambda o: _sum_case(o, 0), rtol=1e-4, atol=1e-3),
        Case("reductions", "softmax rows 4096x1024", "bytes", 8 * rows,
             lambda o: _rows_case(o, "softmax"), rtol=1e-4, atol=1e-7),
        Case("reductions", "layer_norm rows 4096x1024", "bytes", 8 * rows,
             lambda o: _rows_case(o, "layer_norm"), rtol=1e-4, atol=1e-4),
    ])


# --- matmul, mlp ------------------------------------------------------------------------
def _matmul_case(opts: Options, m: int, k: int, n: int, epilogue: bool) -> Candidates:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32) / np.float32(np.sqrt(k))
    bias = rng.standard_normal(n, dtype=np.float32)
    fn, args = ((w.linear_relu, (a, b, bias)) if epilogue else (w.matmul, (a, b)))
    ref = w.linear_relu_numpy if epilogue else np.matmul
    f = tj.compile(tj.trace(fn, *args), threads=opts.tj_threads)
    c: Candidates = {"tensorjit": lambda: f(*args), "numpy": lambda: ref(*args),
                     "interp": _interp(fn, *args)}

    c.update(_torch_fn(opts, lambda t, ta, tb, tbias: t.relu(ta @ tb + tbias) if epilogue
                       else ta @ tb, a, b, bias))
    if opts.module("jax"):
        jnp = importlib.import_module("jax.numpy")
        c.update(_jax_fn(opts, (lambda p, q, r: jnp.maximum(p @ q + r, 0)) if epilogue
                         else (lambda p, q: p @ q), *args))
    return c


def matmul() -> Suite:
    def square(s: int) -> Callable[[Options], Candidates]:
        return lambda o: _matmul_case(o, s, s, s, False)

    cases = [Case("matmul", f"matmul {s}x{s}x{s}", "flops", 2.0 * s ** 3, square(s),
                  rtol=1e-4, atol=1e-3) for s in (256, 1024)]
    cases.append(Case("matmul", "relu(x@w+b) 256x784x1024", "flops", 2.0 * 256 * 784 * 1024,
                      lambda o: _matmul_case(o, 256, 784, 1024, True), rtol=1e-4, atol=1e-3))
    return Suite("matmul", cases)


def _mlp_case(opts: Options) -> Candidates:
    args = w.mlp_inputs()
    f = tj.compile(tj.trace(w.mlp, *args), threads=opts.tj_threads)
    c: Candidates = {"tensorjit": lambda: f(*args), "numpy": lambda: w.mlp_numpy(*args),
                     "interp": _interp(w.mlp, *args)}

    c.update(_torch_fn(opts, lambda t, x, w1, b1, w2, b2, w3, b3: t.softmax(
        t.relu(t.relu(x @ w1 + b1) @ w2 + b2) @ w3 + b3, dim=-1), *args))
    if opts.module("jax"):
        jax, jnp = importlib.import_module("jax"), importlib.import_module("jax.numpy")
        c.update(_jax_fn(opts, lambda x, w1, b1, w2, b2, w3, b3: jax.nn.softmax(
            jnp.maximum(jnp.maximum(x @ w1 + b1, 0) @ w2 + b2, 0) @ w3 + b3, axis=-1), *args))
    return c


def mlp() -> Suite:
    s = w.MLP_SIZES
    return Suite("mlp", [Case("mlp", f"mlp fwd {w.MLP_BATCH}x{'-'.join(map(str, s))}",
                              "flops", w.mlp_flops(), _mlp_case, rtol=1e-4, atol=1e-6)])


# --- conv, train ------------------------------------------------------------------------
def _conv_case(opts: Options) -> Candidates:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(w.CONV_INPUT, dtype=np.float32)
    k = rng.standard_normal(w.CONV_WEIGHT, dtype=np.float32) / np.float32(24.0)
    f = tj.compile(tj.trace(w.conv, x, k), threads=opts.tj_threads)
    c: Candidates = {"tensorjit": lambda: f(x, k), "numpy": lambda: w.conv_numpy(x, k),
                     "interp": _interp(w.conv, x, k)}
    c.update(_torch_fn(opts, lambda t, tx, tk: t.nn.functional.conv2d(tx, tk, padding=1),
                       x, k))
    if opts.module("jax"):
        lax = importlib.import_module("jax.lax")
        c.update(_jax_fn(opts, lambda p, q: lax.conv_general_dilated(
            p, q, (1, 1), ((1, 1), (1, 1))), x, k))
    return c


def conv() -> Suite:
    if not hasattr(tj.nn, "conv2d"):
        return Suite("conv", skipped="tj.nn.conv2d is not implemented yet")
    n, ci, h, wd = w.CONV_INPUT
    co = w.CONV_WEIGHT[0]
    return Suite("conv", [Case("conv", f"conv2d 3x3 {n}x{ci}x{h}x{wd} -> {co}", "flops",
                               w.conv_flops(), _conv_case, rtol=1e-3, atol=1e-3)])


def _flat(value: Any) -> tuple[np.ndarray, ...]:
    loss, grads = value
    return (np.asarray(loss), *grads)


def _train_case(opts: Options) -> Candidates:
    args = w.train_inputs()
    step = tj.value_and_grad(w.train_loss, argnums=(0, 1, 2, 3))
    step(*args)  # compile

    def traced(*a: Any) -> Any:
        loss, grads = step(*a)
        return (loss, *grads)

    c: Candidates = {"tensorjit": lambda: _flat(step(*args)),
                     "numpy": lambda: _flat(w.train_step_numpy(*args)),
                     "interp": _interp(traced, *args)}

    def torch_step(t: Any) -> Callable[[], Any]:
        ps = [t.from_numpy(a.copy()).requires_grad_() for a in args[:4]]
        x, y = t.from_numpy(args[4]), t.from_numpy(args[5])

        def run() -> Any:
            with t.enable_grad():
                for p in ps:
                    p.grad = None
                loss = ((t.relu(x @ ps[0] + ps[1]) @ ps[2] + ps[3] - y) ** 2).mean()
                loss.backward()
            return (loss.detach(), *[p.grad for p in ps])

        return run

    torch = opts.module("torch")
    if torch is not None:
        torch.set_num_threads(opts.threads)
        body = torch_step(torch)
        c["torch"] = lambda: tuple(v.numpy() for v in body())
    jax = opts.module("jax")
    if jax is not None:
        jnp = importlib.import_module("jax.numpy")

        def loss(w1: Any, b1: Any, w2: Any, b2: Any, x: Any, y: Any) -> Any:
            return jnp.mean((jnp.maximum(x @ w1 + b1, 0) @ w2 + b2 - y) ** 2)

        vg = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))
        dev = [jax.device_put(a) for a in args]
        c["jax"] = lambda: tuple(np.asarray(v) for v in jax.block_until_ready(
            _flat(vg(*dev))))
    return c


def train() -> Suite:
    if not hasattr(tj, "value_and_grad"):
        return Suite("train", skipped="tj.grad / tj.value_and_grad are not available yet")
    s = w.TRAIN_SIZES
    return Suite("train", [Case("train", f"mlp step (loss+grads) {w.TRAIN_BATCH}x"
                                f"{'-'.join(map(str, s))}", "flops", w.train_flops(),
                                _train_case, rtol=1e-3, atol=1e-5)])


# --- dispatch, compile ------------------------------------------------------------------
def _dispatch_case(opts: Options, wrapper: bool) -> Candidates:
    x = w.vector(w.DISPATCH_N)
    f: Any = tj.jit(w.chain, threads=1) if wrapper else tj.compile(tj.trace(w.chain, x),
                                                                    threads=1)
    f(x)
    c = _chain_case(Options(1, opts.compare), x)
    c["tensorjit"] = lambda: f(x)
    return c


def dispatch() -> Suite:
    n = w.DISPATCH_N
    return Suite("dispatch", [
        Case("dispatch", f"chain {n} elements, compiled fn", "call", 0,
             lambda o: _dispatch_case(o, False), atol=1e-5),
        Case("dispatch", f"chain {n} elements, @tj.jit", "call", 0,
             lambda o: _dispatch_case(o, True), atol=1e-5),
    ])


def _cold(opts: Options, fn: Callable[..., Any], args: tuple[np.ndarray, ...]) -> Candidates:
    def build() -> Any:
        return tj.compile(tj.trace(fn, *args), threads=opts.tj_threads, cache=False)(*args)

    return {"tensorjit": build}


def _cache_hit(opts: Options) -> Candidates:
    """An MLP compile served by the persistent cache: trace, key, load the object file
    (no lowering, no LLVM), first call. Uses a private cache directory."""
    import tensorjit.compiler.api as api

    args = w.mlp_inputs()
    directory = tempfile.mkdtemp(prefix="tensorjit-bench-cache-")

    def hit() -> Any:
        old = os.environ.get("TENSORJIT_CACHE_DIR")
        os.environ["TENSORJIT_CACHE_DIR"] = directory
        try:
            api.forget_compiled_graphs()  # forget in-process functions: as in a new process
            return tj.compile(tj.trace(w.mlp, *args), threads=opts.tj_threads)(*args)
        finally:
            if old is None:
                del os.environ["TENSORJIT_CACHE_DIR"]
            else:
                os.environ["TENSORJIT_CACHE_DIR"] = old

    hit()  # populate
    return {"tensorjit": hit}


def compile_latency() -> Suite:
    x64 = w.vector(w.DISPATCH_N)
    rows = w.rows_inputs()[:1]
    return Suite("compile", [
        Case("compile", "chain 64: trace+compile+1st call", "compile", 0,
             lambda o: _cold(o, w.chain, (x64,)), check=False, rounds=3),
        Case("compile", "softmax rows: trace+compile+1st call", "compile", 0,
             lambda o: _cold(o, w.softmax, rows), check=False, rounds=3),
        Case("compile", "mlp fwd: trace+compile+1st call", "compile", 0,
             lambda o: _cold(o, w.mlp, w.mlp_inputs()), check=False, rounds=3),
        Case("compile", "mlp fwd: persistent-cache hit+1st call", "compile", 0,
             _cache_hit, check=False, rounds=5),
    ])


BUILDERS: dict[str, Callable[[], Suite]] = {
    "elementwise": elementwise, "reductions": reductions, "matmul": matmul, "mlp": mlp,
    "conv": conv, "train": train, "dispatch": dispatch, "compile": compile_latency,
}
