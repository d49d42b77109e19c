"""The bench's machine-wide CPU reading, which sets each burst's CPU floor."""

from __future__ import annotations

import math
import time

from bench.stats import busy_ticks, cpu_line, machine_cpu_seconds, stolen_share


def test_machine_cpu_counts_this_process_spinning() -> None:
    before_machine, before_self = machine_cpu_seconds(), time.process_time()
    while time.process_time() - before_self < 0.3:
        pass
    spun = time.process_time() - before_self
    # Ticks are 10 ms: allow two of rounding on each side.
    assert machine_cpu_seconds() - before_machine >= spun - 0.02


def test_busy_ticks_leave_out_idle_iowait_and_guest_time() -> None:
    #      user nice system idle iowait irq softirq steal guest guest_nice
    line = "cpu  100 2 30 1000 50 4 5 6 70 8"
    assert busy_ticks(line) == 100 + 2 + 30 + 4 + 5 + 6


def test_stolen_share_is_steal_over_every_tick_that_passed() -> None:
    #         user nice system idle iowait irq softirq steal guest guest_nice
    before = "cpu  100 0 20 500 10 0 5 15 0 0"
    after = "cpu  160 0 30 800 10 0 5 65 9 0"  # 60 + 10 + 300 + 50 = 420 ticks passed, 50 of them stolen
    assert stolen_share(before, after) == 50 / 420
    assert math.isnan(stolen_share(before, before))
    assert cpu_line().split()[0] == "cpu" and len(cpu_line().split()) >= 9
