"""The ``reenable`` step: an operator re-enables a node the router disabled."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.scenario.fields import NodeName
from netfault.simulator.scenario.steps.base import StepContext, StepModel


class ReenableStep(StepModel):
    key: ClassVar[str] = "reenable"
    reenable: NodeName

    async def run(self, ctx: StepContext) -> str:
        ctx.world.router.reenable_node(self.reenable)
        return f"{self.reenable} re-enabled"

    def describe(self) -> str:
        return f"reenable {self.reenable}"
