"""A plain-HTTP forward proxy on 127.0.0.1, for proving that HTTP_PROXY / HTTPS_PROXY / NO_PROXY are honoured.

Each client connection is relayed byte for byte to the host and port named in its first request's absolute URL;
that first request's line and headers are recorded (later requests on a kept-alive connection go the same way).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class ProxiedRequest:
    method: str
    target: str  # absolute-form, as a client talking to a proxy sends it
    headers: dict[str, str]  # names lower-cased


class ForwardProxy:
    def __init__(self) -> None:
        self.requests: list[ProxiedRequest] = []
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, credentials: str = "") -> str:
        return f"http://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}"

    async def __aenter__(self) -> ForwardProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):  # ends each relay (cancelling it would log from asyncio's stream callback)
            writer.close()
        await asyncio.gather(*self._relays, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        self._writers.add(writer)
        up_writer: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            fields = (line.split(":", 1) for line in lines[1:] if ":" in line)
            headers = {name.strip().lower(): value.strip() for name, value in fields}
            self.requests.append(ProxiedRequest(method, target, headers))
            upstream = urlsplit(target)
            up_reader, up_writer = await asyncio.open_connection(upstream.hostname, upstream.port or 80)
            self._writers.add(up_writer)
            up_writer.write(head)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            self._relays.discard(task)
            self._writers.discard(writer)
            if up_writer is not None:
                up_writer.close()
                self._writers.discard(up_writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await writer.drain()
    finally:
        with contextlib.suppress(ConnectionError, RuntimeError):
            writer.close()
