"""Run the fake by hand: `python -m tests.fakes.discord --port 8090 [--token T]`, until Ctrl-C.

It starts with one guild ("Test Guild", channel #general, user alice) and prints the two URLs to give the bot
(DISCORD_API_URL, DISCORD_GATEWAY_URL) and the ids.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from .server import FakeDiscord


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeDiscord(token=args.token, heartbeat_interval_ms=args.heartbeat_ms)
    await fake.start(host=args.host, port=args.port)
    guild_id = fake.add_guild("Test Guild")
    channel_id = fake.add_channel(guild_id, "general")
    alice = fake.add_user("alice")
    fake.add_member(guild_id, alice)
    sys.stdout.write(
        f"DISCORD_API_URL={fake.api_url}\nDISCORD_GATEWAY_URL={fake.gateway_url}\nDISCORD_TOKEN={fake.token}\n"
        f"# guild {guild_id}, #general {channel_id}, alice {alice}, application {fake.application_id}\n"
    )
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.discord", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default="fake-bot-token", help="the bot token to accept")
    parser.add_argument("--heartbeat-ms", type=int, default=41250, help="HELLO heartbeat_interval")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
