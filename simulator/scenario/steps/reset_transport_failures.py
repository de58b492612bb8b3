"""The ``reset_transport_failures`` step: forget a node's failed transports."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.scenario.fields import NodeName
from netfault.simulator.scenario.steps.base import StepContext, StepModel


class ResetTransportFailuresStep(StepModel):
    key: ClassVar[str] = "reset_transport_failures"
    reset_transport_failures: NodeName

    async def run(self, ctx: StepContext) -> str:
        ctx.world.router.reset_transport_failures(self.reset_transport_failures)
        return f"{self.reset_transport_failures}: transport failures reset"

    def describe(self) -> str:
        return f"reset_transport_failures {self.reset_transport_failures}"
