"""The ``clear`` step: switch off the faults applied under a name, or ``all``."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.scenario.fields import Text
from netfault.simulator.scenario.steps.base import StepContext, StepFailed, StepModel


class ClearStep(StepModel):
    key: ClassVar[str] = "clear"
    clear: Text

    async def run(self, ctx: StepContext) -> str:
        controller = ctx.world.cluster.faults
        if self.clear == "all":
            await ctx.in_thread(controller.clear_all)
            ctx.named.clear()
            return "all faults cleared"
        if self.clear not in ctx.named:
            raise StepFailed(f"no active fault named {self.clear!r} (have: {sorted(ctx.named)})")
        for fault in ctx.named.pop(self.clear):
            await ctx.in_thread(controller.clear, fault)
        return f"cleared {self.clear}"

    def describe(self) -> str:
        return f"clear {self.clear}"
