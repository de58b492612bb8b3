"""The ``test_transport`` step: the router's probe of one transport on one node."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.scenario.fields import Flag, NodeName, Transport
from netfault.simulator.scenario.steps.base import StepContext, StepFailed, StepModel
from netfault.simulator.scenario.typed import ScenarioModel


class ProbeExpect(ScenarioModel):
    success: Flag | None = None


class TestTransportArgs(ScenarioModel):
    node: NodeName
    transport: Transport
    expect: ProbeExpect = ProbeExpect()


class TestTransportStep(StepModel):
    key: ClassVar[str] = "test_transport"
    test_transport: TestTransportArgs

    async def run(self, ctx: StepContext) -> str:
        args = self.test_transport
        probe = await ctx.world.router.test_transport(args.node, args.transport)
        expected = args.expect.success
        if expected is not None and probe.success != expected:
            raise StepFailed(
                f"success: expected {expected}, seen {probe.success} ({probe.message})"
            )
        return f"{probe.transport}: {'ok' if probe.success else 'failed'} - {probe.message}"

    def describe(self) -> str:
        return f"test_transport {self.test_transport.node} {self.test_transport.transport}"
