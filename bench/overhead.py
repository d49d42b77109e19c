"""Section 3: the bot's own time per turn with an instant model, split by phase (Discord adapter in-process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.inproc import InProcessBot
from bench.loop import wait_until
from bench.phases import PHASES, PhaseClock
from bench.photos import unique_reference
from bench.stats import pct

CASES: tuple[tuple[str, str, bool], ...] = (
    ("text prompt, 1K", "1K", False),
    ("1.4 MB edit, 1K", "1K", True),
    ("1.4 MB edit, 2K", "2K", True),
    ("1.4 MB edit, 4K", "4K", True),
)


@dataclass(slots=True)
class TurnCost:
    total: float  # INTERACTION_CREATE to the bot's upload of the result returning
    overhead: float  # total minus the fake Gemini's own work (model latency is 0)
    phases: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class CaseResult:
    name: str
    turns: list[TurnCost] = field(default_factory=list)

    def p50(self, phase: str | None = None) -> float:
        values = [t.overhead if phase is None else t.phases[phase] for t in self.turns]
        return pct(values, 50)


class Turns:
    """Fresh /imagine turns, one channel (so one new session thread) each."""

    def __init__(self, bot: InProcessBot, clock: PhaseClock) -> None:
        self.bot, self.clock = bot, clock
        self.next_channel = 0

    async def imagine(self, prompt: str, *, size: str, photo: bool) -> TurnCost:
        world = self.bot.world
        i, self.next_channel = self.next_channel, self.next_channel + 1
        reference = unique_reference() if photo else None
        before = len(world.results)
        self.clock.reset()
        sent = await world.imagine(i, prompt, photo=reference, size=size)
        return await self.posted(before, sent.dispatched_at)

    async def posted(self, before: int, started: float) -> TurnCost:
        """Once the bot's upload of the result returned: the turn's cost with its phases at that instant."""
        await self.bot.next_result(before)
        if not await wait_until(lambda: self.clock.posted is not None, timeout=30, step=0.002):
            raise TimeoutError("the result upload never returned")
        assert self.clock.posted is not None
        at_post = self.clock.at_post
        total = self.clock.posted - started
        overhead = total - at_post["fake server"]
        phases = {phase: at_post.get(phase, 0.0) for phase in PHASES}
        phases["other"] = overhead - sum(phases.values())
        return TurnCost(total, overhead, phases)


async def run_cases(turns: Turns, *, repeat: int, big: bool = True) -> list[CaseResult]:
    results = []
    for name, size, photo in CASES if big else [c for c in CASES if c[1] != "4K"]:
        await turns.imagine(f"warm-up {name}", size=size, photo=photo)  # the fake renders its pool once per size
        case = CaseResult(name)
        for k in range(repeat):
            case.turns.append(await turns.imagine(f"{name} #{k}: a harbour at dawn", size=size, photo=photo))
        results.append(case)
    return results
