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

    def machine(self, opt: int = 3, reloc: str = "default") -> llvm.TargetMachine:
        _init()
        target = llvm.Target.from_triple(self.triple)
        return target.create_target_machine(cpu=self.cpu, features=self.features, opt=opt,
                                            reloc=reloc, codemodel="jitdefault")

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
    module: llvm.ModuleRef
    machine: llvm.TargetMachine
    optimized_ir: str
    timings: dict[str, float] = field(default_factory=dict)

    def address(self, name: str) -> int:
        addr = self.engine.get_function_address(name)
        if not addr:
            raise RuntimeError(f"symbol {name!r} not found in compiled code")
        return addr

    def asm(self) -> str:
        return self.machine.emit_assembly(self.module)

    def object_code(self) -> bytes:
        return self.machine.emit_object(self.module)


def jit_compile(ir_text: str, opt_level: int = 3, target: Target | None = None) -> LoadedCode:
    """Parse, verify, optimize and load LLVM IR text; returns the loaded code."""
    target = target or Target.host()
    timings: dict[str, float] = {}
    with _lock:  # LLVM's global state (pass registration, context) is not thread-safe
        t0 = time.perf_counter()
        mod = llvm.parse_assembly(ir_text)
        mod.verify()
        machine = target.machine(opt=3 if opt_level >= 2 else opt_level)
        mod.triple = target.triple
        mod.data_layout = str(machine.target_data)
        t1 = time.perf_counter()
        if opt_level > 0:
            optimize(mod, machine, opt_level)
        t2 = time.perf_counter()
        engine = llvm.create_mcjit_compiler(mod, machine)
        engine.finalize_object()
        t3 = time.perf_counter()
    timings.update(parse=t1 - t0, optimize=t2 - t1, machine_code=t3 - t2)
    return LoadedCode(engine, mod, machine, str(mod), timings)
