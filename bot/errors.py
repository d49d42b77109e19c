"""Refusals that reach the user as they are: bad input, unsupported options, unknown models."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; `user_message` is shown to them, nothing is charged."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message
