"""C text of an AOT library: the documented header ``NAME.h`` and the wrapper ``NAME.c``
that turns the compiled entry point into a checked, typed C function.

The compiled code's own entry is ``int32 ENTRY(void **buffers, int64 *dims, char *arena)``
(``compiler/codegen/module.py``). The wrapper adds, per library:

- ``NAME(inputs..., outputs..., dims...)``: checks (CPU features, symbolic dims >= 1, size
  overflow, NULL pointers, outputs overlapping inputs), takes this thread's scratch arena
  (kept between calls, grown on demand, freed at thread exit), calls the entry once;
- ``NAME_checked(...)``: the same with the element count of every buffer, compared with
  the count its shape implies;
- ``NAME_last_error()``, ``NAME_error_string(code)``, ``NAME_set_num_threads(n)``,
  ``NAME_manifest()``, and the low-level ``NAME_entry``/``NAME_const``/
  ``NAME_arena_bytes`` that ``tj.load`` uses.

Constant arrays and the manifest are embedded with ``.incbin`` (no C text per byte).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tensorjit.ir.dtypes import DType
from tensorjit.ir.shapes import Shape, Size, numel

C_TYPES = {DType.float32: "float", DType.float64: "double", DType.int32: "int32_t",
           DType.int64: "int64_t", DType.bool: "uint8_t"}

# Feature names __builtin_cpu_supports accepts in both GCC (>= 11) and Clang (>= 14).
BUILTIN_CPU_FEATURES = frozenset({
    "cmov", "mmx", "popcnt", "sse", "sse2", "sse3", "ssse3", "sse4.1", "sse4.2", "avx",
    "avx2", "sse4a", "fma", "bmi", "bmi2", "aes", "pclmul", "avx512f", "avx512vl",
    "avx512bw", "avx512dq", "avx512cd", "avx512vbmi", "avx512ifma", "avx512vpopcntdq",
    "avx512vbmi2", "gfni", "vpclmulqdq", "avx512vnni", "avx512bitalg", "avx512bf16",
})

_C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum
extern float for goto if inline int long register restrict return short signed sizeof static
struct switch typedef union unsigned void volatile while bool true false""".split())

ERRORS = (  # (suffix, value, meaning)
    ("OK", 0, "success"),
    ("ERR_NULL_ARGUMENT", 1, "a buffer pointer is NULL"),
    ("ERR_BAD_DIM", 2, "a symbolic dim is < 1, or a buffer size overflows int64"),
    ("ERR_SIZE", 3, "a buffer's element count is not what its shape implies "
                    "(NAME_checked only)"),
    ("ERR_OVERLAP", 4, "an output buffer overlaps an input buffer"),
    ("ERR_OUT_OF_MEMORY", 5, "the scratch arena could not be allocated"),
    ("ERR_CPU", 6, "this CPU lacks an instruction-set feature the library was built for"),
    ("ERR_INTERNAL", 7, "the compiled code reported an error"),
)


def c_identifier(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text)) and text not in _C_KEYWORDS


@dataclass
class CArg:
    cname: str
    name: str
    dtype: DType
    shape: Shape

    @property
    def size(self) -> Size:
        return numel(self.shape)

    def shape_text(self) -> str:
        return "[" + ", ".join(str(d) for d in self.shape) + "]"

    def count_text(self) -> str:
        parts = [str(d) for d in self.shape]
        return " * ".join(parts) if parts else "1"


@dataclass
class CLibrary:
    """Everything the generated C needs to know."""

    name: str
    entry_symbol: str
    inputs: list[CArg]
    outputs: list[CArg]
    symbols: list[str]  # symbolic dim names, entry order
    sym_cnames: list[str]
    arena: list[tuple[Size, int]]  # (element count, itemsize) per arena item
    consts: list[tuple[str, int]]  # (path of the .bin file, byte size)
    cpu: str
    features: list[str]
    manifest_path: str
    version: str
    library_file: str
    check_features: list[str] = field(default_factory=list)

    @property
    def upper(self) -> str:
        return self.name.upper()


def unique_cnames(names: list[str], taken: set[str], fallback: str) -> list[str]:
    """C parameter names for ``names``: valid, not keywords, distinct, not in ``taken``."""
    out = []
    for k, n in enumerate(names):
        c = n if c_identifier(n) else f"{fallback}{k}"
        while c in taken or c in _C_KEYWORDS:
            c += "_"
        taken.add(c)
        out.append(c)
    return out


def _params(lib: CLibrary, checked: bool) -> str:
    ps = []
    for a in lib.inputs:
        ps.append(f"const {C_TYPES[a.dtype]} *{a.cname}")
        if checked:
            ps.append(f"int64_t {a.cname}_len")
    for a in lib.outputs:
        ps.append(f"{C_TYPES[a.dtype]} *{a.cname}")
        if checked:
            ps.append(f"int64_t {a.cname}_len")
    ps += [f"int64_t {s}" for s in lib.sym_cnames]
    return ", ".join(ps) if ps else "void"


def _wrap(text: str, indent: str, width: int = 88) -> list[str]:
    lines, line = [], indent
    for word in text.split():
        if len(line) + len(word) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = indent
        line += word + " "
    if line.strip():
        lines.append(line.rstrip())
    return lines


def header(lib: CLibrary) -> str:
    n, up = lib.name, lib.upper
    guard = f"TENSORJIT_{up}_H"
    doc: list[str] = [
        f"{n}.h - C interface of {lib.library_file}, generated by tensorjit {lib.version}.",
        "",
        "The library is self-contained: the compiled function and the tensorjit C runtime",
        "(thread pool, aligned buffers) are linked in; it needs only libc, libm and",
        "libpthread. Link with -l" + (lib.library_file[3:].rsplit(".so", 1)[0]
                                      if lib.library_file.startswith("lib") else n)
        + " (or the full path) and include this header.",
        "",
        *_wrap(f"Built for CPU {lib.cpu!r}; calling it on a CPU without "
               + ("these features: " + " ".join(lib.features) if lib.features
                  else "its features")
               + f" returns {up}_ERR_CPU instead of crashing.", "", 84),
        "",
        "Arrays are dense and row-major (C order), of the element type shown; any alignment",
        "works. Outputs are written by the call and must not overlap the inputs.",
        "",
        "Inputs:",
    ]
    for a in lib.inputs:
        doc.append(f"  {a.cname:<12} {C_TYPES[a.dtype]:<8} {a.dtype.value:<8} "
                   f"shape {a.shape_text()}  ({a.count_text()} elements)")
    doc.append("Outputs:")
    for a in lib.outputs:
        doc.append(f"  {a.cname:<12} {C_TYPES[a.dtype]:<8} {a.dtype.value:<8} "
                   f"shape {a.shape_text()}  ({a.count_text()} elements)")
    if lib.symbols:
        doc.append("Symbolic dims (int64_t arguments after the outputs, each >= 1):")
        for s, c in zip(lib.symbols, lib.sym_cnames):
            users = [a.cname for a in lib.inputs + lib.outputs if s in a.shape]
            doc.append(f"  {c:<12} the size named {s!r}, used by {', '.join(users)}")
    else:
        doc.append("Symbolic dims: none (all shapes are static).")
    doc += [
        "",
        "Threads: kernels run on a pool of TENSORJIT_NUM_THREADS threads (default: all",
        f"cores); {n}_set_num_threads changes it. Calls from several threads at once are",
        "safe; each thread keeps its own scratch memory, freed when the thread exits.",
    ]
    out = ["/*"] + [(" * " + d).rstrip() for d in doc] + [" */",
                                                         f"#ifndef {guard}",
                                                         f"#define {guard}", "",
                                                         "#include <stdint.h>", "",
                                                         "#ifdef __cplusplus",
                                                         'extern "C" {', "#endif", ""]
    out.append("/* Return codes. */")
    for suffix, value, meaning in ERRORS:
        out.append(f"#define {up}_{suffix} {value} /* {meaning.replace('NAME', n)} */")
    out += [
        "",
        f"/* Computes the outputs from the inputs. Returns {up}_OK or an error code; on error",
        f" * the outputs are untouched and {n}_last_error() says what was wrong. The buffer",
        " * sizes cannot be checked from pointers: they must hold the element counts above",
        f" * ({n}_checked checks counts you pass). */",
        f"int {n}({_params(lib, False)});",
        "",
        f"/* {n} with the element count of each buffer after it; a count that does not match",
        f" * the shape (for the given dims) returns {up}_ERR_SIZE. */",
        f"int {n}_checked({_params(lib, True)});",
        "",
        "/* The message of the last failed call on this thread (\"\" if none). The text is",
        " * valid until the next call on this thread. */",
        f"const char *{n}_last_error(void);",
        "",
        "/* A short description of a return code. */",
        f"const char *{n}_error_string(int code);",
        "",
        "/* Sets the number of threads the kernels use (including the caller); n < 1 resets",
        " * to the default. Takes effect on the next call. */",
        f"void {n}_set_num_threads(int n);",
        "",
        "/* The JSON manifest the library was built with (names, dtypes, shapes, target). */",
        f"const char *{n}_manifest(void);",
        "",
        "/* Low level (used by tensorjit.load; prefer the functions above). The compiled",
        " * entry point: buffers = inputs, outputs, then the constant arrays",
        f" * ({n}_const(0..{len(lib.consts) - 1 if lib.consts else 'none'})), dims = the symbolic"
        " dims in the order above,",
        f" * arena = {n}_arena_bytes(dims) bytes aligned to 64 (NULL if 0). No checks. */",
        f"int {n}_entry(void **buffers, const int64_t *dims, char *arena);",
        f"const void *{n}_const(int k);",
        f"int64_t {n}_arena_bytes(const int64_t *dims);",
        "",
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        f"#endif /* {guard} */",
        "",
    ]
    return "\n".join(out)


def _asm_string(path: str) -> str:
    return path.replace("\\", "\\\\").replace('"', '\\"')


def _size_code(size: Size, syms: list[str], var: str, what: str) -> list[str]:
    """C statements computing ``var = size`` (int64) with overflow checks."""
    lines = [f"    {var} = INT64_C({size.coef});"]
    for s in size.syms:
        k = syms.index(s)
        lines.append(f"    if (__builtin_mul_overflow({var}, dims[{k}], &{var}))")
        lines.append(f'        return fail(ERR_BAD_DIM, "{what}: size overflows int64");')
    return lines


def wrapper(lib: CLibrary) -> str:
    n = lib.name
    n_in, n_out, n_c = len(lib.inputs), len(lib.outputs), len(lib.consts)
    n_bufs = max(n_in + n_out + n_c, 1)
    args = lib.inputs + lib.outputs
    out: list[str] = [
        f"/* {n}.c - generated by tensorjit {lib.version}: checked C entry points around the",
        f" * compiled function {lib.entry_symbol} (see {n}.h). */",
        "#include <stdarg.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "#include <stdio.h>",
        "#include <pthread.h>",
        "",
        '#include "tjrt.h"',
        f'#include "{n}.h"',
        "",
        "#define EXPORT __attribute__((visibility(\"default\")))",
        f"#define NAME \"{n}\"",
    ]
    for suffix, value, _ in ERRORS:
        out.append(f"#define {suffix} {value}")
    out += [
        "",
        f"int32_t {lib.entry_symbol}(void **buffers, const int64_t *dims, char *arena);",
        "",
    ]
    # Embedded data: constants and the manifest.
    blobs = [(f"tj_const_{k}", p) for k, (p, _) in enumerate(lib.consts)]
    blobs.append(("tj_manifest_json", lib.manifest_path))
    asm = ['__asm__(".section .rodata.tensorjit,\\"a\\",@progbits\\n"']
    for sym, path in blobs:
        asm += [f'        ".balign 64\\n.globl {sym}\\n.hidden {sym}\\n{sym}:\\n"',
                f'        ".incbin \\"{_asm_string(path)}\\"\\n"']
    asm.append('        ".previous\\n");')
    out += asm
    for sym, _ in blobs:
        out.append(f"extern const unsigned char {sym}[];")
    out.append("static const void *const CONSTS[] = {"
               + ", ".join(f"tj_const_{k}" for k in range(n_c)) + (" " if n_c else "NULL")
               + "};")
    out += ["", "/* Per-thread state: the last error and the scratch arena. */",
            "static __thread char err_msg[512];",
            "static __thread char *arena_ptr;",
            "static __thread size_t arena_cap;",
            "static pthread_key_t arena_key;",
            "static pthread_once_t arena_once = PTHREAD_ONCE_INIT;",
            "static void arena_release(void *p) { tj_aligned_free(p); }",
            "static void arena_key_init(void) { (void)pthread_key_create(&arena_key, "
            "arena_release); }",
            "",
            "static int fail(int code, const char *fmt, ...) {",
            "    va_list ap;",
            "    va_start(ap, fmt);",
            "    vsnprintf(err_msg, sizeof err_msg, fmt, ap);",
            "    va_end(ap);",
            "    return code;",
            "}",
            "",
            "static char *arena_get(size_t need) {",
            "    if (need <= arena_cap) return arena_ptr;",
            "    char *p = tj_aligned_alloc(need);",
            "    if (p == NULL) return NULL;",
            "    pthread_once(&arena_once, arena_key_init);",
            "    tj_aligned_free(arena_ptr);",
            "    arena_ptr = p;",
            "    arena_cap = need;",
            "    (void)pthread_setspecific(arena_key, p);",
            "    return p;",
            "}",
            ""]
    # CPU check.
    feats = [f for f in lib.check_features if f in BUILTIN_CPU_FEATURES]
    out += ["/* 0: not checked yet, 1: this CPU has every feature, -1: it lacks cpu_missing. */",
            "static volatile int cpu_state;",
            "static const char *cpu_missing = \"\";",
            "static int cpu_ok(void) {",
            "    if (cpu_state != 0) return cpu_state;",
            "#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))",
            "    __builtin_cpu_init();",
            "    const char *missing = NULL;"]
    for f in feats:
        out.append(f'    if (!missing && !__builtin_cpu_supports("{f}")) missing = "{f}";')
    out += ["    if (missing) cpu_missing = missing;",
            "    cpu_state = missing ? -1 : 1;",
            "#else",
            "    cpu_state = 1;",
            "#endif",
            "    return cpu_state;",
            "}",
            ""]
    # Arena size.
    out += [f"EXPORT int64_t {n}_arena_bytes(const int64_t *dims) {{",
            "    int64_t total = 0, bytes = 0;",
            "    (void)dims; (void)bytes;"]
    for size, itemsize in lib.arena:
        out += [f"    bytes = INT64_C({size.coef * itemsize});"]
        for s in size.syms:
            out += [f"    if (__builtin_mul_overflow(bytes, dims[{lib.symbols.index(s)}], "
                    "&bytes)) return -1;"]
        out += ["    bytes = (bytes + 63) & ~INT64_C(63);",
                "    if (__builtin_add_overflow(total, bytes, &total)) return -1;"]
    out += ["    return total;", "}", ""]
    # The checked core.
    out += ["static int run(void **bufs, const int64_t *lens, const int64_t *dims) {",
            "    (void)lens;",
            "    if (cpu_ok() < 0)",
            '        return fail(ERR_CPU, NAME ": this CPU lacks the instruction-set feature '
            f'%s; the library was built for CPU \'{lib.cpu}\'", cpu_missing);']
    for k, (s, c) in enumerate(zip(lib.symbols, lib.sym_cnames)):
        out += [f"    if (dims[{k}] < 1)",
                f'        return fail(ERR_BAD_DIM, NAME ": symbolic dim \'{s}\''
                + (f" ({c})" if c != s else "")
                + f' must be >= 1, got %lld", (long long)dims[{k}]);']
    out.append("    int64_t count = 0, bytes = 0;")
    out.append("    (void)count; (void)bytes;")
    starts: list[str] = []
    for k, a in enumerate(args):
        role = "input" if k < n_in else "output"
        what = f'NAME ": {role} \'{a.cname}\'"'
        out += _size_code(a.size, lib.symbols, "count", f"{n}: {role} '{a.cname}'")
        out += [f"    if (lens != NULL && lens[{k}] != count)",
                f'        return fail(ERR_SIZE, {what} " has %lld elements, expected %lld '
                f'(shape {a.shape_text()})", (long long)lens[{k}], (long long)count);',
                f"    if (bufs[{k}] == NULL && count > 0)",
                f'        return fail(ERR_NULL_ARGUMENT, {what} " is NULL");',
                f"    if (__builtin_mul_overflow(count, INT64_C({a.dtype.itemsize}), &bytes))",
                f'        return fail(ERR_BAD_DIM, {what} " size overflows int64");',
                f"    const char *lo{k} = (const char *)bufs[{k}];",
                f"    const char *hi{k} = lo{k} + bytes;"]
        starts.append(str(k))
    for j in range(n_in, n_in + n_out):
        for i in range(n_in):
            out += [f"    if (lo{j} < hi{i} && lo{i} < hi{j})",
                    f'        return fail(ERR_OVERLAP, NAME ": output \'{args[j].cname}\' '
                    f'overlaps input \'{args[i].cname}\'");']
    out += [f"    int64_t need = {n}_arena_bytes(dims);",
            "    if (need < 0)",
            '        return fail(ERR_BAD_DIM, NAME ": scratch size overflows int64");',
            "    char *arena = need > 0 ? arena_get((size_t)need) : NULL;",
            "    if (need > 0 && arena == NULL)",
            '        return fail(ERR_OUT_OF_MEMORY, NAME ": cannot allocate %lld bytes of '
            'scratch memory", (long long)need);']
    for k in range(n_c):
        out.append(f"    bufs[{n_in + n_out + k}] = (void *)CONSTS[{k}];")
    out += [f"    int32_t status = {lib.entry_symbol}(bufs, dims, arena);",
            "    if (status != 0)",
            '        return fail(ERR_INTERNAL, NAME ": the compiled code returned %d", '
            "(int)status);",
            "    return OK;",
            "}",
            ""]
    dims_decl = ("    const int64_t dims[] = {" + ", ".join(lib.sym_cnames) + "};"
                 if lib.symbols else "    const int64_t *dims = NULL;")
    ptrs = ", ".join(f"(void *){a.cname}" for a in args)
    fill = ptrs + (", " if ptrs and n_c else "") + ", ".join("NULL" for _ in range(n_c))
    bufs_decl = f"    void *bufs[{n_bufs}] = {{{fill or 'NULL'}}};"
    out += [f"EXPORT int {n}({_params(lib, False)}) {{", dims_decl, bufs_decl,
            "    return run(bufs, NULL, dims);", "}", ""]
    lens = ", ".join(f"{a.cname}_len" for a in args)
    out += [f"EXPORT int {n}_checked({_params(lib, True)}) {{", dims_decl, bufs_decl,
            f"    const int64_t lens[{max(len(args), 1)}] = {{{lens or '0'}}};",
            "    return run(bufs, lens, dims);", "}", ""]
    out += [f"EXPORT const char *{n}_last_error(void) {{ return err_msg; }}", "",
            f"EXPORT const char *{n}_error_string(int code) {{",
            "    switch (code) {"]
    for _, value, meaning in ERRORS:
        out.append(f'    case {value}: return "{meaning.replace("NAME", n)}";')
    out += ['    default: return "unknown error code";', "    }", "}", "",
            f"EXPORT void {n}_set_num_threads(int n) {{ tj_set_num_threads(n); }}", "",
            f"EXPORT const char *{n}_manifest(void) {{ return (const char *)tj_manifest_json; }}",
            "",
            f"EXPORT int {n}_entry(void **buffers, const int64_t *dims, char *arena) {{",
            "    if (cpu_ok() < 0) return ERR_CPU;",
            f"    return {lib.entry_symbol}(buffers, dims, arena);",
            "}", "",
            f"EXPORT const void *{n}_const(int k) {{",
            f"    return k >= 0 && k < {n_c} ? CONSTS[k] : NULL;",
            "}", ""]
    return "\n".join(out)


def version_script(name: str) -> str:
    """Exports ``NAME`` and ``NAME_*`` only: the entry, the runtime and the constants stay
    inside the library, so two libraries (or one and the JIT) never bind to each other."""
    return f"{{\n  global: {name}; {name}_*;\n  local: *;\n}};\n"
