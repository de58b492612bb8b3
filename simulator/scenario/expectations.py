"""A scenario's top-level ``expect:``: checked once, after the last step."""

from __future__ import annotations

from typing import Literal

from netfault.simulator.scenario.checks import (
    World,
    alerts_seen,
    breaker_sequence,
    file_equal,
    stats_mismatch,
    subset_mismatch,
)
from netfault.simulator.scenario.conditions import EventFields, EventSpec, StatsFields
from netfault.simulator.scenario.fields import (
    AlertName,
    BreakerStateName,
    NodeName,
    RemotePath,
    Text,
    Transport,
)
from netfault.simulator.scenario.typed import ScenarioModel


class DisabledDetail(ScenarioModel):
    reason: Text | None = None
    failed_transports: list[Transport] | None = None


class ScenarioExpect(ScenarioModel):
    """What must hold at the end of the scenario; omitted keys are not checked."""

    breaker: dict[NodeName, list[BreakerStateName]] = {}
    disabled: dict[NodeName, Literal[False] | DisabledDetail] = {}
    events: list[EventSpec] | None = None
    no_events: list[EventSpec] = []
    files: dict[NodeName, list[RemotePath]] = {}
    stats: StatsFields | None = None
    alerts: list[AlertName] = []

    async def problems(self, world: World) -> list[str]:
        """Every expectation that does not hold, as 'key: expected vs seen'."""
        problems = self._breakers(world) + self._disabled(world)
        if self.events is not None:
            missing = find_in_order(world, self.events)
            if missing:
                problems.append(f"events: {missing}")
        for spec in self.no_events:
            if any(spec.matches(e) for e in world.events):
                problems.append(f"no_events: {spec.describe()} was emitted")
        if self.stats is not None:
            mismatch = stats_mismatch(self.stats.wanted(), world.router.get_stats())
            if mismatch:
                problems.append(f"stats {mismatch}")
        seen_alerts = alerts_seen(world.events)
        for metric in self.alerts:
            if metric not in seen_alerts:
                problems.append(f"alerts: expected {metric}, seen {sorted(seen_alerts) or 'none'}")
        for node, paths in self.files.items():
            for path in paths:
                seen = await file_equal(world, node, path)
                if seen is not None:
                    problems.append(f"files: {seen}")
        return problems

    def _breakers(self, world: World) -> list[str]:
        problems = []
        for node, states in self.breaker.items():
            seen = breaker_sequence(world.events, node)
            if seen != states:
                problems.append(
                    f"breaker {node}: expected {' -> '.join(states)}, seen {' -> '.join(seen)}"
                )
        return problems

    def _disabled(self, world: World) -> list[str]:
        problems = []
        disabled = world.router.get_disabled_nodes()
        for node, want in self.disabled.items():
            if want is False:
                if node in disabled:
                    problems.append(f"disabled {node}: expected enabled, seen {disabled[node]}")
            elif node not in disabled:
                problems.append(f"disabled {node}: expected disabled, seen enabled")
            else:
                wanted = want.model_dump(include=want.model_fields_set)
                mismatch = subset_mismatch(wanted, disabled[node])
                if mismatch:
                    problems.append(f"disabled {node}: {mismatch}")
        return problems


def find_in_order(world: World, specs: list[EventFields]) -> str | None:
    """None when ``specs`` appear as an ordered subsequence of the events."""
    i = 0
    for event in world.events:
        if i < len(specs) and specs[i].matches(event):
            i += 1
    if i == len(specs):
        return None
    return f"missing {specs[i].describe()} (after {i} of {len(specs)} matched)"
