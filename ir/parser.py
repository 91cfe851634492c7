"""Parsing the graph IR's text form (``ir/printer.py`` documents the grammar).

``parse_graph(format_graph(g))`` rebuilds a graph structurally equal to ``g`` (the same
interned nodes), except that array constants, which the text shows by shape only,
cannot be written, and parameters are named ``p0``, ``p1``... (the text omits names).
Golden-text tests write their input graphs this way. Comments (``# ...``) and the
verifier's ``<-- here`` marker are ignored. Every node goes through its op's type rule
and must match the type the text gives.
"""

from __future__ import annotations

import re
from typing import Any

from tensorjit.ir.build import apply, const, iota, param
from tensorjit.ir.dtypes import DType
from tensorjit.ir.errors import TensorJitError
from tensorjit.ir.graph import Graph, Node
from tensorjit.ir.printer import format_type

_DTYPES = {d.short: d for d in DType}
_HEAD = re.compile(r"^graph\s+(\S+)\((.*)\)\s*\{$")
_PARAM = re.compile(r"^(%\d+)\s*:\s*(\w+)\[([^\]]*)\]$")
_LINE = re.compile(r"^(%\d+)\s*=\s*(\w+)\(([^)]*)\)\s*(\{.*\})?\s*:\s*(\w+)\[([^\]]*)\]$")
_RETURN = re.compile(r"^return\s*\((.*)\)$")
_TOKEN = re.compile(r"\s*(\(|\)|,|'\w+'|-?inf|nan|[-+]?(?:\d+\.\d*(?:e[-+]?\d+)?|\d+e[-+]?\d+|\d+)"
                    r"|[A-Za-z_][\w.]*)")


class ParseError(TensorJitError):
    """The text is not a graph in the documented form (the message names the line)."""


def _dims(text: str) -> tuple[int | str, ...]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return tuple(int(p) if p.lstrip("-").isdigit() else p for p in parts)


def _dtype(short: str, line: str) -> DType:
    try:
        return _DTYPES[short]
    except KeyError:
        raise ParseError(f"unknown dtype {short!r} in: {line}") from None


def parse_value(text: str) -> Any:
    """An attribute value: int, float (``nan``, ``inf``, ``-0.0``), bool, dtype (``f32``),
    a symbolic dim name (quoted in tuples: ``('batch', 3)``), or a tuple of those."""
    tokens = [m.group(1) for m in _TOKEN.finditer(text)]
    if "".join(tokens).replace(" ", "") != text.replace(" ", ""):
        raise ParseError(f"cannot read the value {text!r}")
    pos = 0

    def value() -> Any:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            items = []
            while tokens[pos] != ")":
                items.append(value())
                if tokens[pos] == ",":
                    pos += 1
            pos += 1
            return tuple(items)
        if tok.startswith("'"):
            return tok[1:-1]
        if tok in ("True", "False"):
            return tok == "True"
        if tok in _DTYPES:
            return _DTYPES[tok]
        if tok in ("inf", "-inf", "nan"):
            return float(tok)
        if re.fullmatch(r"[-+]?\d+", tok):
            return int(tok)
        if re.fullmatch(r"[-+]?[\d.]+(e[-+]?\d+)?", tok):
            return float(tok)
        return tok

    out = value()
    if pos != len(tokens):
        raise ParseError(f"trailing text in the value {text!r}")
    return out


def _attrs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    body = text.strip()[1:-1]
    out: dict[str, Any] = {}
    depth, start = 0, 0
    pieces = []
    for k, ch in enumerate(body):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            pieces.append(body[start:k])
            start = k + 1
    pieces.append(body[start:])
    for piece in pieces:
        name, _, value = piece.partition("=")
        out[name.strip()] = parse_value(value.strip())
    return out


def parse_graph(text: str) -> Graph:
    """The graph a ``format_graph`` text describes (see the module docstring)."""
    lines = [ln.split("#")[0].replace("<-- here", "").strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines or not _HEAD.match(lines[0]) or lines[-1] != "}":
        raise ParseError("expected 'graph NAME(...) {' ... '}'")
    head = _HEAD.match(lines[0])
    assert head is not None
    name, params_text = head.group(1), head.group(2)
    values: dict[str, Node] = {}
    params: list[Node] = []
    for k, piece in enumerate(p.strip() for p in params_text.split("%")[1:]):
        m = _PARAM.match("%" + piece.rstrip(", "))
        if m is None:
            raise ParseError(f"cannot read the parameter %{piece}")
        node = param(k, f"p{k}", _dims(m.group(3)), _dtype(m.group(2), lines[0]))
        values[m.group(1)] = node
        params.append(node)
    outputs: tuple[Node, ...] | None = None
    for line in lines[1:-1]:
        ret = _RETURN.match(line)
        if ret:
            outputs = tuple(_ref(values, r.strip(), line) for r in ret.group(1).split(","))
            continue
        m = _LINE.match(line)
        if m is None:
            raise ParseError(f"cannot read the line: {line}")
        ident, op, args, attrs_text, dt, dims = m.groups()
        dtype, shape = _dtype(dt, line), _dims(dims)
        inputs = [_ref(values, a.strip(), line) for a in args.split(",") if a.strip()]
        attrs = _attrs(attrs_text)
        try:
            if op == "const":
                node = const(attrs["value"], dtype, shape)
            elif op == "iota":
                node = iota(shape, attrs["axis"])
            else:
                node = apply(op, inputs, attrs)
        except (KeyError, TensorJitError) as exc:
            raise ParseError(f"{exc} in: {line}") from None
        if format_type(node) != f"{dt}[{dims.replace(' ', '')}]":
            raise ParseError(f"the line says {dt}[{dims}] but {op} gives "
                             f"{format_type(node)}: {line}")
        values[ident] = node
    if outputs is None:
        raise ParseError("missing 'return (...)'")
    return Graph(tuple(params), outputs, name, returns_tuple=len(outputs) > 1)


def _ref(values: dict[str, Node], ident: str, line: str) -> Node:
    try:
        return values[ident]
    except KeyError:
        raise ParseError(f"{ident} is used before it is defined in: {line}") from None
