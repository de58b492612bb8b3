"""Validation of a scenario's top-level ``expect:`` block."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netfault.engine.events import EventType
from netfault.engine.yamlsrc import Located
from netfault.simulator.scenario import schema as s

STATES = ("closed", "open", "half_open")
EVENT_TYPES = tuple(e.value for e in EventType)
ALERTS = ("transport_failures", "disabled_nodes", "escalation_count")
_EVENT_FIELDS = s.v_map(
    {
        "type": s.v_str(EVENT_TYPES),
        "node": s.v_str(),
        "transport": s.v_str(),
        "outcome": s.v_str(),
        "error_kind": s.v_str(),
    },
    required=["type"],
)


def event_spec(item: Located, key: str) -> dict[str, Any]:
    """An event named by its type alone, or a mapping {type, node, transport, ...}."""
    if isinstance(item.value, str):
        return {"type": s.v_str(EVENT_TYPES)(item, key)}
    spec: dict[str, Any] = _EVENT_FIELDS(item, key)
    return spec


NodeCheck = Callable[[Located, str], str]


def _per_node(node: NodeCheck, value: s.Validator) -> s.Validator:
    def check(item: Located, key: str) -> dict[str, Any]:
        out = {}
        for name, child in item.mapping(key).items():
            node(Located(name, child.line, child.file), f"{key}.{name}")
            out[name] = value(child, f"{key}.{name}")
        return out

    return check


def _disabled(item: Located, key: str) -> Any:
    if item.value is False:
        return False
    return s.v_map({"reason": s.v_str(), "failed_transports": s.v_list(s.v_str())})(item, key)


def validate_expect(node: NodeCheck, item: Located) -> dict[str, Any]:
    result: dict[str, Any] = s.v_map(
        {
            "breaker": _per_node(node, s.v_list(s.v_str(STATES))),
            "disabled": _per_node(node, _disabled),
            "events": s.v_list(event_spec),
            "no_events": s.v_list(event_spec),
            "files": _per_node(node, s.v_list(s.v_str())),
            "stats": s.v_map({}, extra=s.v_any),
            "alerts": s.v_list(s.v_str(ALERTS)),
        }
    )(item, "expect")
    return result
