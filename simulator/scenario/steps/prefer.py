"""The ``prefer`` step: set (or drop, with null) a node's preferred transport."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.scenario.fields import NodeName, Transport
from netfault.simulator.scenario.steps.base import StepContext, StepModel
from netfault.simulator.scenario.typed import ScenarioModel


class PreferArgs(ScenarioModel):
    node: NodeName
    transport: Transport | None


class PreferStep(StepModel):
    key: ClassVar[str] = "prefer"
    prefer: PreferArgs

    async def run(self, ctx: StepContext) -> str:
        ctx.world.router.set_preferred_transport(self.prefer.node, self.prefer.transport)
        return f"{self.prefer.node} prefers {self.prefer.transport}"

    def describe(self) -> str:
        return f"prefer {self.prefer.node} {self.prefer.transport}"
