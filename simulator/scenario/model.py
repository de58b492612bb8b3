"""A loaded scenario: plain data plus the typed steps and expectations. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netfault.simulator.scenario.conditions import Eventually, Invariant
    from netfault.simulator.scenario.expectations import ScenarioExpect
    from netfault.simulator.scenario.scenario_file import ClusterModel
    from netfault.simulator.scenario.steps import StepModel
    from netfault.simulator.scenario.steps.fault import FaultBase


@dataclass(frozen=True)
class Where:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class NodeEntry:
    name: str
    tailscale: bool = True
    transports: tuple[dict[str, Any], ...] = ()
    ssh_server: str = "asyncssh"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    path: Path
    seed: int
    cluster: ClusterModel
    steps: tuple[StepModel, ...]
    expect: ScenarioExpect
    always: tuple[Invariant, ...] = ()
    eventually: tuple[Eventually, ...] = ()
    tags: tuple[str, ...] = ()
    expect_where: Where = Where("", 0)
    fault_sets: dict[str, list[FaultBase]] = field(default_factory=dict)

    @property
    def node_names(self) -> list[str]:
        return self.cluster.node_names
