"""``tensorjit bench``: benchmark suites against NumPy, the reference interpreter and (when
installed) PyTorch and JAX, with the machine's measured bandwidth and FMA peak as the
yardsticks. ``harness`` and ``workloads`` are shared with the scripts in ``bench/``."""
