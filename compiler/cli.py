"""The ``tensorjit`` command line.

    tensorjit --version
    tensorjit ir MODULE:FN --spec "x:f32[batch,784]" ... --stage STAGE
    tensorjit compile MODULE:FN --spec ... -o libname.so [--target x86-64-v3]
    tensorjit bench [SUITE ...] [--compare numpy,interp,torch,jax] [--threads N]
                    [--json FILE] [--plot FILE.png]
    tensorjit cache info | clear

``tensorjit COMMAND --help`` explains each, with examples.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from tensorjit.ir.dtypes import as_dtype
from tensorjit.ir.errors import TensorJitError

_SPEC = re.compile(r"^(?:(?P<name>\w+):)?(?P<dtype>\w+)\[(?P<dims>[^\]]*)\]$")


def parse_spec(text: str) -> tuple[str | None, object]:
    """``"x:f32[batch,784]"`` -> ("x", TensorSpec(("batch", 784), float32))."""
    from tensorjit.compiler.frontend.trace import TensorSpec

    m = _SPEC.match(text.replace(" ", ""))
    if not m:
        raise TensorJitError(f"--spec {text!r}: expected NAME:DTYPE[DIM,...], "
                             "e.g. x:f32[batch,784]")
    dims = [d for d in m["dims"].split(",") if d]
    shape = tuple(int(d) if d.isdigit() else d for d in dims)
    return m["name"], TensorSpec(shape, as_dtype(m["dtype"], f"--spec {text!r}"))


def load_function(target: str) -> object:
    """``package.module:function`` -> the function."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise TensorJitError(f"{target!r}: expected MODULE:FUNCTION, e.g. mymodel:forward")
    # The absolute directory, and fresh finder caches: a cached finder for "." would
    # still list the directory that was current when it was created.
    sys.path.insert(0, str(Path.cwd()))
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    finally:
        sys.path.pop(0)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise TensorJitError(f"{module_name} has no function {attr!r}") from None


def _ir(args: argparse.Namespace) -> int:
    from tensorjit.compiler.api import compile as tj_compile
    from tensorjit.compiler.frontend.trace import trace

    fn = load_function(args.target)
    specs = [parse_spec(s)[1] for s in args.spec]
    graph = trace(fn, *specs)  # type: ignore[arg-type]
    if args.stage == "graph":
        print(graph)
        return 0
    print(tj_compile(graph).ir(args.stage))
    return 0


def _compile(args: argparse.Namespace) -> int:
    from tensorjit.compiler.aot import export
    from tensorjit.compiler.frontend.trace import trace

    fn = load_function(args.target)
    specs = [parse_spec(s)[1] for s in args.spec]
    graph = trace(fn, *specs)  # type: ignore[arg-type]
    threads = args.threads if args.threads else None
    out = export(graph, args.output, name=args.name, target=args.target_cpu,
                 opt_level=args.opt_level, fast_math=args.fast_math, threads=threads)
    header = out.header.read_text()
    proto = next((line for line in header.splitlines()
                  if line.startswith(f"int {out.name}(")), "")
    print(f"wrote {out.library}\n      {out.header}\n      {out.manifest}")
    print(f"C entry point: {proto}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import os

    from tensorjit.compiler.bench import runner
    from tensorjit.compiler.bench.suites import SUITES, SYSTEMS, Options

    names = args.suites or list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise TensorJitError(f"bench: unknown suite(s) {', '.join(unknown)}; suites are "
                             f"{', '.join(SUITES)}")
    compare = [c.strip() for c in args.compare.split(",") if c.strip()]
    bad = [c for c in compare if c not in SYSTEMS]
    if bad:
        raise TensorJitError(f"bench: --compare {', '.join(bad)}: systems are "
                             f"{', '.join(SYSTEMS)}")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise TensorJitError("bench: --plot needs matplotlib, an optional extra: "
                                 "pip install 'tensorjit[bench]' (or pip install "
                                 "matplotlib)") from None
    threads = args.threads or os.cpu_count() or 1
    opts = Options(threads, tuple(dict.fromkeys(["numpy", "interp", *compare])))
    report = runner.run(names, opts, rounds=args.rounds)
    print(runner.format_table(report))
    if args.json:
        runner.write_json(report, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        runner.write_plot(report, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _cache(args: argparse.Namespace) -> int:
    from tensorjit.runtime.diskcache import DiskCache

    cache = DiskCache()
    if args.action == "clear":
        before = cache.info()
        removed = cache.clear()
        print(f"removed {removed} entr{'y' if removed == 1 else 'ies'} "
              f"({before['bytes'] / 1e6:.1f} MB) from {cache.root}")
        return 0
    info = cache.info()
    print(f"directory: {info['directory']}"
          f"{'' if Path(info['directory']).is_dir() else ' (not created yet)'}")
    print(f"entries:   {info['entries']}")
    print(f"size:      {info['bytes'] / 1e6:.2f} MB")
    print(f"enabled:   {'no (TENSORJIT_DISABLE_CACHE is set)' if info['disabled'] else 'yes'}")
    return 0


_SPEC_HELP = ("one per argument, in order; a name in DIMS is a symbolic dim "
              "(dtypes: f32 f64 i32 i64 bool)")


def build_parser() -> argparse.ArgumentParser:
    from tensorjit import __version__

    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="tensorjit", formatter_class=raw,
        description="Compile NumPy-style Python functions to fused, vectorized native code.",
        epilog="examples:\n"
               "  tensorjit ir mymodel:forward --spec 'x:f32[batch,784]' --stage loops\n"
               "  tensorjit compile mymodel:forward --spec 'x:f32[batch,784]' -o libmodel.so\n"
               "  tensorjit bench matmul mlp --json results.json\n"
               "  tensorjit cache info\n\n"
               "Run 'tensorjit COMMAND --help' for each command's options.")
    parser.add_argument("--version", action="version", version=f"tensorjit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    ir = sub.add_parser(
        "ir", help="print a compilation stage of a function", formatter_class=raw,
        description="Trace MODULE:FN on the given argument specs and print one stage: the "
                    "graph IR before or after the graph passes, the kernel each node went "
                    "to (fusion), the fused loop nests, the arena plan (memory), LLVM IR "
                    "before or after optimization, or the machine code.",
        epilog="example:\n  tensorjit ir mymodel:forward --spec 'x:f32[batch,784]' "
               "--spec 'w:f32[784,10]' --stage loops")
    ir.add_argument("target", metavar="MODULE:FN", help="the function, e.g. mymodel:forward")
    ir.add_argument("--spec", action="append", default=[], metavar="NAME:DTYPE[DIMS]",
                    help=_SPEC_HELP)
    ir.add_argument("--stage", default="loops",
                    choices=["graph", "optimized", "fusion", "loops", "memory", "llvm",
                             "llvm-opt", "asm"])
    ir.set_defaults(run=_ir)

    comp = sub.add_parser(
        "compile", help="compile a function into a self-contained shared library",
        formatter_class=raw,
        description="Trace MODULE:FN on the argument specs and write a shared library that "
                    "runs without Python or LLVM (the tensorjit runtime is linked in), a "
                    "documented C header NAME.h and a JSON manifest NAME.json beside it. "
                    "Load it from Python with tj.load(PATH), or link it from C.",
        epilog="examples:\n"
               "  # mymodel.py defines forward(x, w); batch is a size chosen at call time\n"
               "  tensorjit compile mymodel:forward --spec 'x:f32[batch,784]' "
               "--spec 'w:f32[784,10]' -o libforward.so\n"
               "  # the C function is forward(const float *x, const float *w, float *out0,"
               " int64_t batch)\n"
               "  tensorjit compile mymodel:forward --spec 'x:f32[64,784]' "
               "--spec 'w:f32[784,10]' -o libfwd.so --name fwd --target x86-64-v3\n\n"
               "The library needs a C compiler at build time only (cc, or $CC).")
    comp.add_argument("target", metavar="MODULE:FN", help="the function, e.g. mymodel:forward")
    comp.add_argument("--spec", action="append", default=[], metavar="NAME:DTYPE[DIMS]",
                      help=_SPEC_HELP)
    comp.add_argument("-o", "--output", required=True, metavar="LIB.so",
                      help="the shared library to write (NAME.h and NAME.json go beside it)")
    comp.add_argument("--name", help="the C function's name (default: the library's file "
                                     "name without 'lib' and extension)")
    comp.add_argument("--target", dest="target_cpu", default=None,
                      choices=["host", "x86-64-v3", "x86-64-v4"],
                      help="CPU to build for: this machine (default), or a portable level: "
                           "x86-64-v3 (AVX2+FMA, e.g. Haswell/Zen and later) or x86-64-v4 "
                           "(AVX-512)")
    comp.add_argument("--threads", type=int, default=0, metavar="N",
                      help="1: single-threaded code; otherwise kernels use the library's "
                           "thread pool (TENSORJIT_NUM_THREADS at run time)")
    comp.add_argument("--opt-level", type=int, default=3, choices=[0, 1, 2, 3])
    comp.add_argument("--fast-math", action="store_true",
                      help="let LLVM reassociate float arithmetic (results may differ in "
                           "the last bits)")
    comp.set_defaults(run=_compile)

    from tensorjit.compiler.bench.suites import SUITES

    bench = sub.add_parser(
        "bench", help="benchmark tensorjit against NumPy and other systems",
        formatter_class=raw,
        description="Run benchmark suites and print a table: tensorjit's time per call, "
                    "its rate (GB/s for memory-bound cases, GFLOP/s for compute-bound "
                    "ones), that rate as a fraction of this machine's measured triad "
                    "bandwidth or FMA peak, and speedups over NumPy, the reference "
                    "interpreter and (when installed) PyTorch and JAX. Every result is "
                    "checked against NumPy before it is timed. Progress goes to stderr.",
        epilog="suites:\n"
               "  elementwise  fused elementwise chain and a + b on 16M floats (GB/s)\n"
               "  reductions   sum, column sum, row softmax and layer norm (GB/s)\n"
               "  matmul       square matmuls and a fused linear+relu (GFLOP/s)\n"
               "  mlp          MLP forward, batch 256, 784-1024-1024-10 (GFLOP/s)\n"
               "  conv         3x3 conv2d, NCHW (GFLOP/s; skipped if conv2d is missing)\n"
               "  train        an MLP training step: loss and gradients (GFLOP/s)\n"
               "  dispatch     per-call overhead on 64 elements\n"
               "  compile      trace+compile+first call, and a persistent-cache hit\n\n"
               "examples:\n"
               "  tensorjit bench                        # every suite (a few minutes)\n"
               "  tensorjit bench matmul mlp --threads 1\n"
               "  tensorjit bench --compare numpy,torch --json out.json --plot out.png\n\n"
               "Times are medians over interleaved rounds (noise hits every system alike).")
    bench.add_argument("suites", nargs="*", metavar="SUITE",
                       help=f"suites to run (default: all): {', '.join(SUITES)}")
    bench.add_argument("--compare", default="numpy,interp,torch,jax", metavar="SYSTEMS",
                       help="comma-separated systems to compare with (numpy and interp are "
                            "always included; torch and jax when installed)")
    bench.add_argument("--threads", type=int, default=0, metavar="N",
                       help="threads for tensorjit (and torch); default: all cores")
    bench.add_argument("--rounds", type=int, default=5, metavar="N",
                       help="timing rounds per case (default 5)")
    bench.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench.add_argument("--plot", metavar="FILE.png",
                       help="also draw the speedups (needs matplotlib: pip install "
                            "'tensorjit[bench]')")
    bench.set_defaults(run=_bench)

    cache = sub.add_parser(
        "cache", help="inspect or clear the persistent compile cache", formatter_class=raw,
        description="Compiled machine code is kept on disk so that a new process skips "
                    "compiling. The directory is TENSORJIT_CACHE_DIR, or the user cache "
                    "directory (~/.cache/tensorjit); TENSORJIT_DISABLE_CACHE=1 turns the "
                    "cache off. Entries are checked on load and rebuilt when corrupt or "
                    "built by another CPU, LLVM or tensorjit version.",
        epilog="examples:\n  tensorjit cache info\n  tensorjit cache clear\n"
               "  TENSORJIT_CACHE_DIR=/tmp/tj tensorjit cache info")
    cache.add_argument("action", choices=["info", "clear"],
                       help="info: where, how many entries, how big; clear: delete them")
    cache.set_defaults(run=_cache)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except TensorJitError as exc:
        print(f"tensorjit: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
