"""A small attachment can declare tens of megapixels: what preparing it costs in memory, alone and several at once.

Each probe runs in a fresh interpreter, so its peak RSS is its own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SIDE = 7000  # 49 MP: under the default 50 MP limit, so it is accepted and decoded
DECODED = SIDE * SIDE * 4  # one RGBA copy: 196 MB

_PROBE = textwrap.dedent(
    """
    import asyncio, resource, struct, sys, zlib
    from bot.images import prepare_reference

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    side, count = int(sys.argv[1]), int(sys.argv[2])
    packer = zlib.compressobj(9)
    row = b"\\x00" + bytes(side * 4)  # RGBA, fully transparent
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    data = (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))

    async def main():
        prepare = lambda: prepare_reference(data, filename="z.png", max_bytes=20 << 20, max_pixels=50_000_000,
                                            max_side=2048)
        return await asyncio.gather(*(prepare() for _ in range(count)))

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    prepared = asyncio.run(main())
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    print(len(data), grown, prepared[0].width, prepared[0].mime)
    """
)


def _probe(count: int) -> tuple[int, int, int, str]:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    argv = [sys.executable, "-c", _PROBE, str(SIDE), str(count)]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True, timeout=120)
    upload, grown, width, mime = out.stdout.split()
    return int(upload), int(grown), int(width), mime


def test_a_large_png_costs_at_most_two_decoded_copies() -> None:
    # The decoded picture, then the premultiplied copy Pillow makes to resize RGBA (the alpha check and the mode
    # change no longer copy it again: 3.2 copies before).
    upload, grown, width, mime = _probe(1)
    assert upload < 256 * 1024  # a ~190 KB attachment
    assert (width, mime) == (2048, "image/png")  # shrunk, and its transparency kept
    assert grown < 2.5 * DECODED, f"grew the peak RSS by {grown >> 20} MiB"


def test_several_at_once_are_decoded_two_at_a_time() -> None:
    _, grown, _, _ = _probe(4)  # four download slots' worth arriving together (12.6 copies before)
    assert grown < 5.5 * DECODED, f"grew the peak RSS by {grown >> 20} MiB"
