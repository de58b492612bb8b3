"""Conditions (``check:``, ``always:``, ``eventually:``, ``wait_for:``) and the specs they share
with ``expect:``: typed models, each holding or not against the engine and the cluster."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PrivateAttr, model_validator
from pydantic_core import PydanticCustomError

from netfault.engine import Event, EventType
from netfault.simulator.scenario.checks import (
    World,
    disabled_mismatch,
    file_equal,
    intact,
    no_partials,
    stats_mismatch,
)
from netfault.simulator.scenario.fields import (
    AlertName,
    AttemptName,
    BreakerStateName,
    Count,
    Duration,
    ErrorKind,
    NodeName,
    NodeOrAll,
    RemotePath,
    Text,
    Transport,
)
from netfault.simulator.scenario.model import Where
from netfault.simulator.scenario.typed import ScenarioModel


def _named(field: str, bare: Any) -> Any:
    """Accept a bare value (of type ``bare``) as ``{field: value}``."""

    def wrap(value: Any) -> Any:
        return {field: value} if isinstance(value, str) else value

    return BeforeValidator(wrap, json_schema_input_type=bare)


class EventFields(ScenarioModel):
    """An engine event by its type and, optionally, the fields it must carry."""

    type: EventType
    node: NodeName | None = None
    transport: AttemptName | None = None
    outcome: Text | None = None
    error_kind: ErrorKind | None = None

    def matches(self, event: Event) -> bool:
        wanted = self.model_dump(include=self.model_fields_set | {"type"})
        return all(getattr(event, key) == value for key, value in wanted.items())

    def describe(self) -> str:
        rest = ", ".join(
            f"{k}={v}" for k, v in self.model_dump(include=self.model_fields_set - {"type"}).items()
        )
        return f"{self.type}({rest})" if rest else str(self.type)


EventSpec = Annotated[EventFields, _named("type", EventType | EventFields)]


class DisabledFields(ScenarioModel):
    """A node the router has disabled, optionally why and after which transports."""

    node: NodeName
    reason: Text | None = None
    failed_transports: list[Transport] | None = None

    def wanted(self) -> dict[str, Any]:
        return self.model_dump(include=self.model_fields_set - {"node"})


DisabledSpec = Annotated[DisabledFields, _named("node", NodeName | DisabledFields)]


class BreakerFields(ScenarioModel):
    node: NodeName
    state: BreakerStateName


class FileFields(ScenarioModel):
    node: NodeName
    path: RemotePath


class StatsFields(ScenarioModel):
    """A subset of ``SyncRouter.get_stats()``; ``alerts`` by name, as in ``expect.alerts``."""

    active_transports: dict[str, Count] | None = None
    total_nodes: Count | None = None
    disabled_node_count: Count | None = None
    escalations_today: Count | None = None
    escalations_last_hour: Count | None = None
    transport_failures_last_hour: dict[str, Count] | None = None
    alerts: list[AlertName] | None = None

    def wanted(self) -> dict[str, Any]:
        return self.model_dump(include=self.model_fields_set)


CONDITION_KEYS = (
    "breaker",
    "disabled",
    "enabled",
    "can_attempt",
    "event",
    "file",
    "intact",
    "no_partials",
    "stats",
)


class Condition(ScenarioModel):
    """Exactly one of the condition keys; ``holds`` gives None or what was seen instead."""

    breaker: BreakerFields | None = None
    disabled: DisabledSpec | None = None
    enabled: NodeName | None = None
    can_attempt: NodeName | None = None
    event: EventSpec | None = None
    file: FileFields | None = None
    intact: NodeOrAll | None = None
    no_partials: NodeOrAll | None = Field(
        default=None, description="no temporary or partial file anywhere under the node's files"
    )
    stats: StatsFields | None = None
    _where: Where = PrivateAttr(default=Where("", 0))

    @model_validator(mode="after")
    def _exactly_one(self) -> Condition:
        picked = [k for k in CONDITION_KEYS if getattr(self, k) is not None]
        if len(picked) != 1:
            raise PydanticCustomError(
                "one_condition", f"expected exactly one of: {', '.join(CONDITION_KEYS)}"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in CONDITION_KEYS if getattr(self, k) is not None)

    @property
    def where(self) -> Where:
        return self._where

    def place(self, where: Where) -> None:
        self._where = where

    def describe(self) -> str:
        value = getattr(self, self.kind)
        if isinstance(value, EventFields):
            inner = value.describe()
        elif isinstance(value, ScenarioModel):
            inner = ", ".join(f"{k}={v}" for k, v in value.model_dump(exclude_none=True).items())
        else:
            inner = str(value)
        return f"{self.kind}({inner})"

    async def holds(self, world: World) -> str | None:
        """None when the condition holds, else what was seen instead."""
        if self.breaker is not None:
            summary = world.transport.get_health_summary()
            seen = summary.get(self.breaker.node, {"state": "closed"})["state"]
            return None if seen == self.breaker.state else f"breaker is {seen}"
        if self.disabled is not None:
            return disabled_mismatch(world, self.disabled.node, self.disabled.wanted())
        if self.enabled is not None:
            return f"{self.enabled} is disabled" if world.router.is_disabled(self.enabled) else None
        if self.can_attempt is not None:
            ok = world.transport.can_attempt(self.can_attempt)
            return None if ok else f"breaker of {self.can_attempt} refuses calls"
        if self.event is not None:
            found = any(self.event.matches(e) for e in world.events)
            return None if found else "no such event yet"
        if self.stats is not None:
            return stats_mismatch(self.stats.wanted(), world.router.get_stats())
        if self.file is not None:
            return await file_equal(world, self.file.node, self.file.path)
        if self.no_partials is not None:
            return await no_partials(world, self.no_partials)
        assert self.intact is not None
        return await intact(world, self.intact)


class Invariant(Condition):
    """An ``always:`` entry."""


class Eventually(Condition):
    """An ``eventually:`` entry: the condition must hold within ``within`` virtual seconds."""

    within: Duration

    def describe(self) -> str:
        return f"{super().describe()} within {self.within:g}s"
