"""What the operation steps (``transfer``, ``sync``, ``http``) share: one ``perform`` that
``run`` checks against the step's ``expect:`` and ``parallel`` runs many times at once."""

from __future__ import annotations

import posixpath

from netfault.engine import HttpResult, TransferResult
from netfault.simulator.scenario.steps.base import StepContext, StepModel
from netfault.simulator.scenario.steps.expect import OperationExpect, summarize

OperationResult = TransferResult | HttpResult


def copy_path(path: str, copy: int | None) -> str:
    """``path`` for the ``copy``-th of concurrent operations (``a/b.bin`` -> ``a/b-3.bin``)."""
    if copy is None:
        return path
    root, ext = posixpath.splitext(path)
    return f"{root}-{copy}{ext}"


class OperationStep(StepModel):
    """A step that performs one engine operation and compares its result."""

    def size(self) -> int:
        """Bytes the operation moves (faults sized in % of it follow this)."""
        return 0

    def expectation(self) -> OperationExpect:
        raise NotImplementedError

    async def perform(self, ctx: StepContext, copy: int | None = None) -> OperationResult:
        raise NotImplementedError

    async def run(self, ctx: StepContext) -> str:
        await ctx.before_operation(self.size())
        try:
            result = await self.perform(ctx)
        finally:
            await ctx.after_operations(1)
        self.expectation().check(result)
        return summarize(result)
