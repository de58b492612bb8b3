"""The ``http`` step: one API request with failover across the node's routes."""

from __future__ import annotations

from typing import ClassVar, Literal

from netfault.engine import HttpResult
from netfault.simulator.scenario.fields import NodeName, Preset, Text
from netfault.simulator.scenario.steps.base import StepContext
from netfault.simulator.scenario.steps.expect import HttpExpect, OperationExpect, Timeouts
from netfault.simulator.scenario.steps.operation import OperationStep
from netfault.simulator.scenario.typed import ScenarioModel


class HttpArgs(ScenarioModel):
    node: NodeName
    endpoint: Text = "/health"
    method: Text = "GET"
    port: Literal["http", "p2p"] = "http"
    expect: HttpExpect = HttpExpect()
    preset: Preset | None = None
    config: Timeouts = Timeouts()


class HttpStep(OperationStep):
    key: ClassVar[str] = "http"
    http: HttpArgs

    def expectation(self) -> OperationExpect:
        return self.http.expect

    async def perform(self, ctx: StepContext, copy: int | None = None) -> HttpResult:
        args = self.http
        node = ctx.world.cluster.node(args.node)
        result = await ctx.world.transport.http_request_with_failover(
            node,
            args.endpoint,
            args.method,
            config=ctx.config(args.preset, args.config.overrides()),
            port=node.p2p_port if args.port == "p2p" else None,
        )
        return result

    def describe(self) -> str:
        return f"http {self.http.node} {self.http.endpoint}"
