"""The ``http`` step: one API request with failover across the node's routes."""

from __future__ import annotations

from typing import ClassVar, Literal

from netfault.simulator.scenario.fields import NodeName, Preset, Text
from netfault.simulator.scenario.steps.base import StepContext, StepModel
from netfault.simulator.scenario.steps.expect import HttpExpect, Timeouts, summarize
from netfault.simulator.scenario.typed import ScenarioModel


class HttpArgs(ScenarioModel):
    node: NodeName
    endpoint: Text = "/health"
    method: Text = "GET"
    port: Literal["http", "p2p"] = "http"
    expect: HttpExpect = HttpExpect()
    preset: Preset | None = None
    config: Timeouts = Timeouts()


class HttpStep(StepModel):
    key: ClassVar[str] = "http"
    http: HttpArgs

    async def run(self, ctx: StepContext) -> str:
        args = self.http
        node = ctx.world.cluster.node(args.node)
        result = await ctx.world.transport.http_request_with_failover(
            node,
            args.endpoint,
            args.method,
            config=ctx.config(args.preset, args.config.overrides()),
            port=node.p2p_port if args.port == "p2p" else None,
        )
        args.expect.check(result)
        return summarize(result)

    def describe(self) -> str:
        return f"http {self.http.node} {self.http.endpoint}"
