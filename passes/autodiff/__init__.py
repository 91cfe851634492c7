"""Automatic differentiation as a graph transform (reverse mode, and forward mode by
transposition). See ``rules`` for the VJP table and its conventions, ``reverse`` for the
transform and what is saved or recomputed, ``forward`` for JVPs."""

from tensorjit.passes.autodiff.forward import jvp
from tensorjit.passes.autodiff.reverse import vjp
from tensorjit.passes.autodiff.rules import NON_DIFFERENTIABLE, VJP_RULES
from tensorjit.passes.autodiff.substitute import placeholder, substitute

__all__ = ["NON_DIFFERENTIABLE", "VJP_RULES", "jvp", "placeholder", "substitute", "vjp"]
