"""Run the fake by hand: `python -m tests.fakes.gemini --port 8089 [--latency 2] [--key K]`, until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from .server import FakeGemini


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
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
