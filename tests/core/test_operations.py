"""Operations: /healthz, /metrics, JSON logs with turn ids and no secrets, retention."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import aiohttp

from bot.logs import JsonFormatter, RedactSecrets, TurnContext
from bot.maintenance import purge_old
from tests.adapters.slack.conftest import free_port
from tests.core.conftest import ALICE, NOON, THREAD
from tests.fakes.gemini import Fault


async def test_healthz_and_metrics(run, services, fake_gemini) -> None:
    port = free_port()
    services.adapter_status["discord"] = "connected"
    await services.web.start(port, host="127.0.0.1")
    await run("imagine", "a cat")
    fake_gemini.enqueue(Fault.IMAGE_SAFETY)
    await run("imagine", "a scary cat")

    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200
            assert (await response.json()) == {"status": "ok", "database": True, "adapters": {"discord": "connected"}}
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
        assert 'bananabot_turns_total{outcome="ImagesDelivered",platform="console"} 1.0' in text
        assert 'bananabot_turns_total{outcome="Filtered",platform="console"} 1.0' in text
        assert 'bananabot_credits_total{kind="committed"} 1.0' in text
        assert 'bananabot_credits_total{kind="refunded"} 1.0' in text
        assert "bananabot_model_latency_seconds_count" in text and "bananabot_queue_depth 0.0" in text
        cost = next(line for line in text.splitlines() if line.startswith("bananabot_cost_usd_total "))
        assert float(cost.split()[1]) > 0

        services.adapter_status["discord"] = "disconnected"
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 503
        services.adapter_status["discord"] = "connected"
        await services.store.close()  # the database goes away
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 503 and (await response.json())["database"] is False
    await services.store.open()


async def test_json_logs_carry_the_turn_and_session_and_no_secret(run, services, fake_gemini) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(TurnContext())
    handler.addFilter(RedactSecrets((fake_gemini.api_key + "-long",)))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        fake_gemini.enqueue(Fault.OVERLOADED)
        await run("imagine", "a dog")
        probe = logging.getLogger("bananabot.test.probe")
        probe.propagate = False  # only the handler under test sees the raw secret
        probe.addHandler(handler)
        probe.info("the key is %s", fake_gemini.api_key + "-long")
        probe.removeHandler(handler)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    retry = next(line for line in lines if "retrying" in line["message"])
    assert retry["session_key"] == THREAD.key and len(retry["turn_id"]) == 32
    assert "-long" not in stream.getvalue() and "[redacted]" in stream.getvalue()


async def test_retention_purges_old_sessions(make_services, run, clock) -> None:
    services = await make_services(retention_days=30)
    try:
        await run("imagine", "an old cat", on=services)
        clock.now = NOON + timedelta(days=31)
        assert await purge_old(services) > 0
        assert await services.store.active_session(THREAD.key) is None
        assert (await services.store.usage(ALICE.key, now=NOON)).day_credits == 1  # the ledger stays
    finally:
        await services.close()


async def test_a_lease_whose_release_failed_is_released_by_maintenance(services) -> None:
    from bot.maintenance import heartbeat

    owner = services.ledger.owner
    assert await services.store.try_lease(THREAD.key, owner=owner, now=NOON, ttl=timedelta(minutes=5))
    services.unreleased_leases.add(THREAD.key)  # as the dispatcher records a failed release
    await heartbeat(services)
    assert services.unreleased_leases == set()
    assert await services.store.try_lease(THREAD.key, owner="another-replica", now=NOON, ttl=timedelta(minutes=5))
