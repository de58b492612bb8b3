"""What conditions and expectations look at: the engine, the cluster and what was pushed."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from netfault.engine import ClusterTransport, Event, EventType, SyncRouter, part_name
from netfault.simulator.cluster.spec import Cluster
from netfault.simulator.node.paths import partial_path


@dataclass
class World:
    """Everything a check may look at, owned by the runner."""

    transport: ClusterTransport
    router: SyncRouter
    events: list[Event]
    cluster: Cluster
    pushed: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def remember_push(self, node: str, path: str, data: bytes) -> None:
        self.pushed.setdefault((node, path), []).append(hashlib.sha256(data).hexdigest())


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


async def file_equal(world: World, node: str, path: str) -> str | None:
    history = world.pushed.get((node, path))
    if not history:
        return f"nothing was pushed to {node}:{path} in this scenario"
    seen = await remote_sha(world, node, path)
    if seen is None:
        return f"{node}:{path} does not exist"
    return None if seen == history[-1] else f"{node}:{path} differs from what was pushed"


async def intact(world: World, node: str) -> str | None:
    """No file under a final name holds anything but a complete pushed version."""
    for (name, path), history in world.pushed.items():
        if node not in ("all", name):
            continue
        seen = await remote_sha(world, name, path)
        if seen is not None and seen not in history:
            return f"{name}:{path} holds a partial or corrupt file under its final name"
    return None


def _pattern(naming: Callable[[str], str]) -> tuple[str, str]:
    """(prefix, suffix) of the temporary names a naming function gives."""
    prefix, _, suffix = naming("NAME").rpartition("/")[2].partition("NAME")
    return prefix, suffix


# How the engine's exec transports and the node's HTTP agent name a file being received.
PARTIAL_NAMES = (
    _pattern(part_name),
    _pattern(lambda name: partial_path(PurePosixPath(name)).name),  # type: ignore[arg-type]
)


def partial_files(root: Path) -> list[tuple[str, int]]:
    """Temporary or partial files under ``root`` (relative path, size)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.name
        if any(name.startswith(a) and name.endswith(b) for a, b in PARTIAL_NAMES):
            found.append((str(path.relative_to(root)), path.stat().st_size))
    return found


async def no_partials(world: World, node: str) -> str | None:
    """No temporary or partial file anywhere under the node's files, and every final name
    holds a complete pushed version."""
    names = list(world.cluster.nodes) if node == "all" else [node]
    for name in names:
        root = world.cluster.home_path(name, "")
        if root is None:
            return "no_partials needs a backend whose node files are reachable here"
        found = await asyncio.to_thread(partial_files, root)
        if found:
            listed = ", ".join(f"{p} ({size} bytes)" for p, size in found[:3])
            return f"{name} holds {len(found)} partial file(s): {listed}"
    return await intact(world, node)


def disabled_mismatch(world: World, node: str, wanted: dict[str, Any]) -> str | None:
    """None when ``node`` is disabled with the reason/transports in ``wanted``."""
    disabled = world.router.get_disabled_nodes()
    if node not in disabled:
        return f"{node} is enabled"
    return subset_mismatch(wanted, disabled[node])


def alert_names(alerts: list[dict[str, Any]]) -> list[str]:
    return sorted({str(a["metric"]) for a in alerts})


def alerts_seen(events: list[Event]) -> set[str]:
    """The names of the alerts raised so far."""
    return {e.outcome for e in events if e.type is EventType.ALERT and e.outcome}


def stats_mismatch(expected: dict[str, Any], stats: Mapping[str, Any]) -> str | None:
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
