"""The ``repeat`` step: run a list of steps a number of times."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from netfault.simulator.scenario.fields import Positive
from netfault.simulator.scenario.steps.base import StepContext, StepModel
from netfault.simulator.scenario.typed import ScenarioModel

if TYPE_CHECKING:
    from netfault.simulator.scenario.steps import AnyStep


class RepeatArgs(ScenarioModel):
    times: Positive
    steps: list[AnyStep]


class RepeatStep(StepModel):
    key: ClassVar[str] = "repeat"
    repeat: RepeatArgs

    def children(self) -> list[tuple[tuple[str | int, ...], StepModel]]:
        return [(("steps", i), step) for i, step in enumerate(self.repeat.steps)]

    async def run(self, ctx: StepContext) -> str:
        for _ in range(self.repeat.times):
            for child in self.repeat.steps:
                await child.run(ctx)
        return f"{self.repeat.times} rounds"

    def describe(self) -> str:
        return f"repeat {self.repeat.times}"
