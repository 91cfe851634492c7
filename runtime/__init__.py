"""Call-time support: the C runtime, the memory pool (re-exports only)."""

from tensorjit.runtime.pool import Block, MemoryPool, default_pool

__all__ = ["Block", "MemoryPool", "default_pool"]
