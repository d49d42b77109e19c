"""The bench's machine-wide CPU reading, which sets each burst's CPU floor."""

from __future__ import annotations

import time

from bench.stats import busy_ticks, machine_cpu_seconds


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
