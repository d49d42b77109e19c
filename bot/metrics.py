"""Prometheus metrics of one process: turns, model latency, queue depth, credits, cost, errors."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """One registry per Services (tests run several in one process)."""

    def __init__(self, queue_depth: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.turns = Counter(
            "bananabot_turns", "Image turns by platform and outcome", ["platform", "outcome"], registry=self.registry
        )
        self.model_latency = Histogram(
            "bananabot_model_latency_seconds",
            "Time for one Gemini call, retries included",
            ["model"],
            buckets=(0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300),
            registry=self.registry,
        )
        self.credits = Counter("bananabot_credits", "Credits by settlement", ["kind"], registry=self.registry)
        self.cost = Counter("bananabot_cost_usd", "Estimated Gemini spend in USD", registry=self.registry)
        self.errors = Counter("bananabot_errors", "Failures by kind", ["kind"], registry=self.registry)
        depth = Gauge("bananabot_queue_depth", "Turns running or waiting in this process", registry=self.registry)
        depth.set_function(lambda: float(queue_depth()))

    def render(self) -> bytes:
        return generate_latest(self.registry)
