"""The ``advance`` step: move the virtual clock (breakers, router windows)."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.scenario.fields import Duration
from netfault.simulator.scenario.steps.base import StepContext, StepModel


class AdvanceStep(StepModel):
    key: ClassVar[str] = "advance"
    advance: Duration

    async def run(self, ctx: StepContext) -> str:
        ctx.clock.advance(self.advance)
        return f"virtual clock +{self.advance:g}s"

    def describe(self) -> str:
        return f"advance {self.advance:g}"
