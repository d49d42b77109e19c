"""What the figures came from: the machine, and a probe of the two costs that set them apart between machines.

The bot moves megabytes per turn through freshly mapped memory and hands work to threads (store, parsing, hashing).
On some VMs both are several times dearer than on others while plain Python runs at the same speed, so the
probe's figures travel with the table: a run can be compared with another machine's only next to them.
"""

from __future__ import annotations

import asyncio
import os
import platform
import time
from pathlib import Path

FRESH_BYTES = 256 << 20
HANDOFFS = 500


def describe() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def probe() -> str:
    """Median round trip of a no-op through asyncio's default executor, and the rate of filling new memory."""
    handoff = asyncio.run(_handoff())
    started = time.perf_counter()
    block = b"\x01" * FRESH_BYTES  # new pages: the kernel maps and zeroes each, then the fill writes it
    fresh = FRESH_BYTES / (time.perf_counter() - started)
    del block
    return f"thread hand-off round trip p50 {handoff * 1e6:.0f} µs; new memory filled at {fresh / 1e9:.2f} GB/s"


async def _handoff() -> float:
    loop = asyncio.get_running_loop()
    samples = []
    for _ in range(HANDOFFS):
        started = time.perf_counter()
        await loop.run_in_executor(None, int)
        samples.append(time.perf_counter() - started)
    return sorted(samples)[len(samples) // 2]
