"""The ``clear`` step: switch off the faults applied under a name, or ``all``."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.scenario.fields import Text
from netfault.simulator.scenario.steps.base import StepContext, StepFailed, StepModel
from netfault.simulator.scenario.trace import FaultKind


class ClearStep(StepModel):
    key: ClassVar[str] = "clear"
    clear: Text

    async def run(self, ctx: StepContext) -> str:
        controller = ctx.world.cluster.faults
        if self.clear == "all":
            await ctx.in_thread(controller.clear_all)
            ctx.record(FaultKind.CLEARED, "all", None)
            ctx.named.clear()
            ctx.scoped.clear()
            return "all faults cleared"
        active = set(ctx.named) | set(ctx.scoped)
        if self.clear not in active:
            raise StepFailed(f"no active fault named {self.clear!r} (have: {sorted(active)})")
        await ctx.clear(self.clear)
        return f"cleared {self.clear}"

    def describe(self) -> str:
        return f"clear {self.clear}"
