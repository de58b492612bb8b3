"""Scenario steps, one module per kind, registered here under their YAML key.

A step is a mapping with exactly one key, the step kind; ``AnyStep`` is the union of every
step model discriminated by that key, so validation errors name the kind's own fields and
the JSON Schema offers each kind with its fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Discriminator, Tag

from netfault.simulator.scenario.steps.advance import AdvanceStep
from netfault.simulator.scenario.steps.base import StepContext, StepFailed, StepModel
from netfault.simulator.scenario.steps.check import CheckStep
from netfault.simulator.scenario.steps.clear import ClearStep
from netfault.simulator.scenario.steps.db_sync import DbSyncStep
from netfault.simulator.scenario.steps.fault import FaultStep
from netfault.simulator.scenario.steps.faults import FaultsStep
from netfault.simulator.scenario.steps.http import HttpStep
from netfault.simulator.scenario.steps.parallel import ParallelArgs, ParallelStep
from netfault.simulator.scenario.steps.prefer import PreferStep
from netfault.simulator.scenario.steps.reenable import ReenableStep
from netfault.simulator.scenario.steps.repeat import RepeatArgs, RepeatStep
from netfault.simulator.scenario.steps.reset_breakers import ResetBreakersStep
from netfault.simulator.scenario.steps.reset_transport_failures import (
    ResetTransportFailuresStep,
)
from netfault.simulator.scenario.steps.sync import SyncStep
from netfault.simulator.scenario.steps.test_transport import TestTransportStep
from netfault.simulator.scenario.steps.transfer import TransferStep
from netfault.simulator.scenario.steps.wait_for import WaitForArgs, WaitForStep

STEP_TYPES: tuple[type[StepModel], ...] = (
    FaultStep,
    FaultsStep,
    ClearStep,
    AdvanceStep,
    TransferStep,
    SyncStep,
    DbSyncStep,
    HttpStep,
    TestTransportStep,
    WaitForStep,
    CheckStep,
    RepeatStep,
    ParallelStep,
    ReenableStep,
    PreferStep,
    ResetTransportFailuresStep,
    ResetBreakersStep,
)
STEP_KINDS: dict[str, type[StepModel]] = {cls.key: cls for cls in STEP_TYPES}


def step_kind(value: Any) -> str | None:
    """The YAML key of a step mapping (None when it is not a one-key mapping)."""
    if isinstance(value, StepModel):
        return value.key
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return key if key in STEP_KINDS else None
    return None


if TYPE_CHECKING:
    AnyStep = StepModel
else:
    AnyStep = Annotated[
        Union[tuple(Annotated[cls, Tag(cls.key)] for cls in STEP_TYPES)],  # noqa: UP007
        Discriminator(
            step_kind,
            custom_error_type="unknown_step",
            custom_error_message="a step is a mapping with exactly one key out of: "
            + ", ".join(STEP_KINDS),
        ),
    ]
    RepeatArgs.model_rebuild(_types_namespace={"AnyStep": AnyStep})
    WaitForArgs.model_rebuild(_types_namespace={"AnyStep": AnyStep})
    ParallelArgs.model_rebuild(_types_namespace={"AnyStep": AnyStep})
    RepeatStep.model_rebuild()
    ParallelStep.model_rebuild()
    WaitForStep.model_rebuild()

__all__ = ["STEP_KINDS", "STEP_TYPES", "AnyStep", "StepContext", "StepFailed", "StepModel"]
