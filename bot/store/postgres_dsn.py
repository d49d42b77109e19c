"""Postgres connection URLs: checked before use and shown only with the password masked."""

from __future__ import annotations

from urllib.parse import urlsplit


def redact(dsn: str) -> str:
    """The DSN with its password (in the user info or a `password=` query parameter) replaced by ***."""
    try:
        parts = urlsplit(dsn)
        parts.port  # noqa: B018 - validates the netloc, so .password below cannot raise
    except ValueError:
        return "postgresql://***"  # too malformed to tell the password apart: show nothing
    netloc = parts.netloc
    if parts.password is not None:
        user_info, _, host = netloc.rpartition("@")
        netloc = f"{user_info.partition(':')[0]}:***@{host}"
    query = "&".join(
        "password=***" if item.partition("=")[0] == "password" else item for item in parts.query.split("&")
    )
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def check_dsn(dsn: str) -> str:
    """The DSN unchanged, or ValueError (password masked) when its host part cannot be parsed."""
    try:
        urlsplit(dsn).port  # noqa: B018 - raises ValueError on a malformed port or IPv6 host
    except ValueError:
        raise ValueError(f"malformed Postgres URL {redact(dsn)!r}: use postgresql://user@host:5432/database") from None
    return dsn
