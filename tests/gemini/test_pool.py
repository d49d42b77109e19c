"""The sharded connection pool: requests spread over the shards and never open more connections than allowed."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.http_pool import CONNECTIONS_PER_SHARD, ShardedPool


class SlowServer:
    """Answers after a pause, so a burst needs many connections at once."""

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        await asyncio.sleep(0.2)
        return web.Response(text="ok")

    async def __aenter__(self) -> SlowServer:
        app = web.Application()
        app.router.add_get("/", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def test_shards_hold_the_connections_between_them() -> None:
    assert ShardedPool(max_connections=8, headers={}).shards == 1
    assert ShardedPool(max_connections=CONNECTIONS_PER_SHARD + 1, headers={}).shards == 2
    assert ShardedPool(max_connections=512, headers={}).shards == 512 // CONNECTIONS_PER_SHARD


async def test_each_request_goes_to_the_least_busy_shard() -> None:
    pool = ShardedPool(max_connections=3 * CONNECTIONS_PER_SHARD, headers={})
    try:
        async with pool.lease() as a, pool.lease() as b, pool.lease() as c:
            assert len({id(a), id(b), id(c)}) == 3
            async with pool.lease() as d:
                assert d in (a, b, c)
        async with pool.lease() as e:
            assert e is a  # all idle again: the first shard
    finally:
        await pool.aclose()


async def test_a_burst_never_opens_more_connections_than_allowed() -> None:
    peers: set[int] = set()  # client ports of every connection opened

    async with SlowServer() as server:
        pool = ShardedPool(max_connections=20, headers={})

        async def one() -> int:
            async with pool.lease() as http:
                response = await http.get(server.url, extensions={"trace": trace})
                return response.status_code

        async def trace(event: str, info: dict[str, object]) -> None:
            if event == "connection.connect_tcp.complete":
                stream = info["return_value"]
                peers.add(stream.get_extra_info("client_addr")[1])  # type: ignore[attr-defined]

        try:
            statuses = await asyncio.gather(*(one() for _ in range(60)))
        finally:
            await pool.aclose()
    assert statuses == [200] * 60
    assert 2 <= len(peers) <= 20  # connections are reused, never more than the limit
