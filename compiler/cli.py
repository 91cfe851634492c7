"""The ``tensorjit`` command line.

    tensorjit --version
    tensorjit ir MODULE:FN --spec "x:f32[batch,784]" ... --stage STAGE

STAGE is one of graph, optimized, loops, llvm, llvm-opt, asm.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

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
    sys.path.insert(0, ".")
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


def build_parser() -> argparse.ArgumentParser:
    from tensorjit import __version__

    parser = argparse.ArgumentParser(
        prog="tensorjit",
        description="Compile NumPy-style Python functions to fused, vectorized native code.")
    parser.add_argument("--version", action="version", version=f"tensorjit {__version__}")
    sub = parser.add_subparsers(dest="command")
    ir = sub.add_parser(
        "ir", help="print a compilation stage of a function",
        description="Trace MODULE:FN on the given argument specs and print one stage: the "
                    "graph IR, the fused loop nests, LLVM IR before or after optimization, "
                    "or the machine code.",
        epilog='example: tensorjit ir mymodel:forward --spec "x:f32[batch,784]" '
               '--spec "w:f32[784,10]" --stage loops')
    ir.add_argument("target", metavar="MODULE:FN", help="the function, e.g. mymodel:forward")
    ir.add_argument("--spec", action="append", default=[], metavar="NAME:DTYPE[DIMS]",
                    help="one per argument, in order; a name in DIMS is a symbolic dim "
                         "(dtypes: f32 f64 i32 i64 bool)")
    ir.add_argument("--stage", default="loops",
                    choices=["graph", "optimized", "loops", "llvm", "llvm-opt", "asm"])
    ir.set_defaults(run=_ir)
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
