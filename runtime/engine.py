"""The LLVM engine: host target, O3 with loop and SLP vectorization, MCJIT code loading.

Only call-time concerns live here: turning LLVM IR text into optimized machine code for
this CPU and handing out function addresses. Nothing here lowers or transforms graphs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache

import llvmlite.binding as llvm

from tensorjit.runtime import native

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _init() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()
    # Compiled code calls the C runtime (tj_parallel_for) by name.
    llvm.load_library_permanently(str(native.library_path()))


_V2 = ("sse", "sse2", "cmov", "cx8", "fxsr", "mmx", "cx16", "sahf", "popcnt", "sse3",
       "sse4.1", "sse4.2", "ssse3")
_V3 = (*_V2, "avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave")
#: Portable x86-64 microarchitecture levels (psABI) and the LLVM features each enables.
PORTABLE_LEVELS: dict[str, tuple[str, ...]] = {
    "x86-64-v3": _V3,
    "x86-64-v4": (*_V3, "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"),
}


def llvm_version() -> str:
    return ".".join(str(v) for v in llvm.llvm_version_info)


@dataclass(frozen=True)
class Target:
    cpu: str
    features: str
    triple: str

    @staticmethod
    @lru_cache(maxsize=1)
    def host() -> Target:
        _init()
        return Target(llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten(),
                      llvm.get_process_triple())

    def machine(self, opt: int = 3, reloc: str = "default",
                codemodel: str = "jitdefault") -> llvm.TargetMachine:
        """A target machine; the defaults suit MCJIT, ``reloc="pic", codemodel="small"``
        suits objects linked into shared libraries."""
        _init()
        target = llvm.Target.from_triple(self.triple)
        return target.create_target_machine(cpu=self.cpu, features=self.features, opt=opt,
                                            reloc=reloc, codemodel=codemodel)

    @staticmethod
    def named(name: str | None) -> Target:
        """``None`` or ``"host"``: this CPU; ``"x86-64-v3"`` / ``"x86-64-v4"``: a portable
        x86-64 microarchitecture level (AVX2+FMA; plus AVX-512 F/BW/CD/DQ/VL)."""
        if name is None or name == "host":
            return Target.host()
        features = PORTABLE_LEVELS.get(name)
        if features is None:
            raise ValueError(f"target {name!r}: expected 'host' or one of "
                             f"{', '.join(PORTABLE_LEVELS)}")
        _init()
        return Target(name, ",".join(f"+{f}" for f in features), llvm.get_process_triple())

    def required_features(self) -> list[str]:
        """The features this target enables (``+name`` entries), sorted."""
        return sorted(f[1:] for f in self.features.split(",") if f.startswith("+"))

    def vector_bytes(self) -> int:
        """Widest vector register: 64 with AVX-512, 32 with AVX2, else 16."""
        if "+avx512f" in self.features:
            return 64
        if "+avx2" in self.features or "+avx" in self.features:
            return 32
        return 16


def optimize(module: llvm.ModuleRef, machine: llvm.TargetMachine, opt_level: int) -> None:
    pto = llvm.create_pipeline_tuning_options(speed_level=min(max(opt_level, 0), 3))
    pto.loop_vectorization = opt_level >= 2
    pto.slp_vectorization = opt_level >= 2
    pb = llvm.create_pass_builder(machine, pto)
    pm = pb.getModulePassManager()
    pm.run(module, pb)


@dataclass
class LoadedCode:
    """Machine code in this process; keeps the engine (and so the code) alive."""

    engine: llvm.ExecutionEngine
    module: llvm.ModuleRef | None  # the optimized module; None when loaded from an object
    machine: llvm.TargetMachine
    timings: dict[str, float] = field(default_factory=dict)
    obj: bytes = b""  # the object file MCJIT loaded (relocatable, for this target)
    target: Target | None = None
    #: symbol -> address of every symbol handed out by ``address`` (pickling finds the
    #: entry's name here)
    symbols: dict[str, int] = field(default_factory=dict)

    def address(self, name: str) -> int:
        addr = self.engine.get_function_address(name)
        if not addr:
            raise RuntimeError(f"symbol {name!r} not found in compiled code")
        self.symbols[name] = addr
        return addr

    def optimized_ir(self) -> str:
        """The optimized module's LLVM IR (printed on demand: large for scalar code)."""
        if self.module is None:
            raise RuntimeError("this code was loaded from an object file; it has no module")
        return str(self.module)

    def asm(self) -> str:
        if self.module is None:
            raise RuntimeError("this code was loaded from an object file; it has no module")
        return self.machine.emit_assembly(self.module)

    def object_code(self) -> bytes:
        if self.obj:
            return self.obj
        assert self.module is not None
        return self.machine.emit_object(self.module)


def jit_compile(ir_text: str, opt_level: int = 3, target: Target | None = None,
                ir_opt_level: int | None = None) -> LoadedCode:
    """Parse, verify, optimize and load LLVM IR text; returns the loaded code.
    ``opt_level`` sets the machine-code level and, unless ``ir_opt_level`` is given, the
    level of the IR pass pipeline (0: no IR passes)."""
    target = target or Target.host()
    ir_level = opt_level if ir_opt_level is None else ir_opt_level
    timings: dict[str, float] = {}
    with _lock:  # LLVM's global state (pass registration, context) is not thread-safe
        t0 = time.perf_counter()
        mod = llvm.parse_assembly(ir_text)
        mod.verify()
        machine = target.machine(opt=3 if opt_level >= 2 else opt_level)
        mod.triple = target.triple
        mod.data_layout = str(machine.target_data)
        t1 = time.perf_counter()
        if ir_level > 0:
            optimize(mod, machine, ir_level)
        t2 = time.perf_counter()
        # Machine code as an object file, then loaded: the same cost as letting MCJIT
        # compile the module (measured), and the object is what the persistent cache
        # stores and what pickling ships.
        obj = machine.emit_object(mod)
        engine = _load(obj, machine)
        t3 = time.perf_counter()
    timings.update(parse=t1 - t0, optimize=t2 - t1, machine_code=t3 - t2)
    return LoadedCode(engine, mod, machine, timings, obj, target)


def _load(obj: bytes, machine: llvm.TargetMachine) -> llvm.ExecutionEngine:
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine)
    engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
    engine.finalize_object()
    return engine


def load_object(obj: bytes, target: Target | None = None) -> LoadedCode:
    """Load an object file from ``jit_compile`` (``LoadedCode.obj``) into this process,
    without parsing or optimizing anything (a cache hit, or an unpickled function)."""
    target = target or Target.host()
    with _lock:
        t0 = time.perf_counter()
        machine = target.machine()
        engine = _load(obj, machine)
        t1 = time.perf_counter()
    return LoadedCode(engine, None, machine, {"load_object": t1 - t0}, obj, target)
