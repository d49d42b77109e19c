"""Persistence: the `Store` contract, its row types, and `open_store` to pick a backend from a URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.store.base import (
    LimitRule,
    Limits,
    Refusal,
    RefusalScope,
    Reservation,
    SessionRow,
    Standing,
    Store,
    TurnResult,
    TurnRow,
    TurnStatus,
    Usage,
    UserPolicy,
    period_day,
    period_month,
)
from bot.store.postgres import PostgresStore
from bot.store.postgres_dsn import check_dsn
from bot.store.sqlite import SqliteStore

__all__ = [
    "LimitRule",
    "Limits",
    "PostgresStore",
    "Refusal",
    "RefusalScope",
    "Reservation",
    "SessionRow",
    "SqliteStore",
    "Standing",
    "Store",
    "TurnResult",
    "TurnRow",
    "TurnStatus",
    "Usage",
    "UserPolicy",
    "open_store",
    "period_day",
    "period_month",
]


def open_store(url: str) -> Store:
    """An unopened store for `url`; call `await store.open()` before use.

    Accepts `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `sqlite:///:memory:`, a plain path, and
    `postgresql://user:password@host:5432/database` (also `postgres://`, `postgresql+asyncpg://`).

    Raises:
        ValueError: The URL names a backend that is not available or is malformed.
    """
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        if not url:
            raise ValueError("store URL is empty: use sqlite:///path/to/bananabot.db or a file path")
        return SqliteStore(Path(url))
    scheme = scheme.lower()
    if scheme in {"postgres", "postgresql"} or scheme.startswith("postgresql+"):
        # A SQLAlchemy "+driver" suffix is accepted (asyncpg anyway); `?schema=NAME` keeps the tables in a schema.
        dsn, schema = _pop_schema(f"postgresql://{rest}")
        return PostgresStore(check_dsn(dsn), schema=schema)
    if scheme != "sqlite":
        raise ValueError(
            f"unsupported store URL scheme {scheme!r}: use sqlite:///path/to/bananabot.db, a file path, "
            "or postgresql://user:password@host/db"
        )
    # sqlite:///rel.db → "/rel.db" after the scheme; sqlite:////abs.db → "//abs.db". A host part is not allowed.
    if not rest.startswith("/") or len(rest) < 2:
        raise ValueError(f"malformed SQLite URL {url!r}: use sqlite:///relative.db or sqlite:////absolute.db")
    path = rest[1:].split("?", 1)[0]
    return SqliteStore(path if path == ":memory:" else Path(path))


def _pop_schema(dsn: str) -> tuple[str, str | None]:
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), None)
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema
