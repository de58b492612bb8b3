"""The ``db_sync`` step: merge a node's SQLite records through the router."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.scenario.db_step import DbSync
from netfault.simulator.scenario.fields import Count, NodeName, Preset, Text, Transport
from netfault.simulator.scenario.steps.base import StepContext, StepFailed, StepModel
from netfault.simulator.scenario.steps.expect import Timeouts
from netfault.simulator.scenario.typed import ScenarioModel


class DbExpect(ScenarioModel):
    outcome: Text | None = None
    transport: Transport | None = None
    records: Count | None = None
    changes: Count | None = None


class DbSyncArgs(ScenarioModel):
    node: NodeName
    rows: Count = 100
    expect: DbExpect = DbExpect()
    preset: Preset | None = None
    config: Timeouts = Timeouts()


class DbSyncStep(StepModel):
    key: ClassVar[str] = "db_sync"
    db_sync: DbSyncArgs

    async def run(self, ctx: StepContext) -> str:
        args = self.db_sync
        config = ctx.config(args.preset, args.config.overrides())
        if ctx.db is None:
            ctx.db = DbSync(ctx.world, ctx.workdir, ctx.seed, config)
        ctx.db.manager.config = config
        try:
            seen, detail = await ctx.db.run(args.node, args.rows)
        finally:
            await ctx.after_operations(1)
        wanted = args.expect.model_dump(include=args.expect.model_fields_set)
        problems = [
            f"{k}: expected {v!r}, seen {seen[k]!r}" for k, v in wanted.items() if seen[k] != v
        ]
        if problems:
            raise StepFailed("; ".join(problems) + f" [{detail}]")
        return detail

    def describe(self) -> str:
        return f"db_sync {self.db_sync.node}"
