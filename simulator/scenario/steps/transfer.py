"""The ``transfer`` step: push or pull one file through ``ClusterTransport.transfer_file``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar, Literal

from netfault.engine import TransferResult
from netfault.simulator.scenario.fields import NodeName, Preset, RemotePath, Size, Transport
from netfault.simulator.scenario.steps.base import StepContext, StepFailed
from netfault.simulator.scenario.steps.expect import OperationExpect, Timeouts, payload
from netfault.simulator.scenario.steps.operation import OperationStep, copy_path
from netfault.simulator.scenario.typed import ScenarioModel


class TransferArgs(ScenarioModel):
    node: NodeName
    path: RemotePath
    direction: Literal["push", "pull"] = "push"
    size: Size = 64 * 1024
    transports: list[Transport] | None = None
    expect: OperationExpect = OperationExpect()
    preset: Preset | None = None
    config: Timeouts = Timeouts()


class TransferStep(OperationStep):
    key: ClassVar[str] = "transfer"
    transfer: TransferArgs

    def size(self) -> int:
        return self.transfer.size

    def expectation(self) -> OperationExpect:
        return self.transfer.expect

    async def perform(self, ctx: StepContext, copy: int | None = None) -> TransferResult:
        args = self.transfer
        node, path = args.node, copy_path(args.path, copy)
        data = payload(ctx.seed, node, path, args.size)
        local = ctx.workdir / hashlib.sha1(f"{node}:{path}".encode()).hexdigest()
        if args.direction == "push":
            await ctx.in_thread(local.write_bytes, data)
        else:
            await place_on_node(ctx, node, path, data)
            await ctx.in_thread(local.unlink, True)
        result = await ctx.world.transport.transfer_file(
            local,
            path,
            ctx.world.cluster.node(node),
            args.direction,
            ctx.config(args.preset, args.config.overrides()),
            transports=args.transports,
        )
        if result.success and args.direction == "push":
            ctx.world.remember_push(node, path, data)
        if args.expect.content_equal and result.success:
            await check_content(ctx, args.direction, node, path, local, data)
        return result

    def describe(self) -> str:
        return f"transfer {self.transfer.node} {self.transfer.direction} {self.transfer.path}"


async def place_on_node(ctx: StepContext, node: str, path: str, data: bytes) -> None:
    target = ctx.world.cluster.home_path(node, path)
    if target is None:
        raise StepFailed("pull needs a backend whose node files are reachable here")

    def write() -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    await ctx.in_thread(write)
    ctx.world.remember_push(node, path, data)


async def check_content(
    ctx: StepContext, direction: str, node: str, path: str, local: Path, data: bytes
) -> None:
    if direction == "push":
        seen = await ctx.world.cluster.read_remote(node, path)
    else:
        seen = await ctx.in_thread(lambda: local.read_bytes() if local.exists() else None)
    if seen != data:
        got = "no file" if seen is None else f"{len(seen)} bytes that differ"
        raise StepFailed(f"content: expected the {len(data)} bytes sent, seen {got}")
