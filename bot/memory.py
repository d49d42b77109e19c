"""glibc allocator settings for a process that moves megabyte images around.

With its defaults, glibc raises its mmap threshold to the size of each big block that is freed (up to 32 MiB),
so after the first image every 1–3 MB buffer comes from the heap instead, and freed holes between live blocks
are kept; each worker thread also gets its own arena. A burst of edits then leaves the process hundreds of MiB
above what it holds. A fixed threshold sends every block of 256 KiB or more to its own mapping, returned to the
system as soon as it is freed, and two arenas bound the per-thread pools.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 256 * 1024
ARENA_MAX = 2


def tune_allocator() -> bool:
    """Apply the settings (glibc only; an operator's MALLOC_* environment wins). True if applied."""
    if any(name.startswith("MALLOC_") for name in os.environ):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_ARENA_MAX, ARENA_MAX))
    log.debug("glibc allocator: mmap threshold %d, arenas %d: %s", MMAP_THRESHOLD, ARENA_MAX, applied)
    return applied
