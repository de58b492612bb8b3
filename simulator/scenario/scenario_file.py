"""The scenario file as a model: cluster, steps, expectations. Also the source of the
JSON Schema (``netfault schema``) that editors use to complete and check scenario files."""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from netfault.simulator.scenario.conditions import Eventually, Invariant
from netfault.simulator.scenario.expectations import ScenarioExpect
from netfault.simulator.scenario.fields import (
    Count,
    Duration,
    Flag,
    Positive,
    Preset,
    SshServer,
    Text,
    Transport,
)
from netfault.simulator.scenario.model import NodeEntry
from netfault.simulator.scenario.steps import AnyStep
from netfault.simulator.scenario.steps.expect import Timeouts
from netfault.simulator.scenario.steps.fault import FaultSpec
from netfault.simulator.scenario.typed import ScenarioModel


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _as_type(value: Any) -> Any:
    return {"type": value} if isinstance(value, str) else value


class TransportEntry(ScenarioModel):
    type: Transport
    priority: Count | None = None
    fallback: Flag | None = None
    last_resort: Flag | None = None


class ClusterNode(ScenarioModel):
    name: Text
    tailscale: Flag = True
    transports: list[
        Annotated[
            TransportEntry,
            BeforeValidator(_as_type, json_schema_input_type=Transport | TransportEntry),
        ]
    ] = []
    ssh_server: SshServer = Field(
        default="asyncssh", description="the node's SSH server: asyncssh, or the real OpenSSH sshd"
    )

    def entry(self) -> NodeEntry:
        specs = [
            t.model_dump(exclude_none=True) | {"priority": i if t.priority is None else t.priority}
            for i, t in enumerate(self.transports)
        ]
        return NodeEntry(self.name, self.tailscale, tuple(specs), self.ssh_server)


def _count_to_nodes(value: Any) -> Any:
    """``nodes: 3`` means node-1, node-2, node-3."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return [{"name": f"node-{i + 1}"} for i in range(value)]
    return value


class BreakerSettings(ScenarioModel):
    failure_threshold: Positive = 3
    recovery_timeout: Duration = 300.0
    half_open_max_wait: Duration = 600.0


class RouterSettings(ScenarioModel):
    failover_threshold: Positive = 1
    backup_transport: Transport | None = None
    escalation_order: list[Transport] | None = None


class ClusterConfig(Timeouts):
    """The cluster's ``config:``: every operation's timeouts, and the engine-wide route
    cooldown (a step cannot change it: route memory outlives one operation)."""

    route_cooldown: Duration | None = Field(
        default=None, description="how long a route that failed to connect is tried last"
    )


class ClusterModel(ScenarioModel):
    """The fake cluster: nodes (a count or a list), and the engine's settings on it."""

    nodes: Annotated[
        list[ClusterNode],
        BeforeValidator(_count_to_nodes, json_schema_input_type=Positive | list[ClusterNode]),
        Field(min_length=1, description="a count (node-1, node-2, ...) or a list of nodes"),
    ]
    preset: Preset | None = None
    config: ClusterConfig = ClusterConfig()
    breaker: BreakerSettings = BreakerSettings()
    router: RouterSettings = RouterSettings()

    @model_validator(mode="after")
    def _unique_names(self) -> ClusterModel:
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise PydanticCustomError("duplicate_node", f"node names must be unique: {names}")
        return self

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    @property
    def openssh_nodes(self) -> list[str]:
        return [n.name for n in self.nodes if n.ssh_server == "openssh"]


class ScenarioFile(ScenarioModel):
    """A scenario: a cluster, a seed, steps, and what must hold during and after them."""

    name: Text
    description: str = ""
    seed: Count = 0
    use: Annotated[
        list[Text],
        BeforeValidator(_as_list, json_schema_input_type=Text | list[Text]),
        Field(description="fault libraries (files with sets:), relative to this file"),
    ] = []
    tags: list[Text] = []
    cluster: ClusterModel
    steps: list[AnyStep] = Field(min_length=1)
    expect: ScenarioExpect = ScenarioExpect()
    always: list[Invariant] = []
    eventually: list[Eventually] = []


@cache
def json_schema() -> str:
    """The JSON Schema of scenario files (``netfault schema``), as stable, indented JSON."""
    schema = ScenarioFile.model_json_schema(by_alias=True, mode="validation")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://netfault.invalid/scenario.schema.json",
        **schema,
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


class FaultLibrary(ScenarioModel):
    """A fault library (``use:``): named sets of faults, applied by a ``faults:`` step."""

    sets: dict[str, list[FaultSpec]]
