"""/admin — grant credits, set limits, block, unblock, exempt or reset a user's usage (admins only)."""

from __future__ import annotations

from dataclasses import replace
from typing import get_args

from bot.command import Command, Option
from bot.errors import UserError
from bot.models import Invocation, Platform, Reply
from bot.services import Services

ACTIONS = ("grant", "set", "block", "unblock", "exempt", "unexempt", "reset", "show")


async def apply(services: Services, *, action: str, user_key: str, amount: str | None, by: str) -> str:
    """Do one admin action; shared by the chat command and `bananabot quota ...`."""
    platform, _, user_id = user_key.partition(":")
    if platform not in get_args(Platform) or not user_id:
        raise UserError(
            f"“{user_key}” isn't a user key: write platform:id, like discord:123456789012345678 or slack:U0123ABCD."
        )
    store = services.store
    now = services.now()
    policy = await store.get_policy(user_key)
    if action in ("grant", "set"):
        if amount is None or not amount.strip().lstrip("-").isdigit():
            raise UserError(f"{action} needs a whole number of credits.")
        number = int(amount)
        if action == "grant":
            if number <= 0:
                raise UserError("Grant a positive number of credits.")
            await store.grant(user_key, credits=number, now=now, by=by)
            return f"Granted {number} extra credits to {user_key} for today and this month."
        if number < 0:
            raise UserError("A daily limit can't be negative.")
        await store.set_policy(replace(policy, daily_credits=number))
        return f"{user_key} now has a daily limit of {number} credits."
    if action in ("block", "unblock"):
        await store.set_policy(replace(policy, blocked=action == "block"))
        return f"{user_key} is {'blocked' if action == 'block' else 'unblocked'}."
    if action in ("exempt", "unexempt"):
        await store.set_policy(replace(policy, exempt=action == "exempt"))
        return f"{user_key} is {'exempt from' if action == 'exempt' else 'subject to'} credit limits."
    if action == "reset":
        await store.reset_usage(user_key, now=now)
        return f"{user_key}'s usage for today and this month is reset."
    if action == "show":
        usage = await store.usage(user_key, now=now)
        flags = [name for name, on in (("blocked", policy.blocked), ("exempt", policy.exempt)) if on]
        daily = policy.daily_credits if policy.daily_credits is not None else services.settings.user_daily_credits
        return (
            f"{user_key}: {usage.day_credits} credits used today, {usage.month_credits} this month "
            f"(${usage.month_usd:.2f}); daily limit {daily}{'; ' + ', '.join(flags) if flags else ''}."
        )
    raise UserError(f"Unknown admin action “{action}”; use one of {', '.join(ACTIONS)}.")


async def run(inv: Invocation, services: Services) -> Reply:
    action = (inv.option("action") or "").lower()
    user_key = inv.option("user")
    if not user_key:
        raise UserError("Name the user, e.g. /bananabot-admin grant @someone 5.")
    text = await apply(services, action=action, user_key=user_key, amount=inv.option("amount"), by=inv.user.key)
    return Reply(text=text, ephemeral=True)


COMMAND = Command(
    name="admin",
    description="Manage users' image credits (admins only).",
    handler=run,
    admin=True,
    options=(
        Option("action", "What to do", choices=ACTIONS, required=True),
        Option("user", "The user", required=True),
        Option("amount", "Credits (grant) or daily limit (set)"),
    ),
)
