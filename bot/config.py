"""Settings: the only reader of the environment and of an optional `.env` file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.catalog import DEFAULT_MODEL, SIZES, UnknownModelError, lookup
from bot.secret_text import one_line

CsvList = Annotated[tuple[str, ...], NoDecode]


def _env(name: str) -> AliasChoices:
    """An unprefixed ecosystem variable (GEMINI_API_KEY, DISCORD_TOKEN...) that also accepts the field name."""
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """Every option of the bot; the README's configuration table lists the same names."""

    model_config = SettingsConfigDict(
        env_prefix="BANANABOT_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        hide_input_in_errors=True,  # a refused secret is never echoed back
    )

    # Gemini
    gemini_api_key: SecretStr | None = Field(None, validation_alias=_env("GEMINI_API_KEY"))
    gemini_base_url: str = Field("https://generativelanguage.googleapis.com", validation_alias=_env("GEMINI_BASE_URL"))
    model: str = DEFAULT_MODEL
    gemini_max_attempts: int = Field(4, ge=1, le=10)
    gemini_deadline_seconds: float = Field(300.0, gt=0)
    gemini_timeout_seconds: float = Field(150.0, gt=0)
    gemini_backoff_seconds: float = Field(1.0, gt=0)
    max_concurrent_calls: int = Field(8, ge=1)

    # Storage
    database_url: str = "sqlite:///data/bananabot.db"
    retention_days: int = Field(0, ge=0)

    # Quotas (credits per image by size; USD budgets optional)
    user_daily_credits: int = Field(20, ge=0)
    user_monthly_credits: int = Field(300, ge=0)
    size_credits: str = "512=1,1K=1,2K=2,4K=4"
    user_monthly_usd: float | None = Field(None, ge=0)
    workspace_daily_usd: float | None = Field(None, ge=0)
    global_daily_usd: float | None = Field(None, ge=0)
    # A live process renews what it holds each maintenance round; what a killed one held (its credits, its
    # threads' leases) frees itself this long after its last round. Three rounds: a restart is back in minutes.
    reservation_ttl_seconds: int = Field(180, ge=5)
    maintenance_seconds: float = Field(60.0, gt=0)
    shutdown_grace_seconds: float = Field(20.0, ge=0)  # SIGTERM: turns in flight get this long; keep it under the
    # stop timeout of whatever runs the bot (docker stop: 10 s unless -t; the compose file gives 40 s)
    admins: CsvList = ()
    exempt_users: CsvList = ()

    # Sessions and turns
    history_turns: int = Field(3, ge=0, le=50)
    max_request_mb: float = Field(20.0, ge=1.0)
    user_max_in_flight: int = Field(2, ge=1)
    max_variations: int = Field(4, ge=1, le=8)

    # Images
    max_attachment_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(50_000_000, ge=10_000)
    reference_max_side: int = Field(2048, ge=256)
    max_concurrent_downloads: int = Field(8, ge=1)  # attachments fetched and checked at once (process-wide)
    output_dir: Path = Path("out")

    # Discord
    discord_token: SecretStr | None = Field(None, validation_alias=_env("DISCORD_TOKEN"))
    discord_api_url: str = Field("https://discord.com/api/v10", validation_alias=_env("DISCORD_API_URL"))
    discord_gateway_url: str | None = Field(None, validation_alias=_env("DISCORD_GATEWAY_URL"))
    discord_guild_ids: CsvList = Field((), validation_alias=_env("DISCORD_GUILD_IDS"))
    discord_shard_count: int | None = Field(None, ge=1, validation_alias=_env("DISCORD_SHARD_COUNT"))
    discord_shard_ids: CsvList = Field((), validation_alias=_env("DISCORD_SHARD_IDS"))
    discord_allowed_guilds: CsvList = ()
    discord_allowed_channels: CsvList = ()
    discord_allowed_roles: CsvList = ()
    discord_allow_dms: bool = False
    discord_message_content: bool = True

    # Slack
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(None, validation_alias=_env("SLACK_SIGNING_SECRET"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=_env("SLACK_API_URL"))
    slack_file_hosts: CsvList = ("files.slack.com",)
    slack_allowed_channels: CsvList = ()

    # Operations
    http_port: int | None = Field(None, ge=1, le=65535)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator(
        "admins",
        "exempt_users",
        "discord_guild_ids",
        "discord_shard_ids",
        "discord_allowed_guilds",
        "discord_allowed_channels",
        "discord_allowed_roles",
        "slack_file_hosts",
        "slack_allowed_channels",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator(
        "gemini_api_key", "discord_token", "slack_bot_token", "slack_app_token", "slack_signing_secret", mode="before"
    )
    @classmethod
    def _one_line_secret(cls, value: object) -> object:
        """A secret read from a file often ends in a newline: dropped. One with a control character inside would
        break the HTTP header it goes into: refused at start, without showing it."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return one_line(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _ttl_outlasts_the_heartbeat(self) -> Settings:
        if self.reservation_ttl_seconds < 2 * self.maintenance_seconds:
            raise ValueError(
                f"BANANABOT_RESERVATION_TTL_SECONDS ({self.reservation_ttl_seconds}) must be at least twice "
                f"BANANABOT_MAINTENANCE_SECONDS ({self.maintenance_seconds:g}): a live process renews its "
                "reservations once per maintenance round"
            )
        return self

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        try:
            return lookup(value).id
        except UnknownModelError as exc:  # a ValueError is what pydantic turns into a configuration error
            raise ValueError(exc.user_message) from None

    @field_validator("size_credits")
    @classmethod
    def _valid_size_credits(cls, value: str) -> str:
        _parse_size_credits(value)
        return value

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_mb * 1024 * 1024)

    @property
    def credits_by_size(self) -> dict[str, int]:
        return _parse_size_credits(self.size_credits)

    def credits_for(self, size: str) -> int:
        return self.credits_by_size.get(size, 1)


def _parse_size_credits(value: str) -> dict[str, int]:
    table = dict.fromkeys(SIZES, 1)
    for item in value.split(","):
        size, sep, number = item.partition("=")
        size = size.strip().upper() if size.strip().lower().endswith("k") else size.strip()
        if not sep or size not in SIZES or not number.strip().isdigit():
            raise ValueError(f"size_credits wants entries like 4K=4 (sizes {', '.join(SIZES)}); got {item!r}")
        table[size] = int(number)
    return table
