"""Hypothesis strategies for fault schedules, for property tests of failover and breakers.

A ``FaultSchedule`` says which named fault is switched on before which operation of a
test and when it is cleared. It prints as one line that ``FaultSchedule.from_line``
reads back, so a shrunk failing example can be replayed exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from netfault.simulator.cluster.faults import FAULT_KINDS, ROUTES, SERVICES, node_level

# Faults that decide quickly (no real-time waiting), for property tests by default.
FAST_FAULTS = (
    "reset",
    "corrupt_binary",
    "down",
    "auth_refused",
    "disk_full",
    "http_down",
    "http_5xx",
    "host_key_changed",
)


@dataclass(frozen=True)
class ScheduledFault:
    """Fault ``kind`` on before operation ``start``, cleared before operation ``stop``."""

    start: int
    stop: int
    kind: str
    node: str
    route: str | None = None
    service: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "start": self.start,
            "stop": self.stop,
            "kind": self.kind,
            "node": self.node,
            "route": self.route,
            "service": self.service,
            "params": self.params,
        }
        return {k: v for k, v in d.items() if v not in (None, {})}


@dataclass(frozen=True)
class FaultSchedule:
    seed: int
    faults: tuple[ScheduledFault, ...]

    def starting(self, op: int) -> list[ScheduledFault]:
        return [f for f in self.faults if f.start == op]

    def stopping(self, op: int) -> list[ScheduledFault]:
        return [f for f in self.faults if f.stop == op]

    def active(self, op: int) -> list[ScheduledFault]:
        return [f for f in self.faults if f.start <= op < f.stop]

    def one_line(self) -> str:
        """A reproducer: ``netfault-schedule {"seed": ..., "faults": [...]}``."""
        body = {"seed": self.seed, "faults": [f.to_dict() for f in self.faults]}
        return "netfault-schedule " + json.dumps(body, separators=(",", ":"), sort_keys=True)

    # Hypothesis prints a falsifying example with repr(): make that the reproducer
    __str__ = one_line
    __repr__ = one_line

    @classmethod
    def from_line(cls, line: str) -> FaultSchedule:
        text = line.strip().removeprefix("netfault-schedule").strip()
        body = json.loads(text)
        return cls(body["seed"], tuple(ScheduledFault(**f) for f in body["faults"]))


def _params(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    if kind == "reset":
        return st.fixed_dictionaries(
            {
                "after_bytes": st.sampled_from([0, 1024, 65536, 300_000]),
                "level": st.sampled_from(["tcp", "ssh"]),
            }
        )
    if kind == "corrupt_binary":
        return st.fixed_dictionaries({"level": st.sampled_from(["tcp", "ssh"])})
    if kind == "disk_full":
        return st.fixed_dictionaries({"quota_bytes": st.sampled_from([0, 4096, 1 << 20])})
    return st.just({})


@st.composite
def _fault(
    draw: st.DrawFn, nodes: Sequence[str], kinds: Sequence[str], operations: int
) -> ScheduledFault:
    kind = draw(st.sampled_from(list(kinds)))
    start = draw(st.integers(0, operations - 1))
    stop = draw(st.integers(start + 1, operations))
    params = draw(_params(kind))
    inside = node_level(kind, params)  # node-level faults cannot be narrowed to a route
    route = None if inside else draw(st.none() | st.sampled_from(ROUTES))
    service = None if inside else draw(st.none() | st.sampled_from(SERVICES))
    node = draw(st.sampled_from(list(nodes)))
    return ScheduledFault(start, stop, kind, node, route, service, params)


def fault_schedules(
    nodes: Sequence[str] = ("node-1",),
    *,
    kinds: Sequence[str] = FAST_FAULTS,
    operations: int = 6,
    max_faults: int = 4,
) -> st.SearchStrategy[FaultSchedule]:
    """Schedules of named faults over ``operations`` steps; shrinks toward fewer, shorter."""
    unknown = set(kinds) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}")
    return st.builds(
        FaultSchedule,
        seed=st.integers(0, 2**16),
        faults=st.lists(_fault(nodes, kinds, operations), max_size=max_faults).map(tuple),
    )


class ScheduleDriver:
    """Applies a schedule's faults to a FaultController operation by operation (blocking)."""

    def __init__(self, controller: Any, schedule: FaultSchedule) -> None:
        self.controller = controller
        self.schedule = schedule
        self._applied: dict[int, Any] = {}

    def before(self, op: int) -> list[str]:
        """Clear what ends at ``op``, switch on what starts there; return what is active."""
        for i, fault in enumerate(self.schedule.faults):
            if fault.stop == op and i in self._applied:
                self.controller.clear(self._applied.pop(i))
        for i, fault in enumerate(self.schedule.faults):
            if fault.start == op:
                self._applied[i] = self.controller.apply(
                    fault.kind, fault.node, route=fault.route, service=fault.service, **fault.params
                )
        return [self._applied[i].describe() for i in sorted(self._applied)]

    def clear(self) -> None:
        while self._applied:
            self.controller.clear(self._applied.popitem()[1])
