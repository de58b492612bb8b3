"""The ``parallel`` step: operations at once, with expectations over all their outcomes.

``parallel: {count: 20, step: {transfer: ...}}`` runs 20 copies of one operation (copy i
moves ``PATH-i``), ``parallel: {steps: [...]}`` runs different ones. Each copy's result is
kept; ``expect:`` counts them (how many succeeded, by error kind, how many reached the
network), which is how a guarantee such as "a half-open breaker lets exactly one probe
through" is said.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from netfault.simulator.scenario.fields import Count, ErrorKind, Positive, Transport
from netfault.simulator.scenario.steps.base import StepContext, StepFailed, StepModel
from netfault.simulator.scenario.steps.operation import OperationResult, OperationStep
from netfault.simulator.scenario.typed import ScenarioModel

if TYPE_CHECKING:
    from netfault.simulator.scenario.steps import AnyStep


class ParallelExpect(ScenarioModel):
    """Counts over the operations' results; omitted keys are not checked."""

    succeeded: Count | None = None
    failed: Count | None = None
    error_kinds: dict[ErrorKind, Count] | None = Field(
        default=None, description="failed operations by their error kind"
    )
    transports_used: dict[Transport, Count] | None = Field(
        default=None, description="succeeded operations by the transport that won"
    )
    reached_network: Count | None = Field(
        default=None, description="operations that made at least one attempt"
    )
    attempts: Count | None = Field(default=None, description="attempts over all operations")

    def problems(self, results: list[OperationResult]) -> list[str]:
        seen = tally(results)
        wanted = self.model_dump(include=self.model_fields_set)
        return [f"{k}: expected {v!r}, seen {seen[k]!r}" for k, v in wanted.items() if seen[k] != v]


def tally(results: list[OperationResult]) -> dict[str, Any]:
    return {
        "succeeded": sum(r.success for r in results),
        "failed": sum(not r.success for r in results),
        "error_kinds": dict(Counter(r.error_kind for r in results if not r.success)),
        "transports_used": dict(Counter(r.transport_used for r in results if r.success)),
        "reached_network": sum(bool(r.attempts) for r in results),
        "attempts": sum(len(r.attempts) for r in results),
    }


class ParallelArgs(ScenarioModel):
    count: Positive | None = Field(default=None, description="copies of step: run at once")
    step: AnyStep | None = None
    steps: list[AnyStep] | None = None
    expect: ParallelExpect = ParallelExpect()

    @model_validator(mode="after")
    def _operations(self) -> ParallelArgs:
        if (self.step is None) == (self.steps is None) or (self.count and self.steps):
            raise PydanticCustomError(
                "parallel_shape", "write either count: N with step: {...}, or steps: [...]"
            )
        for step in self.operations():
            if not isinstance(step, OperationStep):
                raise PydanticCustomError(
                    "parallel_step",
                    f"parallel runs transfer, sync or http steps, not {step.kind}",
                )
            if "expect" in getattr(step, step.kind).model_fields_set:
                raise PydanticCustomError(
                    "parallel_expect",
                    f"a {step.kind} under parallel: has no expect: of its own; "
                    "write the counts in parallel.expect",
                )
        return self

    def operations(self) -> list[StepModel]:
        return [self.step] if self.step is not None else list(self.steps or [])


class ParallelStep(StepModel):
    key: ClassVar[str] = "parallel"
    parallel: ParallelArgs

    def children(self) -> list[tuple[tuple[str | int, ...], StepModel]]:
        args = self.parallel
        if args.step is not None:
            return [(("step",), args.step)]
        return [(("steps", i), s) for i, s in enumerate(args.steps or [])]

    def _runs(self) -> list[tuple[OperationStep, int | None]]:
        args = self.parallel
        ops = [s for s in args.operations() if isinstance(s, OperationStep)]
        if args.step is not None and args.count:
            return [(ops[0], i) for i in range(1, args.count + 1)]
        return [(op, None) for op in ops]

    async def run(self, ctx: StepContext) -> str:
        runs = self._runs()
        await ctx.before_operation(max(op.size() for op, _ in runs))
        try:
            results = list(await asyncio.gather(*(op.perform(ctx, copy) for op, copy in runs)))
        finally:
            await ctx.after_operations(len(runs))
        seen = tally(results)
        problems = self.parallel.expect.problems(results)
        if problems:
            raise StepFailed("; ".join(problems) + f" [{seen}]")
        return ", ".join(f"{k}={v}" for k, v in seen.items())

    def describe(self) -> str:
        kinds = " ".join(f"{s.describe()}" for s in self.parallel.operations())
        count = self.parallel.count
        return f"parallel {count} x {kinds}" if count else f"parallel {kinds}"
