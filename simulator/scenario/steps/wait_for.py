"""The ``wait_for`` step: tick the virtual clock until a condition holds, within a bound,
optionally repeating a step at every tick."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from netfault.simulator.scenario.conditions import Condition
from netfault.simulator.scenario.fields import Duration
from netfault.simulator.scenario.steps.base import StepContext, StepFailed, StepModel

if TYPE_CHECKING:
    from netfault.simulator.scenario.steps import AnyStep

MAX_WAIT_TICKS = 10_000


class WaitForArgs(Condition):
    within: Duration = 60.0
    tick: Duration = 1.0
    repeat: AnyStep | None = None


class WaitForStep(StepModel):
    key: ClassVar[str] = "wait_for"
    wait_for: WaitForArgs

    def children(self) -> list[tuple[tuple[str | int, ...], StepModel]]:
        return [(("repeat",), self.wait_for.repeat)] if self.wait_for.repeat else []

    async def run(self, ctx: StepContext) -> str:
        cond = self.wait_for
        waited = 0.0
        for _ in range(MAX_WAIT_TICKS):
            if await cond.holds(ctx.world) is None:
                return f"{cond.describe()} after {waited:g} virtual s"
            if waited + cond.tick > cond.within + 1e-9:
                break
            if cond.repeat is not None:
                await cond.repeat.run(ctx)
                if await cond.holds(ctx.world) is None:
                    return f"{cond.describe()} after {waited:g} virtual s"
            ctx.clock.advance(cond.tick)
            waited += cond.tick
            await ctx.on_tick()
        seen = await cond.holds(ctx.world)
        raise StepFailed(f"{cond.describe()} not reached within {cond.within:g} virtual s: {seen}")

    def describe(self) -> str:
        return f"wait_for {self.wait_for.describe()}"
