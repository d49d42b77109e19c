"""Secrets as they go into HTTP headers (one line, nothing around it) and out of URLs shown to operators."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def one_line(secret: str) -> str:
    """`secret` without surrounding whitespace (a secret file's trailing newline).

    Raises:
        ValueError: a control character is left inside (it would break the header); the message never shows it.
    """
    value = secret.strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("contains a control character (a line break inside?); a secret must be one line")
    return value


def shown_url(url: str) -> str:
    """An endpoint URL fit for output: a password in its user info (a proxy's, a gateway's) replaced by ***."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the netloc, so .password below cannot raise
    except ValueError:
        return f"{url.partition(':')[0]}://***"  # too malformed to tell the password apart: show nothing
    if parts.password is None:
        return url
    user_info, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user_info.partition(':')[0]}:***@{host}"))
