"""What every step model shares: strict keys, a source position, ``run`` and ``describe``.

A step is a pydantic model of its YAML mapping (``{transfer: {...}}``), registered under
its YAML key in ``steps/__init__.py``. ``run(ctx)`` performs it against the cluster, the
engine and the virtual clock and returns a one-line detail; a broken expectation raises
``StepFailed`` saying expected vs seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import PrivateAttr

from netfault.engine import ManualClock, TransportConfig
from netfault.simulator.cluster.controller import AppliedFault
from netfault.simulator.scenario.checks import World
from netfault.simulator.scenario.db_step import DbSync
from netfault.simulator.scenario.model import Where
from netfault.simulator.scenario.presets import Overrides, effective_config
from netfault.simulator.scenario.trace import FaultEvent, FaultKind
from netfault.simulator.scenario.typed import ScenarioModel

if TYPE_CHECKING:
    from netfault.simulator.scenario.fault_watch import FaultWatch
    from netfault.simulator.scenario.steps.fault import FaultBase


class StepFailed(AssertionError):
    """A step's expectation did not hold; the message says expected vs seen."""


class ScopedFault(Protocol):
    """A fault whose life follows the operations: resized before, counted down after."""

    async def before(self, ctx: StepContext, size: int) -> None: ...

    async def after(self, ctx: StepContext, count: int) -> None: ...

    def forget(self, applied: AppliedFault) -> bool:
        """``applied`` ended by itself; True when the scope has nothing left to follow."""
        ...


@dataclass
class StepContext:
    """What steps act on: the engine and cluster (``world``), the virtual clock, the seed,
    the local working directory, the cluster's timeouts and the named active faults."""

    world: World
    clock: ManualClock
    seed: int
    workdir: Path
    cluster_preset: str | None
    cluster_config: Overrides
    on_tick: Callable[[], Awaitable[None]]
    fault_sets: dict[str, list[FaultBase]] = field(default_factory=dict)
    named: dict[str, list[AppliedFault]] = field(default_factory=dict)
    scoped: dict[str, list[ScopedFault]] = field(default_factory=dict)
    db: DbSync | None = None
    trace: list[FaultEvent] = field(default_factory=list)
    watch: FaultWatch | None = None

    def record(self, kind: FaultKind, fault: str, node: str | None, **where: Any) -> None:
        """Add a fault decision to the trace, at this virtual moment and engine event;
        ``where`` holds the other ``FaultEvent`` fields (route, proxy, offset, ...)."""
        now, seq = self.clock.monotonic(), len(self.world.events)
        self.trace.append(FaultEvent(kind=kind, fault=fault, node=node, t=now, seq=seq, **where))

    async def before_operation(self, size: int) -> None:
        """Faults sized relative to the operation (``after_bytes: 60%``) follow its size."""
        for scopes in list(self.scoped.values()):
            for scoped in list(scopes):
                await scoped.before(self, size)

    async def after_operations(self, count: int) -> None:
        """Faults scoped to a number of operations (``for_operations: N``) count down."""
        for scopes in list(self.scoped.values()):
            for scoped in list(scopes):
                await scoped.after(self, count)

    async def settle(self) -> None:
        """Forget the faults that ended by themselves (``for_connections``)."""
        if self.watch is not None:
            await self.watch.settle()

    def forget(self, name: str, applied: AppliedFault) -> None:
        """``applied`` (under ``name``) is off already: drop it from ``named`` and scopes."""
        named = self.named.get(name, [])
        if applied in named:
            named.remove(applied)
        if not named:
            self.named.pop(name, None)
        scopes = self.scoped.get(name, [])
        for scope in list(scopes):
            if scope.forget(applied):
                scopes.remove(scope)
        if not scopes:
            self.scoped.pop(name, None)

    async def clear(self, name: str) -> None:
        """Switch off the faults applied under ``name`` and forget its scope."""
        self.scoped.pop(name, None)
        for fault in self.named.pop(name, []):
            await self.in_thread(self.world.cluster.faults.clear, fault)
            self.record(FaultKind.CLEARED, fault.kind, fault.node, **fault_where(fault, name))

    def config(self, preset: str | None = None, config: Overrides | None = None) -> TransportConfig:
        """An operation's timeouts (precedence in ``presets``)."""
        return effective_config(self.cluster_preset, self.cluster_config, preset, config)

    async def in_thread(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(call, *args, **kwargs)


class StepModel(ScenarioModel):
    """One step: the YAML key is its only field; ``run`` and ``describe`` define it."""

    key: ClassVar[str]
    _where: Where = PrivateAttr(default=Where("", 0))
    _index: int = PrivateAttr(default=0)

    @property
    def kind(self) -> str:
        return self.key

    @property
    def where(self) -> Where:
        return self._where

    @property
    def index(self) -> int:
        return self._index

    def place(self, where: Where, index: int) -> None:
        self._where, self._index = where, index

    def children(self) -> list[tuple[tuple[str | int, ...], StepModel]]:
        """Nested steps with their path under this step's mapping (repeat, wait_for)."""
        return []

    async def run(self, ctx: StepContext) -> str:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def fault_where(applied: AppliedFault, name: str) -> dict[str, Any]:
    """The trace fields that say which fault ``applied`` is and where it acts."""
    return {"name": name, "route": applied.route, "service": applied.service}
