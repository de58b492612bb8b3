"""The ``sync`` step: push one file through the router (``SyncRouter.sync_to_node``)."""

from __future__ import annotations

import hashlib
from typing import ClassVar

from netfault.simulator.scenario.fields import NodeName, Preset, Size, Text, Transport
from netfault.simulator.scenario.steps.base import StepContext, StepModel
from netfault.simulator.scenario.steps.expect import (
    OperationExpect,
    Timeouts,
    payload,
    summarize,
)
from netfault.simulator.scenario.typed import ScenarioModel


class SyncArgs(ScenarioModel):
    node: NodeName
    path: Text
    size: Size = 64 * 1024
    force_transport: Transport | None = None
    expect: OperationExpect = OperationExpect()
    preset: Preset | None = None
    config: Timeouts = Timeouts()


class SyncStep(StepModel):
    key: ClassVar[str] = "sync"
    sync: SyncArgs

    async def run(self, ctx: StepContext) -> str:
        args = self.sync
        data = payload(ctx.seed, args.node, args.path, args.size)
        local = ctx.workdir / hashlib.sha1(f"sync:{args.node}:{args.path}".encode()).hexdigest()
        await ctx.in_thread(local.write_bytes, data)
        result = await ctx.world.router.sync_to_node(
            args.node,
            local,
            args.force_transport,
            remote_path=args.path,
            config=ctx.config(args.preset, args.config.overrides()),
        )
        if result.success:
            ctx.world.remember_push(args.node, args.path, data)
        args.expect.check(result)
        return summarize(result)

    def describe(self) -> str:
        return f"sync {self.sync.node} {self.sync.path}"
