"""The error classes every stage raises; `tensorjit` re-exports them."""

from __future__ import annotations


class TensorJitError(Exception):
    """Base class of every error tensorjit raises on purpose."""


class ShapeError(TensorJitError, ValueError):
    """A shape, rank or symbolic-dimension binding does not fit."""


class DTypeError(TensorJitError, TypeError):
    """A dtype is not supported or does not match what was expected."""


class UnsupportedError(TensorJitError, NotImplementedError):
    """An op, argument or combination that tensorjit does not handle (yet)."""


class VerificationError(TensorJitError):
    """An IR failed its verifier: a bug in a pass, never in user code."""


def with_location(message: str, loc: str | None) -> str:
    """Append the user's source line (recorded at trace time) to a message."""
    return f"{message}\n  at {loc}" if loc else message
