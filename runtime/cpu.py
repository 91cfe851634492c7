"""What this CPU can run, without LLVM: the instruction-set features a piece of machine
code needs (LLVM's names, as recorded in an AOT manifest or a pickled function) checked
against the features the operating system reports for this CPU.

Only instruction-set extensions that compiled kernels can use are checked (vector and
bit-manipulation ISAs); system features (shadow stacks, XSAVE variants, ...) are ignored,
because kernels never emit them and kernels do not disable them. On Linux the host's
features come from ``/proc/cpuinfo``; elsewhere, from LLVM when llvmlite is importable,
and otherwise nothing is checked (``host_features()`` returns None).
"""

from __future__ import annotations

import platform
from functools import lru_cache

from tensorjit.ir.errors import TensorJitError

#: LLVM feature name -> the flag Linux shows in /proc/cpuinfo for it.
_CPUINFO_FLAG: dict[str, str] = {
    "sse": "sse", "sse2": "sse2", "sse3": "pni", "ssse3": "ssse3", "sse4.1": "sse4_1",
    "sse4.2": "sse4_2", "sse4a": "sse4a", "popcnt": "popcnt", "cx16": "cx16",
    "sahf": "lahf_lm", "avx": "avx", "avx2": "avx2", "fma": "fma", "f16c": "f16c",
    "bmi": "bmi1", "bmi2": "bmi2", "lzcnt": "abm", "movbe": "movbe", "adx": "adx",
    "aes": "aes", "pclmul": "pclmulqdq", "sha": "sha_ni", "gfni": "gfni", "vaes": "vaes",
    "vpclmulqdq": "vpclmulqdq", "avx512f": "avx512f", "avx512bw": "avx512bw",
    "avx512cd": "avx512cd", "avx512dq": "avx512dq", "avx512vl": "avx512vl",
    "avx512ifma": "avx512ifma", "avx512vbmi": "avx512vbmi", "avx512vbmi2": "avx512_vbmi2",
    "avx512vnni": "avx512_vnni", "avx512bitalg": "avx512_bitalg",
    "avx512vpopcntdq": "avx512_vpopcntdq", "avx512bf16": "avx512_bf16",
    "avx512fp16": "avx512_fp16", "avxvnni": "avx_vnni", "amx-tile": "amx_tile",
    "amx-int8": "amx_int8", "amx-bf16": "amx_bf16",
}

#: The features above, for callers that want to record only the checkable ones.
ISA_FEATURES = frozenset(_CPUINFO_FLAG)


@lru_cache(maxsize=1)
def host_features() -> frozenset[str] | None:
    """This CPU's instruction-set features in LLVM's names, or None if unknown."""
    if platform.system() == "Linux":
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("flags"):
                        flags = set(line.split(":", 1)[1].split())
                        return frozenset(k for k, v in _CPUINFO_FLAG.items() if v in flags)
        except OSError:
            pass
    try:  # pragma: no cover - non-Linux hosts
        import llvmlite.binding as llvm

        llvm.initialize_native_target()
        return frozenset(k for k, v in llvm.get_host_cpu_features().items() if v)
    except Exception:  # noqa: BLE001 - no LLVM either: cannot tell
        return None


def isa_features(features: list[str] | tuple[str, ...] | frozenset[str]) -> list[str]:
    """The instruction-set features among ``features`` (LLVM names), sorted."""
    return sorted(f for f in features if f in ISA_FEATURES)


def missing_features(required: list[str] | tuple[str, ...]) -> list[str]:
    """The instruction-set features among ``required`` that this CPU lacks."""
    host = host_features()
    if host is None:
        return []
    return [f for f in isa_features(tuple(required)) if f not in host]


def check_cpu(required: list[str] | tuple[str, ...], what: str, cpu: str) -> None:
    """Raise a clear error if this CPU cannot run code built for ``cpu``/``required``."""
    missing = missing_features(required)
    if missing:
        raise TensorJitError(
            f"{what} was built for CPU {cpu!r} and needs instruction-set features this CPU "
            f"lacks: {', '.join(missing)}. Running it would stop the process with an illegal "
            "instruction. Rebuild it on this machine, or export it for a portable level "
            "(target='x86-64-v3' runs on any x86-64 CPU with AVX2 and FMA).")
