"""The ``check`` step: a condition that must hold right now."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.scenario.conditions import Condition
from netfault.simulator.scenario.steps.base import StepContext, StepFailed, StepModel


class CheckStep(StepModel):
    key: ClassVar[str] = "check"
    check: Condition

    async def run(self, ctx: StepContext) -> str:
        seen = await self.check.holds(ctx.world)
        if seen is not None:
            raise StepFailed(f"{self.check.describe()}: {seen}")
        return f"{self.check.describe()} holds"

    def describe(self) -> str:
        return f"check {self.check.describe()}"
