"""Field types of scenario models: each checks its value against its vocabulary (from
``vocab``) and shows the allowed values in the JSON Schema and in its error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from netfault.engine import BadRemotePathError, NodeConfig, confine_remote_path
from netfault.simulator.node.faults import SSH_SERVERS
from netfault.simulator.node.node import DEFAULT_BASE_PATH
from netfault.simulator.scenario import vocab
from netfault.simulator.scenario.presets import CONFIG_FIELDS, PRESETS
from netfault.simulator.scenario.units import parse_duration, parse_size


def one_of(values: Callable[[], tuple[str, ...]]) -> Any:
    """A string out of ``values()``; the error names the allowed values."""

    def check(value: str) -> str:
        allowed = values()
        if value not in allowed:
            raise PydanticCustomError(
                "not_in_vocabulary", f"{value!r} is not one of: {', '.join(allowed)}"
            )
        return value

    schema = {"type": "string", "enum": list(values())}
    return Annotated[str, AfterValidator(check), WithJsonSchema(schema)]


def _node(value: str, info: ValidationInfo) -> str:
    nodes: list[str] | None = (info.context or {}).get("nodes")
    if nodes is not None and value not in nodes:
        raise PydanticCustomError(
            "unknown_node", f"unknown node {value!r} (cluster has: {', '.join(nodes)})"
        )
    return value


def _node_or_all(value: str, info: ValidationInfo) -> str:
    return value if value == "all" else _node(value, info)


def _confined(value: str, info: ValidationInfo) -> str:
    """A remote path the engine would accept on a cluster node (under its base path), by
    the engine's own rule: a scenario whose path escapes fails to load, not to run."""
    node = (info.data or {}).get("node") if isinstance(info.data, dict) else None
    where = NodeConfig(node if isinstance(node, str) else "the node", base_path=DEFAULT_BASE_PATH)
    try:
        confine_remote_path(where, value)
    except BadRemotePathError as exc:  # a scenario's nodes cannot opt in to absolute paths
        message = str(exc).replace(" (or set allow_absolute_paths on the node)", "")
        raise PydanticCustomError("bad_remote_path", message) from None
    return value


def _parsed(parse: Callable[[object], Any]) -> Callable[[object], Any]:
    def check(value: object) -> Any:
        try:
            return parse(value)
        except ValueError as exc:
            raise PydanticCustomError("bad_value", str(exc)) from None

    return check


NodeName = Annotated[str, AfterValidator(_node), Field(min_length=1)]
NodeOrAll = Annotated[str, AfterValidator(_node_or_all), Field(min_length=1)]
Transport = one_of(vocab.transports)
AttemptName = one_of(vocab.attempt_names)
RouteName = one_of(vocab.http_route_names)
ErrorKind = one_of(vocab.error_kinds)
BreakerStateName = one_of(lambda: vocab.BREAKER_STATES)
AlertName = one_of(vocab.alert_names)
Preset = one_of(lambda: tuple(PRESETS))
SshServer = one_of(lambda: SSH_SERVERS)
Duration = Annotated[
    float,
    BeforeValidator(_parsed(parse_duration)),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"},
            ],
            "description": "seconds, or a string like 250ms, 30s, 5m, 1h",
        }
    ),
]
OFF = "off"


def _delay_or_off(value: object) -> float | str:
    """A duration, or ``off`` (which YAML reads as false when bare)."""
    if value is False or value == OFF:
        return OFF
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{exc}, or off for sequential failover") from None


RaceDelay = Annotated[
    float | Literal["off"],
    BeforeValidator(_parsed(_delay_or_off)),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"},
                {"enum": [OFF, False]},
            ],
            "description": "a duration (250ms, 1s), or off for strictly sequential failover",
        }
    ),
]
Size = Annotated[
    int,
    BeforeValidator(_parsed(parse_size)),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$"},
            ],
            "description": "bytes, or a string like 64KiB, 1MB",
        }
    ),
]
Count = Annotated[StrictInt, Field(ge=0)]
Positive = Annotated[StrictInt, Field(ge=1)]
Flag = StrictBool
Text = Annotated[str, Field(min_length=1)]
RemotePath = Annotated[
    str,
    Field(min_length=1, description="relative to the node's base path; no absolute path or .."),
    AfterValidator(_confined),
]
ConfigKey = one_of(lambda: CONFIG_FIELDS)
__all__ = [
    "AlertName",
    "AttemptName",
    "BreakerStateName",
    "ConfigKey",
    "Count",
    "Duration",
    "ErrorKind",
    "Flag",
    "NodeName",
    "NodeOrAll",
    "Positive",
    "Preset",
    "RaceDelay",
    "RemotePath",
    "RouteName",
    "Size",
    "SshServer",
    "Text",
    "Transport",
]
