"""SIGKILL a busy bot, restart it: no open reservation, no half-written turn, a sound database, every thread works."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

from tests.adapters.slack.conftest import free_port
from tests.fakes.gemini import FakeGemini
from tests.fakes.slack import CHANNEL, HUMAN, FakeSlack
from tests.replicas.conftest import Replica

THREADS = 8


def bot_env(fake_slack: FakeSlack, fake_gemini: FakeGemini, db: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BANANABOT_", "GEMINI_", "DISCORD_", "SLACK_"))}
    return {
        **base,
        "GEMINI_API_KEY": fake_gemini.api_key,
        "GEMINI_BASE_URL": fake_gemini.base_url,
        "SLACK_BOT_TOKEN": fake_slack.bot_token,
        "SLACK_SIGNING_SECRET": fake_slack.signing_secret,
        "SLACK_API_URL": fake_slack.api_url,
        "BANANABOT_SLACK_FILE_HOSTS": urlsplit(fake_slack.base_url).netloc,
        "BANANABOT_DATABASE_URL": f"sqlite:///{db}",
        "BANANABOT_HTTP_PORT": str(free_port()),
        "BANANABOT_USER_MAX_IN_FLIGHT": "100",
    }


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def test_sigkill_with_turns_in_flight_then_restart(
    fake_slack: FakeSlack, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    db = tmp_path / "crash.db"
    bot = Replica("crash", bot_env(fake_slack, fake_gemini, db), tmp_path)
    await bot.start()
    roots = []
    for i in range(THREADS):
        payload = fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> bird number {i}")
        roots.append(payload["event"]["ts"])
        await fake_slack.deliver_http(bot.events_url, payload)
    await fake_slack.wait_until(lambda: len(fake_slack.uploads()) >= THREADS, timeout=60)

    fake_gemini.latency = 60  # every next turn is in flight when the process dies
    for root in roots:
        await fake_slack.deliver_http(bot.events_url, fake_slack.message(HUMAN, CHANNEL, "add a hat", thread_ts=root))
    await fake_slack.wait_until(lambda: len(fake_gemini.requests) >= 2 * THREADS, timeout=60)
    await bot.kill()

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert count(db, "SELECT COUNT(*) FROM reservations WHERE state = 'held'") == THREADS
    assert count(db, "SELECT COUNT(*) FROM turns WHERE status = 'pending'") == THREADS

    fake_gemini.latency = 0
    restarted = Replica("crash-restarted", {**bot.env, "BANANABOT_HTTP_PORT": str(free_port())}, tmp_path)
    await restarted.start()
    try:
        assert count(db, "SELECT COUNT(*) FROM reservations WHERE state = 'held'") == 0  # refunded at start
        assert count(db, "SELECT COUNT(*) FROM turns WHERE status = 'pending'") == 0  # no half-written turn
        assert (
            count(
                db,
                "SELECT COALESCE(SUM(credits), 0) FROM usage_counters WHERE scope LIKE 'user:%'"
                " AND length(period) = 10",
            )
            == THREADS
        )  # only the delivered images are paid for
        for root in roots:
            await fake_slack.deliver_http(
                restarted.events_url, fake_slack.message(HUMAN, CHANNEL, "paint it blue", thread_ts=root)
            )
        await fake_slack.wait_until(lambda: len(fake_slack.uploads()) >= 2 * THREADS, timeout=60)
        continued = [r for r in fake_gemini.requests[2 * THREADS :] if r.status == 200]
        assert len(continued) == THREADS and all(len(r.body["contents"]) == 3 for r in continued)
    finally:
        await restarted.stop()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    await asyncio.sleep(0)
