"""The bench's rows for a burst at the real API's median latency: what a turn adds beyond its model call."""

from __future__ import annotations

from bench.burst import Burst
from bench.report import Report
from bench.sections import _real_rows


def test_a_turn_beyond_its_model_call_is_the_turns_time_less_the_models() -> None:
    burst = Burst("Slack mention", 2, makespan=14.3, done=2, acks=[0.01, 0.02])
    burst.inside = {"stage:imagine turn (ledger to reply)": [13.4, 13.9], "stage:model call": [13.1, 13.1]}
    report = Report()
    _real_rows(report, burst, 13.0)
    rows = {row.metric: row.value for row in report.rows}
    assert rows["Slack mention N=2, model 13 s: makespan ÷ model"] == "1.10 (14.30 s)"
    assert rows["Slack mention N=2, model 13 s: a turn beyond its model call p50 / p99"] == "300.0 ms / 800.0 ms"
    assert all(row.ok is None for row in report.rows)  # reported, not a target of the issue


def test_an_incomplete_burst_says_so() -> None:
    report = Report()
    _real_rows(report, Burst("Discord /imagine", 200, done=12), 13.0)
    assert [row.value for row in report.rows] == ["incomplete (12/200 done)"]
