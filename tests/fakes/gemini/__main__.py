"""Run the fake by hand: `python -m tests.fakes.gemini --port 8089 [--latency 2] [--key K]`, until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from .server import FakeGemini


def prefault(mib: int) -> None:
    """Touch `mib` MiB of heap in 2 MiB blocks and free it: with glibc told to keep freed memory (high
    MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_, one arena), a later burst reuses these pages instead of
    faulting fresh ones in for every 1-3 MB body."""
    blocks = [bytearray(2 << 20) for _ in range(mib // 2)]
    for block in blocks:
        block[::4096] = b"\x01" * len(range(0, len(block), 4096))
    del blocks


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeGemini(
        api_key=args.key,
        latency=args.latency,
        enforce_signatures=not args.no_signatures,
        noise=args.noise,
        bench=args.bench,
    )
    await fake.start(host=args.host, port=args.port)
    sys.stdout.write(f"{fake.base_url}\n")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.gemini", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each generate answer")
    parser.add_argument("--key", default="test-key", help="the API key to accept")
    parser.add_argument("--no-signatures", action="store_true", help="skip thought-signature checks (like Vertex)")
    parser.add_argument("--noise", action="store_true", help="random-noise images (large PNGs)")
    parser.add_argument("--bench", action="store_true", help="benchmark mode: pooled photo-like PNGs, cheap to serve")
    parser.add_argument("--prefault", type=int, default=0, metavar="MIB", help="touch and free this much heap first")
    args = parser.parse_args()
    prefault(args.prefault)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
