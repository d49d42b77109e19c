"""Memory settings for a long-running process that moves megabyte images around: glibc's allocator, and the
garbage collector's view of what startup built.

With its defaults, glibc raises its mmap threshold to the size of each big block that is freed (up to 32 MiB),
so after the first image every 1–3 MB buffer comes from the heap instead, and freed holes between live blocks
are kept; each worker thread also gets its own arena. A burst of edits then leaves the process hundreds of MiB
above what it holds. A fixed threshold sends every block of 256 KiB or more to its own mapping, returned to the
system as soon as it is freed, and two arenas bound the per-thread pools.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
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


def freeze_startup_heap() -> int:
    """Take what startup built (modules, classes, clients, settings: ~70k objects) out of the cyclic collector's
    reach, after collecting the garbage among it. Every full collection walked them all: a 45-65 ms pause of the
    event loop in the middle of a burst (bench, GC timers), the largest single stall there. Later objects are
    collected as before. Returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("startup heap: %d objects kept out of full garbage collections", frozen)
    return frozen
