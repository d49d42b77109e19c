"""httpx connection pools sharded so a few hundred requests in flight don't cost O(n²) bookkeeping.

httpcore 1.0's pool re-scans every connection for every queued request on each assignment pass
(encode/httpx#3215, encode/httpcore#1035): with 200 model calls in flight that bookkeeping took most of the
bot's CPU. Several small pools, each request sent on the least busy one, keep each pass short. (Slack's file
downloads used these too; they moved to aiohttp, which reads bodies for a quarter of the CPU.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

CONNECTIONS_PER_SHARD = 16


class ShardedPool:
    """`shards` httpx clients sharing `max_connections` between them; `lease()` picks the least busy."""

    def __init__(
        self, *, max_connections: int, headers: dict[str, str] | None = None, timeout: httpx.Timeout | None = None
    ) -> None:
        count = max(1, -(-max_connections // CONNECTIONS_PER_SHARD))
        per_shard = -(-max_connections // count)
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        tls = httpx.create_ssl_context()  # one for all: each loads the CA bundle, ~0.7 MB apiece
        timeout = timeout or httpx.Timeout(5.0)  # httpx's default
        self._clients = [
            httpx.AsyncClient(limits=limits, headers=headers, verify=tls, timeout=timeout) for _ in range(count)
        ]
        self._busy = [0] * count

    @property
    def shards(self) -> int:
        return len(self._clients)

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[httpx.AsyncClient]:
        index = min(range(len(self._busy)), key=self._busy.__getitem__)
        self._busy[index] += 1
        try:
            yield self._clients[index]
        finally:
            self._busy[index] -= 1

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
