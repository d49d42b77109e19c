"""The reliability suite reuses the adapters' harnesses."""

from tests.adapters.discord.conftest import fake_discord_raw, make_discord_bot, world  # noqa: F401
from tests.adapters.slack.conftest import make_slack_bot  # noqa: F401
from tests.core.conftest import clock, make_services  # noqa: F401
