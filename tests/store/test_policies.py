from datetime import UTC, datetime, timedelta

from bot.store import Limits, Refusal, Standing, Store, Usage, UserPolicy
from tests.store import NOW, USER, held, hold

DAILY_5 = Limits(daily_credits=5, monthly_credits=None)


async def test_policy_defaults_then_upserts(store: Store) -> None:
    assert await store.get_policy(USER) == UserPolicy(USER)
    await store.set_policy(UserPolicy(USER, daily_credits=50, monthly_credits=None, exempt=True))
    assert await store.get_policy(USER) == UserPolicy(USER, 50, None, exempt=True, blocked=False)
    await store.set_policy(UserPolicy(USER, daily_credits=None, monthly_credits=7, blocked=True))
    assert await store.get_policy(USER) == UserPolicy(USER, None, 7, exempt=False, blocked=True)
    assert await store.get_policy("discord:other") == UserPolicy("discord:other")


async def test_grants_sum_per_day_and_month(store: Store) -> None:
    assert await store.granted(USER, now=NOW) == (0, 0)
    await store.grant(USER, credits=2, now=NOW, by="admin:1")
    await store.grant(USER, credits=1, now=NOW + timedelta(hours=1), by="admin:2")
    await store.grant(USER, credits=3, now=NOW - timedelta(days=1), by="admin:1")
    await store.grant(USER, credits=5, now=datetime(2026, 10, 31, 23, tzinfo=UTC), by="admin:1")
    await store.grant("discord:other", credits=100, now=NOW, by="admin:1")
    assert await store.granted(USER, now=NOW) == (3, 6)
    assert await store.granted(USER, now=datetime(2026, 10, 31, tzinfo=UTC)) == (5, 5)
    assert await store.granted(USER, now=datetime(2026, 12, 1, tzinfo=UTC)) == (0, 0)


async def test_reset_usage_zeroes_credits_and_keeps_spend(store: Store) -> None:
    earlier = NOW - timedelta(days=2)
    done = await held(store, DAILY_5, credits=2, usd=0.25, now=earlier)
    assert await store.commit(done.id, usd=0.25, now=earlier)
    for _ in range(3):
        committed = await held(store, DAILY_5, usd=0.25)
        assert await store.commit(committed.id, usd=0.25, now=NOW)
    in_flight = await held(store, DAILY_5, usd=0.25)
    assert await store.usage(USER, now=NOW) == Usage(4, 6, 1.25)

    await store.reset_usage(USER, now=NOW)
    assert await store.usage(USER, now=NOW) == Usage(0, 0, 1.25)
    assert await store.usage(USER, now=earlier) == Usage(2, 0, 1.25)  # other days keep their history
    assert await store.spend(scope="global", period="2026-11-21") == 1.0

    # Refunding what was held before the reset does not turn into bonus credits.
    assert await store.refund(in_flight.id, usd=0.0, now=NOW)
    assert await store.usage(USER, now=NOW) == Usage(0, 0, 1.0)
    for _ in range(5):
        await held(store, DAILY_5)
    assert (await store.usage(USER, now=NOW)).day_credits == 5


async def test_standing_is_policy_grants_and_usage_read_together(store: Store) -> None:
    assert await store.standing(USER, now=NOW, with_usage=False) == Standing(UserPolicy(USER), 0, 0)
    await store.set_policy(UserPolicy(USER, daily_credits=9, monthly_credits=None, exempt=False, blocked=True))
    await store.grant(USER, credits=2, now=NOW, by="admin:1")
    await store.grant(USER, credits=4, now=NOW - timedelta(days=1), by="admin:1")
    spent = await held(store, DAILY_5, credits=3, usd=0.5)
    assert await store.commit(spent.id, usd=0.5, now=NOW)
    standing = await store.standing(USER, now=NOW, with_usage=True)
    assert standing == Standing(await store.get_policy(USER), 2, 6, Usage(3, 3, 0.5))
    assert standing.policy.blocked and standing.policy.daily_credits == 9
    assert await store.standing("discord:other", now=NOW, with_usage=True) == Standing(
        UserPolicy("discord:other"), 0, 0, Usage(0, 0, 0.0)
    )


async def test_a_limit_rule_is_given_the_users_policy_and_grants_and_may_refuse(store: Store) -> None:
    seen: list[Standing] = []

    def rule(standing: Standing) -> Limits | Refusal:
        seen.append(standing)
        if standing.policy.blocked:
            return Refusal("blocked", 0, 0)
        return Limits(standing.policy.daily_credits or 0, None)

    await store.set_policy(UserPolicy(USER, daily_credits=1, monthly_credits=None))
    first = await held(store, rule)
    assert await hold(store, rule) == Refusal("daily", 1, 1)  # the rule's limits are the ones checked
    await store.grant(USER, credits=2, now=NOW, by="admin:1")
    assert seen[-1] == Standing(UserPolicy(USER, 1, None), 0, 0)
    await store.set_policy(UserPolicy(USER, daily_credits=1, monthly_credits=None, blocked=True))
    assert await hold(store, rule) == Refusal("blocked", 0, 0)
    assert seen[-1] == Standing(UserPolicy(USER, 1, None, blocked=True), 2, 2)  # grants of today and this month
    assert await store.usage(USER, now=NOW) == Usage(1, 1, 0.0)  # a refusal holds nothing
    assert await store.commit(first.id, usd=0.0, now=NOW)


async def test_a_reset_forgives_what_is_held_so_refunding_it_later_takes_nothing_reserved_after(store: Store) -> None:
    for _ in range(3):
        assert await store.commit((await held(store, DAILY_5)).id, usd=0.0, now=NOW)
    before = await held(store, DAILY_5)  # a turn in flight when an admin resets the user
    await store.reset_usage(USER, now=NOW)
    after = await held(store, DAILY_5)  # a turn started after the reset
    assert (await store.usage(USER, now=NOW)).day_credits == 1
    assert await store.refund(before.id, usd=0.0, now=NOW)  # the earlier turn fails
    assert await store.commit(after.id, usd=0.0, now=NOW)  # the later one is delivered
    assert (await store.usage(USER, now=NOW)).day_credits == 1  # it stays counted
    forgiven = await held(store, DAILY_5)
    await store.reset_usage(USER, now=NOW)
    assert await store.commit(forgiven.id, usd=0.0, now=NOW)  # delivered after a reset: the reset forgave it
    assert (await store.usage(USER, now=NOW)).day_credits == 0
