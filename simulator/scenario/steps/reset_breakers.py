"""The ``reset_breakers`` step: close one node's breaker, or every breaker (``all``)."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.scenario.fields import NodeOrAll
from netfault.simulator.scenario.steps.base import StepContext, StepModel


class ResetBreakersStep(StepModel):
    key: ClassVar[str] = "reset_breakers"
    reset_breakers: NodeOrAll

    async def run(self, ctx: StepContext) -> str:
        node = self.reset_breakers
        ctx.world.transport.reset_circuit_breakers(None if node == "all" else node)
        return f"breakers reset ({node})"

    def describe(self) -> str:
        return f"reset_breakers {self.reset_breakers}"
