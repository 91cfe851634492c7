"""Re-exports ``tensorjit.compiler.bench.workloads`` (moved there so that the installed
``tensorjit bench`` command times the same code) under the name the scripts here use."""

from tensorjit.compiler.bench.workloads import *  # noqa: F403
