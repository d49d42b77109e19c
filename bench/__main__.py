"""`python -m bench [--quick] [--only NAME]`: the bot against loopback fakes; prints one table with PASS/MISS."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import machine, sections
from bench.report import Report, Row
from bench.stats import cpu_line, stolen_share

SECTIONS = ("burst", "overhead", "ledger", "growth", "scaleout")  # "burst" is sections 1 and 2 (one run)


async def run(args: argparse.Namespace) -> Report:
    plan = sections.QUICK if args.quick else sections.FULL
    plan = dataclasses.replace(plan, latency=args.latency, profile=args.profile, timers=not args.plain)
    wanted = set(args.only or SECTIONS)
    report = Report()
    report.note(f"machine: {machine.describe()}")
    report.note(
        "bursts: `bananabot run` in its own process (RSS and CPU are that process's"
        + ("" if args.plain else "; started as `python -m bench.botmain` = `bananabot run` plus timers")
        + f"); the fake Gemini (--bench, {plan.latency:g} s latency, each answer made during its latency) in "
        "another; fake Discord/Slack and the load driver in this one (its own loop lag is shown, so a slow fake "
        "would be visible); Slack's events sent by bench.sender, a process with its connections open before the "
        "clock starts"
    )
    report.note(
        "burst settings: BANANABOT_MAX_CONCURRENT_CALLS=256, one user per turn (default credits and "
        "USER_MAX_IN_FLIGHT=2 suffice), Discord: one channel per user (its 5-per-5 s posting bucket), "
        "Slack: HTTP mode, one channel; default SQLite store, log level INFO"
        + (
            f"; the largest burst runs once more with the model at {plan.real_latency:g} s, the real API's median "
            "(a turn beyond its model call: the turn's p50 or p99 minus the model call's p50)"
            if plan.real_latency is not None
            else ""
        )
    )
    report.note(
        "edits attach a 2048×1365 photo-like JPEG of 1.43 MiB; the fake answers photo-like PNGs (≈1.5 MB at 1K)"
    )
    report.note(
        "overhead and session growth: Discord adapter in this process (phase timers wrapped around bot functions), "
        "model latency 0, overhead = INTERACTION_CREATE (or MESSAGE_CREATE) until the bot's upload of the result "
        "returned, minus the fake Gemini's own work (X-Fake-Server-Seconds); 'other' = Discord ack, thread, progress"
    )
    if not args.plain:
        report.note(
            "stages: timers inside the bot during a burst (bench/botmain.py), p50/p99/max of each call's duration; "
            "'model call began' is seconds after the burst was sent; store writes include their queue wait"
        )
    report.note("ledger: one op = Ledger.reserve + Ledger.commit (the bot's path, policy and grant reads included)")
    report.note(
        "scale-out: the largest Slack burst with the Postgres store (a fresh schema on 127.0.0.1), by one process and "
        "by two sharing it, each event sent to the next process in turn; Postgres server CPU includes its finished "
        "backends. Everything shares this machine's cores, so two processes show how the work splits, not how far "
        "two machines go"
    )
    report.note(
        "each section runs in a fresh `python -m bench --only …` process, after a sync: one section's heap or "
        "dirty pages can't slow the next"
    )
    if len(wanted) > 1 and args.rows is None:
        stolen = []
        for section in (s for s in SECTIONS if s in wanted):
            os.sync()  # a burst leaves ~1 GB of dirty pages: written back now, not during the next section
            time.sleep(2)
            before = cpu_line()
            report.rows.extend(_section_in_child(section, args))
            stolen.append(f"{section} {stolen_share(before, cpu_line()):.1%}")
        report.note(
            "CPU time the hypervisor gave to other guests (steal) during each section: "
            + ", ".join(stolen)
            + ". On a shared VM it is what makes one run slower than the next with nothing changed"
        )
        return report
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        if "burst" in wanted:
            await sections.bursts(report, plan, workdir)
        if wanted & {"overhead", "growth"}:
            await sections.overhead_and_growth(
                report, plan, workdir, overhead="overhead" in wanted, growth="growth" in wanted
            )
        if "ledger" in wanted:
            await sections.ledgers(report, plan, workdir)
        if "scaleout" in wanted:
            await sections.scale_out(report, plan, workdir)
    return report


def _section_in_child(section: str, args: argparse.Namespace) -> list[Row]:
    """Run one section as `python -m bench --only SECTION` and read its rows back."""
    with tempfile.TemporaryDirectory(prefix="bench-rows-") as tmp:
        rows = Path(tmp) / "rows.json"
        argv = [sys.executable, "-m", "bench", "--only", section, "--rows", str(rows), "--latency", str(args.latency)]
        argv += ["--quick"] * args.quick + ["--plain"] * args.plain
        if args.profile is not None:
            argv += ["--profile", str(args.profile)]
        subprocess.run(argv, check=True, cwd=Path(__file__).resolve().parent.parent)
        return [Row(**row) for row in json.loads(rows.read_text())]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a 1–2 minute smoke version (smaller N and counts)")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    parser.add_argument("--latency", type=float, default=2.0, help="fake model latency for the bursts (s)")
    parser.add_argument("--profile", type=Path, help="write py-spy collapsed stacks of each burst's bot here")
    parser.add_argument("--plain", action="store_true", help="bursts run `python -m bot run` without bench timers")
    parser.add_argument("--rows", type=Path, help=argparse.SUPPRESS)  # a child run: write the rows here as JSON
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    print(f"python -m bench{' --quick' if args.quick else ''}: running {', '.join(args.only or SECTIONS)}")
    probed = machine.probe() if args.rows is None else ""  # before the sections, on a quiet machine
    report = asyncio.run(run(args))
    if probed:
        report.note(f"machine probe: {probed}")
    if args.rows is not None:
        args.rows.write_text(json.dumps([dataclasses.asdict(row) for row in report.rows]))
        return
    print()
    print(report.render())
    print(f"took {time.monotonic() - started:.0f} s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
