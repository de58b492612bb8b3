"""A validated scenario: cluster, seed, steps, expectations. Plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Where:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Condition:
    """Something that holds or not at a moment: breaker state, node disabled, event seen..."""

    kind: str
    args: Any
    where: Where
    within: float | None = None

    def describe(self) -> str:
        if isinstance(self.args, dict):
            inner = ", ".join(f"{k}={v}" for k, v in self.args.items())
            return f"{self.kind}({inner})"
        return f"{self.kind}({self.args})"


@dataclass(frozen=True)
class Step:
    kind: str
    args: Any
    where: Where
    index: int
    children: tuple[Step, ...] = ()

    def describe(self) -> str:
        if isinstance(self.args, Condition):
            return f"{self.kind} {self.args.describe()}"
        if isinstance(self.args, dict) and isinstance(self.args.get("condition"), Condition):
            return f"{self.kind} {self.args['condition'].describe()}"
        if isinstance(self.args, dict):
            keys = ("kind", "node", "direction", "path", "endpoint", "transport", "times", "set")
            inner = " ".join(str(self.args[k]) for k in keys if self.args.get(k) is not None)
            return f"{self.kind} {inner}".strip()
        return f"{self.kind} {self.args}"


@dataclass(frozen=True)
class NodeEntry:
    name: str
    tailscale: bool = True
    transports: tuple[dict[str, Any], ...] = ()
    ssh_server: str = "asyncssh"


@dataclass(frozen=True)
class ClusterSpec:
    nodes: tuple[NodeEntry, ...]
    config: dict[str, float | None]  # TransportConfig fields, and route_cooldown
    breaker: dict[str, float]
    router: dict[str, Any]
    preset: str = "scenario"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    path: Path
    seed: int
    cluster: ClusterSpec
    steps: tuple[Step, ...]
    expect: dict[str, Any] = field(default_factory=dict)
    always: tuple[Condition, ...] = ()
    eventually: tuple[Condition, ...] = ()
    tags: tuple[str, ...] = ()
    expect_where: Where = Where("", 0)

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.cluster.nodes]
