"""bench.sender: the process that delivers a burst's Slack events and times each answer."""

from __future__ import annotations

import math

from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.sender import Request, Sender


async def test_each_request_gets_its_own_status_and_time() -> None:
    seen: list[tuple[str, bytes, str]] = []

    async def events(request: web.Request) -> web.Response:
        seen.append((request.path, await request.read(), request.headers["X-Mark"]))
        return web.Response(status=200 if request.headers["X-Mark"] != "bad" else 401)

    async def hang_up(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    app = web.Application()
    app.router.add_post("/slack/events", events)
    app.router.add_post("/gone", hang_up)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("/slack/events"))
        requests = [Request(url, {"X-Mark": str(i)}, f'{{"n": {i}}}'.encode()) for i in range(5)]
        requests.append(Request(url, {"X-Mark": "bad"}, b"{}"))
        requests.append(Request(str(server.make_url("/gone")), {"X-Mark": "-"}, b""))
        async with Sender(requests) as sender:
            answers = await sender.fire()

    assert [a.status for a in answers] == [200] * 5 + [401, 0]
    assert all(0 < a.elapsed < 5 for a in answers[:6]) and math.isinf(answers[6].elapsed)
    assert sorted(seen) == sorted(
        [("/slack/events", f'{{"n": {i}}}'.encode(), str(i)) for i in range(5)] + [("/slack/events", b"{}", "bad")]
    )
    assert sender.cpu > 0
