"""Slack's side of HTTP event delivery, in a process of its own, so a burst's acks time the bot and not the driver.

Sent from the driver's loop (aiohttp, one new connection per event), 200 events to a server that answers at once
came back at p50 55 ms / p99 67 ms: the driver's own time to sign, connect and send, while the ack target is
50 ms. Here every request is built and every connection opened before the clock starts; then all requests are
written in one go and each one's time runs from its write to the first byte of its answer (Slack's clock stops
when the answer starts), on a loop with nothing else to do.

Parent side: `Sender(requests)` as an async context manager (connections opened), then `await sender.fire()`.
Child side: `python -m bench.sender`, requests as one JSON document on stdin; it prints "ready", waits for "go",
and prints the results as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bench.procs import ROOT, stop


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    headers: dict[str, str]
    body: bytes

    def raw(self) -> bytes:
        """HTTP/1.1 on a kept-alive connection."""
        parts = urlsplit(self.url)
        head = [f"POST {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1", f"Host: {parts.netloc}"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        head.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass(frozen=True, slots=True)
class Answer:
    status: int  # 0: the connection closed or failed before a status line
    elapsed: float  # write -> first byte of the answer (inf when there was none)


class _Timed(asyncio.Protocol):
    """One request's connection: the instant its answer's first byte arrived, and its status line."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.sent = 0.0
        self.first_byte: float | None = None
        self.head = b""
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.first_byte is None:
            self.first_byte = time.monotonic()
        if not self.done.done():
            self.head += data
            if b"\r\n" in self.head:
                self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def answer(self) -> Answer:
        line = self.head.split(b"\r\n", 1)[0].split()
        status = int(line[1]) if len(line) >= 2 and line[1].isdigit() else 0
        elapsed = self.first_byte - self.sent if self.first_byte is not None and status else float("inf")
        return Answer(status, elapsed)


async def _child() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 28)  # the requests arrive as one line
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    wanted = [Request(r["url"], r["headers"], r["body"].encode()) for r in json.loads(await reader.readline())]
    raws = [r.raw() for r in wanted]
    conns: list[_Timed] = []
    for request in wanted:
        parts = urlsplit(request.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        _, protocol = await loop.create_connection(_Timed, parts.hostname, port)
        conns.append(protocol)
    print("ready", flush=True)
    await reader.readline()  # "go"
    cpu = time.process_time()
    for conn, raw in zip(conns, raws, strict=True):
        assert conn.transport is not None
        conn.sent = time.monotonic()
        conn.transport.write(raw)
    await asyncio.wait_for(asyncio.gather(*(c.done for c in conns)), timeout=60)
    answers = [c.answer() for c in conns]
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    out = {"answers": [[a.status, a.elapsed] for a in answers], "cpu": time.process_time() - cpu}
    print(json.dumps(out), flush=True)


class Sender:
    """The child process, with its connections open once entered; `fire` sends everything and times the acks."""

    def __init__(self, requests: list[Request]) -> None:
        self.requests = requests
        self.process: asyncio.subprocess.Process | None = None
        self.cpu = 0.0  # the child's CPU seconds while sending and reading

    async def __aenter__(self) -> Sender:
        pipe = asyncio.subprocess.PIPE
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.sender", cwd=ROOT, stdin=pipe, stdout=pipe, limit=1 << 24
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            doc = [{"url": r.url, "headers": r.headers, "body": r.body.decode()} for r in self.requests]
            self.process.stdin.write(json.dumps(doc).encode() + b"\n")
            await self.process.stdin.drain()
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout=60)
            if line.strip() != b"ready":
                raise RuntimeError(f"bench.sender did not start: {line!r}")
        except BaseException:
            await stop(self.process)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await stop(self.process)

    async def fire(self) -> list[Answer]:
        assert self.process is not None and self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(b"go\n")
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=90)
        if not line:
            raise RuntimeError("bench.sender stopped without its results (did every answer come within 60 s?)")
        out: dict[str, Any] = json.loads(line)
        self.cpu = float(out["cpu"])
        return [Answer(int(status), float(elapsed)) for status, elapsed in out["answers"]]


if __name__ == "__main__":
    asyncio.run(_child())
