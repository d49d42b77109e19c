"""Memory settings for a long-running process that moves megabyte images around: glibc's allocator, and the
garbage collector's view of what startup built.

Each turn moves 10-20 MB through fresh buffers (downloads, request bodies, answers, uploads). With a small mmap
threshold every one of them was a mapping of its own, unmapped when freed, so the next turn's buffers faulted in
and were zeroed page by page again: a quarter of the bot's CPU in a 200-turn burst went to page faults and unmaps
(perf), on VMs where a fresh page is dear. Blocks up to 32 MiB now come from the heap, and what is freed stays
there for the next turn (page faults in that burst: 574-756k -> 117-125k). The heap is handed back when the bot is
idle instead (`release_free_memory`, from maintenance): malloc_trim returns every free page, the holes between
live blocks included, so a burst does not leave the process hundreds of MiB above what it holds. Two arenas bound
the per-thread pools.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import os
from typing import Any

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's ceiling for it on 64-bit
TRIM_THRESHOLD = 256 * 1024 * 1024  # free heap top kept while busy; idle trims give back the rest
ARENA_MAX = 2


def tune_allocator() -> bool:
    """Apply the settings (glibc only; an operator's MALLOC_* environment wins). True if applied."""
    if any(name.startswith("MALLOC_") for name in os.environ):
        return False
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_ARENA_MAX, ARENA_MAX))
    applied = all([bool(mallopt(option, value)) for option, value in settings])
    log.debug(
        "glibc allocator: mmap threshold %d, trim threshold %d, arenas %d: %s",
        MMAP_THRESHOLD,
        TRIM_THRESHOLD,
        ARENA_MAX,
        applied,
    )
    return applied


def release_free_memory() -> bool:
    """Collect garbage cycles (a cycle can hold a megabyte buffer until the next full collection), then give the
    allocator's free pages back to the system (glibc's malloc_trim). Blocking: call from a thread while the bot is
    idle, as it holds each arena's lock while it works. True if some memory was released."""
    malloc_trim = _libc_function("malloc_trim")
    if malloc_trim is None:
        return False
    gc.collect()
    malloc_trim.argtypes = (ctypes.c_size_t,)
    malloc_trim.restype = ctypes.c_int
    return bool(malloc_trim(0))


def _libc_function(symbol: str) -> Any | None:
    """A glibc function, or None where there is none (musl, macOS)."""
    return getattr(_libc(), symbol, None)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")  # runs ldconfig: once per process
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


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
