"""Evaluating conditions and expectations against what the engine and cluster report."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from netfault.engine.events import Event, EventType
from netfault.engine.router import SyncRouter
from netfault.engine.transport import ClusterTransport
from netfault.simulator.scenario.model import Condition


@dataclass
class World:
    """Everything a check may look at, owned by the runner."""

    transport: ClusterTransport
    router: SyncRouter
    events: list[Event]
    cluster: Any
    pushed: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def remember_push(self, node: str, path: str, data: bytes) -> None:
        self.pushed.setdefault((node, path), []).append(hashlib.sha256(data).hexdigest())


def event_matches(event: Event, spec: dict[str, Any]) -> bool:
    """Every field of ``spec`` equals the event's (the type as an ``EventType`` member)."""
    return all(getattr(event, key, None) == value for key, value in spec.items())


def subset_mismatch(expected: Any, seen: Any, path: str = "") -> str | None:
    """Where ``expected`` is not contained in ``seen`` (dicts compared key by key)."""
    if isinstance(expected, dict) and isinstance(seen, dict):
        for key, value in expected.items():
            if key not in seen:
                return f"{path}{key}: missing (have {sorted(seen)})"
            found = subset_mismatch(value, seen[key], f"{path}{key}.")
            if found:
                return found
        return None
    if expected != seen:
        return f"{path.rstrip('.')}: expected {expected!r}, seen {seen!r}"
    return None


async def remote_sha(world: World, node: str, path: str) -> str | None:
    data = await world.cluster.read_remote(node, path)
    return None if data is None else hashlib.sha256(data).hexdigest()


async def check_condition(world: World, cond: Condition) -> str | None:
    """None when the condition holds, else what was seen instead."""
    kind, args = cond.kind, cond.args
    if kind == "breaker":
        seen = world.transport.get_health_summary().get(args["node"], {"state": "closed"})
        return None if seen["state"] == args["state"] else f"breaker is {seen['state']}"
    if kind == "enabled":
        disabled = world.router.is_disabled(args)
        return f"{args} is disabled" if disabled else None
    if kind == "disabled":
        return disabled_mismatch(world, args)
    if kind == "can_attempt":
        return None if world.transport.can_attempt(args) else f"breaker of {args} refuses calls"
    if kind == "event":
        found = any(event_matches(e, args) for e in world.events)
        return None if found else "no such event yet"
    if kind == "stats":
        return stats_mismatch(args, world.router.get_stats())
    if kind == "file":
        return await _file_equal(world, args["node"], args["path"])
    if kind == "intact":
        return await _intact(world, args)
    raise ValueError(f"unknown condition {kind}")


async def _file_equal(world: World, node: str, path: str) -> str | None:
    history = world.pushed.get((node, path))
    if not history:
        return f"nothing was pushed to {node}:{path} in this scenario"
    seen = await remote_sha(world, node, path)
    if seen is None:
        return f"{node}:{path} does not exist"
    return None if seen == history[-1] else f"{node}:{path} differs from what was pushed"


async def _intact(world: World, node: str) -> str | None:
    """No file under a final name holds anything but a complete pushed version."""
    for (name, path), history in world.pushed.items():
        if node not in ("all", name):
            continue
        seen = await remote_sha(world, name, path)
        if seen is not None and seen not in history:
            return f"{name}:{path} holds a partial or corrupt file under its final name"
    return None


def disabled_mismatch(world: World, spec: dict[str, Any]) -> str | None:
    """None when ``spec['node']`` is disabled with the reason/transports ``spec`` names."""
    node = spec["node"]
    disabled = world.router.get_disabled_nodes()
    if node not in disabled:
        return f"{node} is enabled"
    wanted = {k: v for k, v in spec.items() if k != "node"}
    return subset_mismatch(wanted, disabled[node])


def alert_names(alerts: list[dict[str, Any]]) -> list[str]:
    return sorted({str(a["metric"]) for a in alerts})


def alerts_seen(events: list[Event]) -> set[str]:
    """The names of the alerts raised so far."""
    return {e.outcome for e in events if e.type is EventType.ALERT and e.outcome}


def stats_mismatch(expected: dict[str, Any], stats: dict[str, Any]) -> str | None:
    """Router stats compared to a subset; ``alerts`` compared by name, like ``expect.alerts``."""
    rest = {k: v for k, v in expected.items() if k != "alerts"}
    if "alerts" in expected:
        seen = alert_names(stats.get("alerts", []))
        if sorted(set(expected["alerts"])) != seen:
            return f"alerts: expected {sorted(set(expected['alerts']))}, seen {seen}"
    return subset_mismatch(rest, stats)


def breaker_sequence(events: list[Event], node: str) -> list[str]:
    states = ["closed"]
    for e in events:
        if e.type is EventType.BREAKER_TRANSITION and e.node == node:
            states.append(str(e.data.get("to")))
    return states


def find_in_order(events: list[Event], specs: list[dict[str, Any]]) -> str | None:
    """None when ``specs`` appear as an ordered subsequence of ``events``."""
    i = 0
    for event in events:
        if i < len(specs) and event_matches(event, specs[i]):
            i += 1
    if i == len(specs):
        return None
    return f"missing {describe_event(specs[i])} (after {i} of {len(specs)} matched)"


def describe_event(spec: dict[str, Any]) -> str:
    """An event spec as written: ``ATTEMPT_FAILED(transport=ssh, error_kind=reset)``."""
    rest = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "type")
    return f"{spec['type']}({rest})" if rest else str(spec["type"])
