"""Secrets as they go into HTTP headers: one line, nothing around it."""

from __future__ import annotations


def one_line(secret: str) -> str:
    """`secret` without surrounding whitespace (a secret file's trailing newline).

    Raises:
        ValueError: a control character is left inside (it would break the header); the message never shows it.
    """
    value = secret.strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("contains a control character (a line break inside?); a secret must be one line")
    return value
