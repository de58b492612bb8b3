"""The ``sync`` step: push one file through the router (``SyncRouter.sync_to_node``)."""

from __future__ import annotations

import hashlib
from typing import ClassVar

from netfault.engine import TransferResult
from netfault.simulator.scenario.fields import NodeName, Preset, RemotePath, Size, Transport
from netfault.simulator.scenario.steps.base import StepContext
from netfault.simulator.scenario.steps.expect import OperationExpect, Timeouts, payload
from netfault.simulator.scenario.steps.operation import OperationStep, copy_path
from netfault.simulator.scenario.typed import ScenarioModel


class SyncArgs(ScenarioModel):
    node: NodeName
    path: RemotePath
    size: Size = 64 * 1024
    force_transport: Transport | None = None
    expect: OperationExpect = OperationExpect()
    preset: Preset | None = None
    config: Timeouts = Timeouts()


class SyncStep(OperationStep):
    key: ClassVar[str] = "sync"
    sync: SyncArgs

    def size(self) -> int:
        return self.sync.size

    def expectation(self) -> OperationExpect:
        return self.sync.expect

    async def perform(self, ctx: StepContext, copy: int | None = None) -> TransferResult:
        args = self.sync
        path = copy_path(args.path, copy)
        data = payload(ctx.seed, args.node, path, args.size)
        local = ctx.workdir / hashlib.sha1(f"sync:{args.node}:{path}".encode()).hexdigest()
        await ctx.in_thread(local.write_bytes, data)
        result = await ctx.world.router.sync_to_node(
            args.node,
            local,
            args.force_transport,
            remote_path=path,
            config=ctx.config(args.preset, args.config.overrides()),
        )
        if result.success:
            ctx.world.remember_push(args.node, path, data)
        return result

    def describe(self) -> str:
        return f"sync {self.sync.node} {self.sync.path}"
