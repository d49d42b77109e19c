"""`bananabot run` tunes glibc's allocator unless the operator set MALLOC_* themselves."""

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
