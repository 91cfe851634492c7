"""Re-exports ``tensorjit.compiler.bench.harness`` (the helpers moved there so that the
installed ``tensorjit bench`` command can use them) under the name the scripts here use."""

from tensorjit.compiler.bench.harness import *  # noqa: F403
