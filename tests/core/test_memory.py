"""`bananabot run` tunes glibc's allocator unless the operator set MALLOC_* themselves, freezes its startup heap, and
hands freed memory back when idle."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CHECK = "from bot.memory import tune_allocator; print(tune_allocator())"


def _run(env: dict[str, str]) -> str:
    return _run_script(CHECK, env).strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_applied_on_glibc() -> None:
    assert _run({}) == "True"


def test_an_operators_malloc_setting_wins() -> None:
    assert _run({"MALLOC_ARENA_MAX": "4"}) == "False"


FREEZE = """
import gc, weakref
from bot.memory import freeze_startup_heap
class Node: pass
garbage = Node(); garbage.me = garbage; dead = weakref.ref(garbage); del garbage  # a cycle: only gc frees it
kept = Node(); kept.me = kept
frozen = freeze_startup_heap()
print(dead() is None, gc.get_freeze_count() == frozen > 1000, gc.is_tracked(kept))
gc.collect()
print(gc.get_freeze_count() == frozen)
"""


def test_the_startup_heap_is_frozen_after_its_garbage_is_collected() -> None:
    # In a process of its own: freezing is for the life of the process.
    done = subprocess.run([sys.executable, "-c", FREEZE], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True", "True", "True"]


# Each turn allocates and frees megabyte buffers. Tuned, the next turn reuses the freed heap; with the old setting
# (every block of 256 KiB or more a mapping of its own, set here as an operator would) each buffer faulted in again.
REUSE = """
import os, resource, sys
from bot.memory import tune_allocator
print(tune_allocator())
image = os.urandom(1_500_000)
def faults(): return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
before = faults()
for _ in range(100):
    body = bytearray(image) + image  # a request body, then freed
    answer = bytes(body[1:])
    del body, answer
print((faults() - before) / 100)
"""


def _faults_per_turn(env: dict[str, str]) -> tuple[str, float]:
    out = _run_script(REUSE, env).split()
    return out[0], float(out[1])


def _run_script(script: str, env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", script], env={**clean, **env}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_megabyte_buffers_are_reused_instead_of_faulted_in_again() -> None:
    tuned, tuned_faults = _faults_per_turn({})
    old, old_faults = _faults_per_turn({"MALLOC_MMAP_THRESHOLD_": str(256 * 1024)})
    assert (tuned, old) == ("True", "False")
    assert old_faults > 500  # 4.5 MB of fresh pages per turn: ~1,100 faults
    assert tuned_faults < old_faults / 10


# A burst leaves its buffers free on the heap, with small live objects between them (as a burst leaves session rows
# and log records): the trim threshold can't give those holes back, an idle release does. Some buffers are still
# held by garbage cycles (a frame, an exception) that no collection has reached yet: the release collects them first.
RELEASE = """
import gc, os
from bot.memory import release_free_memory, tune_allocator
def rss(): return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
class Cycle: pass
assert tune_allocator()
gc.disable()  # no collection happens to run in between
base = rss()
images, small = [], []
for i in range(200):
    images.append(b"\\x01" * 2_000_000)
    small.append(b"\\x02" * 700)  # above pymalloc's 512 bytes: glibc's heap, between the images
for i in range(50):
    held = Cycle(); held.me = held; held.data = b"\\x03" * 2_000_000
del held
peak = rss()
images.clear()
freed = rss()
print(release_free_memory(), peak - base, freed - base, rss() - base)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_an_idle_release_gives_back_what_a_burst_freed() -> None:
    released, peak, freed, after = _run_script(RELEASE, {}).split()
    assert released == "True"
    assert int(peak) > 450 << 20
    assert int(freed) > 450 << 20  # kept for the next burst
    assert int(after) < 50 << 20


async def test_maintenance_releases_memory_only_when_no_turn_runs(services) -> None:
    from bot.maintenance import release_memory_if_idle

    calls: list[str] = []

    def release() -> bool:
        calls.append("released")
        return True

    async with services.queue.turn("thread-1"):
        assert await release_memory_if_idle(services, release) is False
    assert calls == []
    assert await release_memory_if_idle(services, release) is True
    assert calls == ["released"]
