"""`bananabot run` tunes glibc's allocator unless the operator set MALLOC_* themselves, and freezes its startup heap."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CHECK = "from bot.memory import tune_allocator; print(tune_allocator())"


def _run(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


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
