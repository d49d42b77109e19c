import asyncio
from datetime import UTC, datetime, timedelta, timezone

from bot.store import Limits, Refusal, Reservation, Store, Usage
from tests.store import NOW, TTL, USER, WORKSPACE, held, hold
from tests.store.conftest import StoreFactory

DAILY_3 = Limits(daily_credits=3, monthly_credits=None)
UNLIMITED = Limits(daily_credits=None, monthly_credits=None)
TOKYO = timezone(timedelta(hours=9))


async def counters(store: Store, *, now: datetime = NOW) -> tuple[Usage, float, float, float]:
    day = now.strftime("%Y-%m-%d")
    return (
        await store.usage(USER, now=now),
        await store.spend(scope=f"user:{USER}", period=now.strftime("%Y-%m")),
        await store.spend(scope=f"workspace:{WORKSPACE}", period=day),
        await store.spend(scope="global", period=day),
    )


async def test_reservation_records_its_periods_and_expiry(store: Store) -> None:
    reservation = await held(store, DAILY_3, credits=2, usd=0.25)
    assert (reservation.user_key, reservation.workspace_id) == (USER, WORKSPACE)
    assert (reservation.credits, reservation.usd) == (2, 0.25)
    assert (reservation.day, reservation.month, reservation.expires_at) == ("2026-11-21", "2026-11", NOW + TTL)
    assert await counters(store) == (Usage(2, 2, 0.25), 0.25, 0.25, 0.25)


async def test_daily_limit_refuses_the_fourth(store: Store) -> None:
    for _ in range(3):
        await held(store, DAILY_3)
    assert await hold(store, DAILY_3) == Refusal(scope="daily", limit=3, used=3)
    assert (await store.usage(USER, now=NOW)).day_credits == 3
    # Another user and a bigger request are judged on their own counters.
    await held(store, DAILY_3, user_key="discord:other", credits=3)
    assert await hold(store, DAILY_3, user_key="discord:third", credits=4) == Refusal("daily", 3, 0)


async def test_refund_frees_a_credit_and_commit_keeps_it(store: Store) -> None:
    first = await held(store, DAILY_3)
    second = await held(store, DAILY_3)
    await held(store, DAILY_3)
    assert await store.refund(first.id, usd=0.0, now=NOW)
    assert await store.commit(second.id, usd=0.0, now=NOW)
    assert (await store.usage(USER, now=NOW)).day_credits == 2
    await held(store, DAILY_3)
    assert await hold(store, DAILY_3) == Refusal("daily", 3, 3)


async def test_settling_twice_is_refused_and_changes_nothing(store: Store) -> None:
    refunded = await held(store, DAILY_3, usd=0.25)
    committed = await held(store, DAILY_3, usd=0.25)
    assert await store.refund(refunded.id, usd=0.0, now=NOW)
    assert await store.commit(committed.id, usd=0.5, now=NOW)
    before = await counters(store)
    assert before == (Usage(1, 1, 0.5), 0.5, 0.5, 0.5)
    assert not await store.commit(refunded.id, usd=0.25, now=NOW)
    assert not await store.refund(refunded.id, usd=0.25, now=NOW)
    assert not await store.refund(committed.id, usd=0.0, now=NOW)
    assert not await store.commit(committed.id, usd=1.0, now=NOW)
    assert not await store.commit("no-such-reservation", usd=1.0, now=NOW)
    assert await counters(store) == before


async def test_concurrent_reservations_never_exceed_the_limit(store: Store) -> None:
    limits = Limits(daily_credits=10, monthly_credits=None)
    results = await asyncio.gather(*(hold(store, limits, usd=0.25) for _ in range(64)))
    granted = [r for r in results if isinstance(r, Reservation)]
    assert len(granted) == 10
    assert all(r == Refusal("daily", 10, 10) for r in results if isinstance(r, Refusal))
    assert all(await asyncio.gather(*(store.commit(r.id, usd=0.25, now=NOW) for r in granted)))
    assert await store.usage(USER, now=NOW) == Usage(10, 10, 2.5)


async def test_two_processes_never_exceed_the_limit(store: Store, new_store: StoreFactory) -> None:
    other = new_store()
    await other.open()
    limits = Limits(daily_credits=50, monthly_credits=None)
    results = await asyncio.gather(*(hold(s, limits, owner=f"p{i}") for i, s in enumerate([store, other] * 100)))
    assert sum(isinstance(r, Reservation) for r in results) == 50
    assert (await store.usage(USER, now=NOW)).day_credits == 50
    assert (await other.usage(USER, now=NOW)).day_credits == 50


async def test_monthly_limit_spans_days(store: Store) -> None:
    limits = Limits(daily_credits=2, monthly_credits=5)
    for day in range(1, 6):
        await held(store, limits, now=datetime(2026, 11, day, 9, tzinfo=UTC))
    sixth = datetime(2026, 11, 6, 9, tzinfo=UTC)
    assert await hold(store, limits, now=sixth) == Refusal("monthly", 5, 5)
    # Daily is checked first when both are exceeded.
    await held(store, Limits(2, None), now=sixth)
    await held(store, Limits(2, None), now=sixth)
    assert await hold(store, limits, now=sixth) == Refusal("daily", 2, 2)
    assert await store.usage(USER, now=sixth) == Usage(2, 7, 0.0)
    assert await store.usage(USER, now=datetime(2026, 12, 1, tzinfo=UTC)) == Usage(0, 0, 0.0)


async def test_user_monthly_budget(store: Store) -> None:
    limits = Limits(None, None, user_monthly_usd=1.0)
    await held(store, limits, usd=0.5, now=datetime(2026, 11, 1, tzinfo=UTC))
    await held(store, limits, usd=0.25)
    assert await hold(store, limits, usd=0.5) == Refusal("user_budget", 1.0, 0.75)
    await held(store, limits, usd=0.25)
    assert await store.usage(USER, now=NOW) == Usage(2, 3, 1.0)
    await held(store, limits, user_key="discord:other", usd=0.5)


async def test_workspace_daily_budget(store: Store) -> None:
    limits = Limits(None, None, user_monthly_usd=5.0, workspace_daily_usd=1.0, global_daily_usd=5.0)
    await held(store, limits, usd=0.5)
    await held(store, limits, user_key="discord:other", usd=0.25)
    assert await hold(store, limits, user_key="discord:third", usd=0.5) == Refusal("workspace_budget", 1.0, 0.75)
    await held(store, limits, workspace_id="discord:guild-2", usd=0.5)
    tomorrow = NOW + timedelta(days=1)
    await held(store, limits, user_key="discord:third", usd=0.5, now=tomorrow)


async def test_global_daily_budget(store: Store) -> None:
    limits = Limits(None, None, user_monthly_usd=5.0, workspace_daily_usd=5.0, global_daily_usd=1.0)
    await held(store, limits, usd=0.5)
    await held(store, limits, user_key="discord:other", workspace_id="discord:guild-2", usd=0.25)
    refused = await hold(store, limits, user_key="slack:x", workspace_id="slack:T1", usd=0.5)
    assert refused == Refusal("global_budget", 1.0, 0.75)


async def test_commit_corrects_usd_to_the_actual_cost(store: Store) -> None:
    reservation = await held(store, DAILY_3, credits=2, usd=0.5)
    assert await store.commit(reservation.id, usd=0.125, now=NOW)
    assert await counters(store) == (Usage(2, 2, 0.125), 0.125, 0.125, 0.125)


async def test_refund_keeps_a_billed_cost_but_returns_credits(store: Store) -> None:
    reservation = await held(store, DAILY_3, credits=2, usd=0.5)
    assert await store.refund(reservation.id, usd=0.125, now=NOW)
    assert await counters(store) == (Usage(0, 0, 0.125), 0.125, 0.125, 0.125)


async def test_reclaim_refunds_expired_and_dead_owners_only(store: Store) -> None:
    expired = await held(store, DAILY_3, ttl=timedelta(minutes=1), usd=0.25)
    orphan = await held(store, DAILY_3, owner="dead-proc", ttl=timedelta(hours=1), usd=0.25)
    live = await held(store, DAILY_3, owner="live-proc", ttl=timedelta(hours=1), usd=0.25)
    later = NOW + timedelta(minutes=5)
    assert await store.reclaim(now=later, dead_owners=("dead-proc", "other-dead")) == 2
    assert await counters(store) == (Usage(1, 1, 0.25), 0.25, 0.25, 0.25)
    assert not await store.commit(expired.id, usd=0.25, now=later)
    assert not await store.refund(orphan.id, usd=0.0, now=later)
    assert await store.reclaim(now=later) == 0
    assert await store.commit(live.id, usd=0.25, now=later)
    assert await store.reclaim(now=NOW + timedelta(days=1), dead_owners=("live-proc",)) == 0


async def test_reclaim_at_exact_expiry(store: Store) -> None:
    await held(store, DAILY_3)
    assert await store.reclaim(now=NOW + TTL - timedelta(microseconds=1)) == 0
    assert await store.reclaim(now=NOW + TTL) == 1


async def test_killed_process_reservations_are_reclaimed_by_the_next(new_store: StoreFactory) -> None:
    killed = new_store()
    await killed.open()
    reservation = await held(killed, DAILY_3, owner="old-proc", ttl=timedelta(hours=1))
    await killed.close()

    successor = new_store()
    await successor.open()
    assert (await successor.usage(USER, now=NOW)).day_credits == 1
    assert await successor.reclaim(now=NOW, dead_owners=("old-proc",)) == 1
    assert (await successor.usage(USER, now=NOW)).day_credits == 0
    assert not await successor.commit(reservation.id, usd=0.0, now=NOW)


async def test_refund_after_midnight_returns_the_credit_to_the_day_it_was_taken(store: Store) -> None:
    before_midnight = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
    after_midnight = datetime(2026, 12, 1, 0, 1, tzinfo=UTC)
    old = await held(store, DAILY_3, now=before_midnight, usd=0.25)
    await held(store, DAILY_3, now=after_midnight, usd=0.25)
    assert await store.refund(old.id, usd=0.0, now=after_midnight)
    assert await store.usage(USER, now=before_midnight) == Usage(0, 0, 0.0)
    assert await store.usage(USER, now=after_midnight) == Usage(1, 1, 0.25)
    assert await store.spend(scope="global", period="2026-11-30") == 0.0
    assert await store.spend(scope="global", period="2026-12-01") == 0.25


async def test_non_utc_times_count_in_utc_days(store: Store) -> None:
    tokyo = datetime(2026, 11, 22, 8, tzinfo=UTC).astimezone(TOKYO)
    reservation = await held(store, UNLIMITED, now=tokyo)  # 17:00 on the 22nd in Tokyo, 08:00 UTC
    assert reservation.day == "2026-11-22"
    late = datetime(2026, 11, 21, 23, tzinfo=UTC).astimezone(TOKYO)
    assert (await held(store, UNLIMITED, now=late)).day == "2026-11-21"


async def test_spend_of_an_unknown_counter_is_zero(store: Store) -> None:
    assert await store.spend(scope="global", period="2026-11-21") == 0.0
