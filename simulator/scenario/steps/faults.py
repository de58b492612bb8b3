"""The ``faults`` step: a named set of faults from a fault library, on one node."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from netfault.simulator.scenario.fields import NodeName, Text
from netfault.simulator.scenario.steps.base import StepContext, StepModel
from netfault.simulator.scenario.steps.fault import FaultSpec, start_fault
from netfault.simulator.scenario.typed import ScenarioModel


class FaultSetArgs(ScenarioModel):
    set: Text
    node: NodeName
    name: Text | None = Field(default=None, alias="as")

    @field_validator("set")
    @classmethod
    def _known_set(cls, value: str, info: ValidationInfo) -> str:
        known: dict[str, list[FaultSpec]] = (info.context or {}).get("fault_sets", {})
        if value not in known:
            names = ", ".join(known) or "none (add use: [faults/FILE.yaml])"
            message = f"unknown fault set {value!r} (known: {names})"
            raise PydanticCustomError("unknown_set", message)
        return value


class FaultsStep(StepModel):
    """``faults: {set, node, [as]}``: every fault of the set, cleared together by name."""

    key: ClassVar[str] = "faults"
    faults: FaultSetArgs

    async def run(self, ctx: StepContext) -> str:
        args = self.faults
        name = args.name or args.set
        faults = ctx.fault_sets[args.set]
        applied = [await start_fault(ctx, f, args.node, name) for f in faults]
        return "; ".join(applied)

    def describe(self) -> str:
        return f"faults {self.faults.node} {self.faults.set}"
