"""Run the fake by hand: `python -m tests.fakes.slack --port 8090`, until Ctrl-C; prints the settings to use."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from .server import FakeSlack


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeSlack(bot_token=args.bot_token, app_token=args.app_token, signing_secret=args.signing_secret)
    await fake.start(host=args.host, port=args.port)
    sys.stdout.write(
        f"SLACK_API_URL={fake.api_url}\nSLACK_BOT_TOKEN={fake.bot_token}\n"
        f"SLACK_APP_TOKEN={fake.app_token}\nSLACK_SIGNING_SECRET={fake.signing_secret}\n"
    )
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.slack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--bot-token", default="xoxb-1-fake-bot-token")
    parser.add_argument("--app-token", default="xapp-1-A0APP-1-fake-app-token")
    parser.add_argument("--signing-secret", default="fake-signing-secret")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
