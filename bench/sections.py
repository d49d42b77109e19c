"""Each section of the table: run it and add its rows (targets from issue 8)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench import ledger
from bench.burst import Burst, discord_burst, slack_burst
from bench.growth import SEED_WRITERS, grow_session, seed_sessions, serve_few
from bench.inproc import InProcessBot
from bench.overhead import CaseResult, Turns, run_cases
from bench.phases import PHASES, PhaseClock
from bench.procs import FakeGeminiProcess
from bench.replicas import slack_replicas
from bench.report import Report
from bench.stats import MiB, ms, pct
from bench.worlds import DiscordWorld
from bot.memory import tune_allocator

CORES = os.cpu_count() or 1
REAL_MEDIAN = 13.0  # seconds: a Gemini image turn's median on the real API (issue 8)


@dataclass(frozen=True, slots=True)
class Plan:
    bursts: tuple[int, ...]
    latency: float
    repeat: int
    ledger_seconds: float
    ledger_limit: int
    session_turns: int
    stored_sessions: int
    profile: Path | None = None
    timers: bool = True
    big: bool = True  # the 4K edit case (its warm-up renders a 17-megapixel picture in the fake)
    real_latency: float | None = REAL_MEDIAN  # also burst N=200 at the real API's median latency (None: skip)


FULL = Plan(bursts=(30, 200), latency=2.0, repeat=10, ledger_seconds=3.0, ledger_limit=2000, session_turns=20,
            stored_sessions=10_000)  # fmt: skip
QUICK = Plan(bursts=(10, 30), latency=2.0, repeat=3, ledger_seconds=1.0, ledger_limit=300, session_turns=10,
             stored_sessions=1_000, big=False, real_latency=None)  # fmt: skip


async def bursts(report: Report, plan: Plan, workdir: Path) -> None:
    async with FakeGeminiProcess(latency=plan.latency) as gemini:
        for run in (discord_burst, slack_burst):
            for n in plan.bursts:
                profile = plan.profile / f"{run.__name__}-{n}.txt" if plan.profile else None
                _burst_rows(report, await run(n, gemini, workdir, profile=profile, timers=plan.timers), plan)
    if plan.real_latency is not None:
        fresh = workdir / "real-latency"  # a database of its own: Slack's event ids repeat, and would be deduplicated
        fresh.mkdir(exist_ok=True)
        async with FakeGeminiProcess(latency=plan.real_latency) as gemini:
            for run in (discord_burst, slack_burst):
                _real_rows(report, await run(max(plan.bursts), gemini, fresh, timers=plan.timers), plan.real_latency)


def _real_rows(report: Report, b: Burst, latency: float) -> None:
    """A burst with the model as slow as the real API's median: what the bot adds on top of it, per turn and for
    the whole burst (work before and after the model call that could not hide behind it)."""
    head = f"{b.platform} N={b.n}, model {latency:g} s"
    if b.done < b.n:
        report.add("1 burst", f"{head}: makespan", f"incomplete ({b.done}/{b.n} done)")
        return
    report.add("1 burst", f"{head}: makespan ÷ model", f"{b.makespan / latency:.2f} ({b.makespan:.2f} s)")
    turns, calls = b.inside.get("stage:imagine turn (ledger to reply)"), b.inside.get("stage:model call")
    if turns and calls:
        added = f"{ms(pct(turns, 50) - pct(calls, 50))} / {ms(pct(turns, 99) - pct(calls, 50))}"
        report.add("1 burst", f"{head}: a turn beyond its model call p50 / p99", added)
    report.add("1 burst", f"{head}: ack p99", ms(pct(b.acks, 99)))


def _burst_rows(report: Report, b: Burst, plan: Plan) -> None:
    head = f"{b.platform} N={b.n}"
    ratio = b.makespan / plan.latency
    done = f"{b.done}/{b.n} done"
    value = f"{ratio:.2f} ({b.makespan:.2f} s, {done})" if not math.isnan(ratio) else f"incomplete ({done})"
    at_200 = b.n == 200
    report.add("1 burst", f"{head}: makespan ÷ model", value, "≤ 1.10 at N=200" if at_200 else "",
               (ratio <= 1.10) if at_200 else None)  # fmt: skip
    p99 = pct(b.acks, 99)
    report.add("1 burst", f"{head}: ack p50 / p99", f"{ms(pct(b.acks, 50))} / {ms(p99)}", "p99 ≤ 50 ms", p99 <= 0.05)
    rss = b.peak_rss / MiB
    at_30 = b.n == 30
    report.add("1 burst", f"{head}: peak RSS of `bananabot run`", f"{rss:.0f} MiB",
               "≤ 200 MiB at N=30" if at_30 else "", (rss <= 200) if at_30 else None)  # fmt: skip
    cpu = f"bot {b.bot_cpu:.1f} · fake Gemini {b.gemini_cpu:.1f} · fakes+driver {b.driver_cpu:.1f}"
    report.add("1 burst", f"{head}: CPU seconds used", cpu + f" (bot {b.bot_cpu / b.n * 1000:.0f} ms/turn)")
    if b.done >= b.n:
        # No schedule ends before the machine has done the burst's work: its busy CPU spread over every core.
        floor, budget = b.machine_cpu / CORES, 1.10 * plan.latency * CORES
        report.add("1 burst", f"{head}: machine busy until the last result (CPU floor)",
                   f"{b.machine_cpu:.1f} CPU-s ÷ {CORES} cores = {floor:.2f} s = {floor / plan.latency:.2f}× model "
                   f"(1.10× needs ≤ {budget:.1f} CPU-s in all)")  # fmt: skip
    answered = [p for p in b.probes if p is not None]
    missed = sum(1 for p in b.probes if p is None or p > 3.0)
    cheap = "/quota" if b.platform.startswith("Discord") else "App Home (quota)"
    p99 = pct(answered, 99)
    spread = f"{ms(pct(answered, 50))} / {ms(p99)} / {ms(max(answered, default=math.nan))}"
    report.add("2 loop", f"{head}: {cheap} every 0.25 s p50/p99/max", spread, "p99 ≤ 20 ms", p99 <= 0.02)
    report.add("2 loop", f"{head}: {cheap} missed 3 s", f"{missed} of {len(b.probes)}", "none", missed == 0)
    report.add("2 loop", f"{head}: driver (fakes) loop lag max", ms(b.driver_lag_max))
    _inside_rows(report, head, b.inside)


def _inside_rows(report: Report, head: str, inside: dict[str, list[float]]) -> None:
    """What bench/botmain.py saw inside the bot during the burst: where a cheap command's and a turn's time goes."""
    labels = {
        "loop_lag": "bot event-loop lag (10 ms timer)",
        "handler:quota": "bot /quota handler (store reads)",
        **{f"gc:{generation}": f"bot GC pause, generation {generation}" for generation in range(3)},
    }
    for key, samples in inside.items():
        if key in labels or key.startswith("stage:") or key.endswith("(s into the burst)"):
            label = labels.get(key) or "bot " + key.removeprefix("stage:")
            if samples:
                spread = f"{ms(pct(samples, 50))} / {ms(pct(samples, 99))} / {ms(max(samples))} ({len(samples)})"
                report.add("2 loop" if key in labels else "1 stages", f"{head}: {label} p50/p99/max", spread)


async def overhead_and_growth(report: Report, plan: Plan, workdir: Path, *, overhead: bool, growth: bool) -> None:
    tune_allocator()  # the bot runs in this process here: with `bananabot run`'s allocator settings
    async with (
        FakeGeminiProcess(latency=0.0) as gemini,
        DiscordWorld(users=64) as world,
        InProcessBot(world, gemini, workdir / "inproc.db") as bot,
    ):
        clock = PhaseClock()
        with clock.installed(bot.services):
            turns = Turns(bot, clock)
            if overhead:
                _overhead_rows(report, await run_cases(turns, repeat=plan.repeat, big=plan.big))
            if growth:
                await _session_rows(report, bot, turns, plan)
    if growth:
        await _memory_rows(report, plan, workdir)


def _overhead_rows(report: Report, cases: list[CaseResult]) -> None:
    for case in cases:
        split = " · ".join(f"{p} {case.p50(p) * 1000:.0f}" for p in (*PHASES, "other"))
        total = case.p50()
        value = f"{total * 1000:.0f} = {split}"
        if case.name == "1.4 MB edit, 1K":
            report.add("3 overhead", f"{case.name}: p50 ms, by phase", value, "≤ 50 ms", total <= 0.05)
        else:
            report.add("3 overhead", f"{case.name}: p50 ms, by phase", value)


async def _session_rows(report: Report, bot: InProcessBot, turns: Turns, plan: Plan) -> None:
    grown = await grow_session(bot, turns, count=plan.session_turns)
    marks = [t for t in grown if t.turn in (2, 10, 20)]
    sizes = " / ".join(f"{t.request_bytes / 1e6:.1f} MB" for t in marks)
    names = " / ".join(str(t.turn) for t in marks)
    report.add("5 growth", f"request bytes at turn {names}", sizes)
    ratio = marks[-1].request_bytes / marks[0].request_bytes
    report.add("5 growth", f"turn-{marks[-1].turn} ÷ turn-2 request bytes", f"{ratio:.2f}", "≤ 3", ratio <= 3)
    report.add("5 growth", f"overhead at turn {names}", " / ".join(ms(t.overhead) for t in marks))


async def _memory_rows(report: Report, plan: Plan, workdir: Path) -> None:
    seeded = workdir / "sessions.db"
    took = await seed_sessions(seeded, plan.stored_sessions)
    async with FakeGeminiProcess(latency=0.0) as gemini:
        empty = await serve_few(workdir / "empty.db", 0, gemini, workdir, turns=3)
        full = await serve_few(seeded, plan.stored_sessions, gemini, workdir, turns=3)
    count = f"{plan.stored_sessions:,}"
    report.add("5 growth", f"stored {count} sessions via the Store API, {SEED_WRITERS} at a time", f"{took:.1f} s")
    peak = full.peak_rss
    value = (
        f"idle {full.idle_rss / MiB:.0f} MiB, peak {peak / MiB:.0f} MiB serving 3 edits "
        f"(empty DB: {empty.idle_rss / MiB:.0f} / {empty.peak_rss / MiB:.0f} MiB)"
    )
    report.add("5 growth", f"RSS of `bananabot run` with {count} sessions", value, "≤ 200 MB", peak <= 200e6)


async def ledgers(report: Report, plan: Plan, workdir: Path) -> None:
    for result in (
        await ledger.sqlite(workdir, seconds=plan.ledger_seconds, limit=plan.ledger_limit),
        await ledger.postgres(seconds=plan.ledger_seconds, limit=plan.ledger_limit),
    ):
        if result.error:
            report.add("4 ledger", f"{result.backend}", result.error)
            continue
        rate = result.pairs_per_second
        spread = f"{min(result.rounds):,.0f}–{max(result.rounds):,.0f}"
        report.add("4 ledger", f"{result.backend}: reserve+commit per s, {ledger.TASKS} tasks",
                   f"{rate:,.0f} pairs/s, median of {len(result.rounds)} ({spread})", "≥ 5,000",
                   rate >= 5000)  # fmt: skip
        value = f"{result.overspend} ({result.granted} granted, {result.counted} counted, limit {result.limit})"
        report.add("4 ledger", f"{result.backend}: overspend, {ledger.TASKS} tasks racing", value, "0",
                   result.overspend == 0)  # fmt: skip


async def scale_out(report: Report, plan: Plan, workdir: Path) -> None:
    """Section 6: the largest Slack burst on Postgres, by one process and by two."""
    n = max(plan.bursts)
    async with FakeGeminiProcess(latency=plan.latency) as gemini:
        for replicas in (1, 2):
            head = f"Slack mention N={n}, Postgres, {replicas} process{'es' if replicas > 1 else ''}"
            try:
                run = await slack_replicas(n, gemini, workdir, replicas=replicas)
            except (OSError, asyncpg.PostgresError) as exc:
                report.add("6 scale-out", head, f"unavailable: {exc!r}"[:120])
                return
            ratio = run.makespan / plan.latency
            value = (
                f"{ratio:.2f} ({run.makespan:.2f} s, {run.done}/{n} done)" if not math.isnan(ratio) else "incomplete"
            )
            report.add("6 scale-out", f"{head}: makespan ÷ model", value)
            report.add("6 scale-out", f"{head}: ack p50 / p99", f"{ms(pct(run.acks, 50))} / {ms(pct(run.acks, 99))}")
            server = "?" if run.postgres_cpu is None else f"{run.postgres_cpu:.1f}"
            each = " + ".join(f"{cpu:.1f}" for cpu in run.bot_cpu)
            report.add("6 scale-out", f"{head}: CPU seconds used", f"bots {each} · Postgres server {server}")
            rss = " / ".join(f"{r / MiB:.0f}" for r in run.peak_rss)
            report.add("6 scale-out", f"{head}: peak RSS of each `bananabot run`", f"{rss} MiB")
