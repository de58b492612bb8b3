"""Validation of a scenario's top-level ``expect:`` block and of the specs it shares with
conditions (events, disabled nodes, router stats); every value checked against its
vocabulary from ``vocab``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netfault.engine.errors import ConfigError
from netfault.engine.events import EventType
from netfault.engine.yamlsrc import Located
from netfault.simulator.scenario import schema as s
from netfault.simulator.scenario import vocab

NodeCheck = Callable[[Located, str], str]


def event_spec(node: NodeCheck, item: Located, key: str) -> dict[str, Any]:
    """An event named by its type alone, or a mapping {type, node, transport, ...}."""
    def event_type(child: Located, where: str) -> EventType:
        return EventType(s.v_str(vocab.EVENT_TYPES)(child, where))

    if isinstance(item.value, str):
        return {"type": event_type(item, key)}
    spec: dict[str, Any] = s.v_map(
        {
            "type": event_type,
            "node": node,
            "transport": s.v_str(vocab.attempt_names()),
            "outcome": s.v_str(),
            "error_kind": s.v_str(vocab.error_kinds()),
        },
        required=["type"],
    )(item, key)
    return spec


def disabled_spec(node: NodeCheck, item: Located, key: str) -> dict[str, Any]:
    """A node that is disabled: its name, or {node, reason, failed_transports}."""
    if isinstance(item.value, str):
        return {"node": node(item, key)}
    spec: dict[str, Any] = s.v_map(
        {
            "node": node,
            "reason": s.v_str(),
            "failed_transports": s.v_list(s.v_str(vocab.transports())),
        },
        ["node"],
    )(item, key)
    return spec


def alert_list(item: Located, key: str) -> list[str]:
    names: list[str] = s.v_list(s.v_str(vocab.alert_names()))(item, key)
    return names


def stats_spec(item: Located, key: str) -> dict[str, Any]:
    """A subset of ``SyncRouter.get_stats()``; ``alerts`` by name, as in ``expect.alerts``."""
    fields: dict[str, s.Validator] = {k: s.v_any for k in vocab.stats_keys()}
    fields["alerts"] = alert_list
    spec: dict[str, Any] = s.v_map(fields)(item, key)
    return spec


def _per_node(node: NodeCheck, value: s.Validator) -> s.Validator:
    def check(item: Located, key: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        failed = False
        for name, child in item.mapping(key).items():
            try:
                node(Located(name, child.line, child.file), f"{key}.{name}")
                out[name] = value(child, f"{key}.{name}")
            except ConfigError as exc:
                s.record(exc)
                failed = True
        if failed:
            raise s.Reported()
        return out

    return check


def _disabled(item: Located, key: str) -> Any:
    if item.value is False:
        return False
    return s.v_map(
        {"reason": s.v_str(), "failed_transports": s.v_list(s.v_str(vocab.transports()))}
    )(item, key)


def validate_expect(node: NodeCheck, item: Located) -> dict[str, Any]:
    events = s.v_list(lambda child, key: event_spec(node, child, key))
    result: dict[str, Any] = s.v_map(
        {
            "breaker": _per_node(node, s.v_list(s.v_str(vocab.BREAKER_STATES))),
            "disabled": _per_node(node, _disabled),
            "events": events,
            "no_events": events,
            "files": _per_node(node, s.v_list(s.v_str())),
            "stats": stats_spec,
            "alerts": alert_list,
        }
    )(item, "expect")
    return result
