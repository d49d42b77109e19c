"""Percentiles and memory readings (Linux /proc) for the benchmark table."""

from __future__ import annotations

import math
import os
import resource
from collections.abc import Sequence
from pathlib import Path

MiB = 1024 * 1024


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(f"{field} not in /proc/{pid}/status")


def rss_bytes(pid: int) -> int:
    """Resident set size now."""
    return _status_kib(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int) -> int:
    """Peak resident set size (VmHWM) since start or since `reset_peak`."""
    return _status_kib(pid, "VmHWM") * 1024


def reset_peak(pid: int) -> None:
    """Start VmHWM again from the current RSS (Linux: write 5 to clear_refs; needs to own the process)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def self_peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU the whole machine has been busy so far, summed over its cores (Linux /proc/stat). It includes the
    kernel's own threads (loopback softirqs, page-cache writeback), which no process's figure shows."""
    return busy_ticks(Path("/proc/stat").read_text().split("\n", 1)[0]) / os.sysconf("SC_CLK_TCK")


def busy_ticks(cpu_line: str) -> int:
    """The busy ticks of /proc/stat's "cpu" line: user, nice, system, irq, softirq and steal (not idle, iowait, or
    guest time, which user already counts)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in cpu_line.split()[1:9])
    return user + nice + system + irq + softirq + steal


def cpu_line() -> str:
    """/proc/stat's first line: the whole machine's CPU ticks so far, summed over its cores."""
    return Path("/proc/stat").read_text().split("\n", 1)[0]


def stolen_share(before: str, after: str) -> float:
    """The share of the machine's CPU time between two `cpu_line` readings that the hypervisor gave to other guests
    (steal). On a shared VM it is what makes one run slower than the next with nothing changed; NaN if no time
    passed."""
    first, last = ([int(f) for f in line.split()[1:9]] for line in (before, after))
    spent = [b - a for a, b in zip(first, last, strict=True)]
    return spent[7] / sum(spent) if sum(spent) > 0 else math.nan


def postgres_server_cpu_seconds() -> float | None:
    """CPU the local PostgreSQL server has used so far: every `postgres` process's own time plus what its exited
    children (finished backends) left with the postmaster. None when no such process is visible here."""
    tick = os.sysconf("SC_CLK_TCK")
    total, seen = 0, False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if name.startswith("postgres"):
            seen = True
            total += sum(int(rest[i]) for i in (11, 12, 13, 14))  # utime, stime, cutime, cstime
    return total / tick if seen else None
