"""Validation of a scenario's steps, faults and conditions (file:line: key errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netfault.engine.config import TRANSPORT_TYPES
from netfault.engine.yamlsrc import Located
from netfault.simulator.cluster.faults import (
    FAULT_KINDS,
    ROUTES,
    SERVICES,
    FaultError,
    check_params,
    node_level,
)
from netfault.simulator.scenario import schema as s
from netfault.simulator.scenario.expect_schema import event_spec
from netfault.simulator.scenario.model import (
    Condition,
    Step,
    Where,
)

TRANSPORTS = TRANSPORT_TYPES
STATES = ("closed", "open", "half_open")
TRANSPORT = s.v_str(TRANSPORTS)

OP_EXPECT = s.v_map(
    {
        "success": s.v_bool,
        "transport_used": s.v_optional(s.v_str()),
        "tried": s.v_list(s.v_str()),
        "failed": s.v_list(s.v_str()),
        "error_kind": s.v_optional(s.v_str()),
        "attempts": s.v_int(),
        "status": s.v_int(),
        "route": s.v_optional(s.v_str(ROUTES)),
        "content_equal": s.v_bool,
    }
)

CONDITIONS: dict[str, s.Validator] = {
    "breaker": s.v_map({"node": s.v_str(), "state": s.v_str(STATES)}, ["node", "state"]),
    "disabled": s.v_str(),
    "enabled": s.v_str(),
    "can_attempt": s.v_str(),
    "event": event_spec,
    "file": s.v_map({"node": s.v_str(), "path": s.v_str()}, ["node", "path"]),
    "intact": s.v_str(),
    "stats": s.v_map({}, extra=s.v_any),
}


def parse_condition(item: Located, key: str, with_within: bool = False) -> Condition:
    entries = dict(item.mapping(key))
    within = None
    if "within" in entries:
        if not with_within:
            raise s.fail(entries["within"], f"{key}.within", "'within' belongs to eventually:")
        within = s.v_duration(entries.pop("within"), f"{key}.within")
    elif with_within:
        raise s.fail(item, key, "missing required key 'within' (virtual time, e.g. 30s)")
    kind, args, _ = s.one_key(Located(entries, item.line, item.file), key, CONDITIONS)
    return Condition(kind, args, Where(item.file, item.line), within)


class StepContext:
    """What later checks need: the scenario file, its node names and fault sets."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.nodes: list[str] = []
        self.fault_sets: dict[str, list[tuple[Located, dict[str, Any]]]] = {}
        self.counter = 0

    def node(self, item: Located, key: str) -> str:
        name: str = s.v_str()(item, key)
        if name not in self.nodes:
            raise s.fail(item, key, f"unknown node {name!r} (cluster has: {', '.join(self.nodes)})")
        return name


def parse_fault(
    ctx: StepContext, item: Located, key: str, need_node: bool = True
) -> dict[str, Any]:
    entries = item.mapping(key)
    meta = {"kind", "node", "route", "service", "as"}
    fields: dict[str, Any] = {}
    for name in ("kind", "route", "service", "as"):
        if name in entries:
            choices = {"kind": FAULT_KINDS, "route": ROUTES, "service": SERVICES}.get(name)
            fields[name] = s.v_str(choices)(entries[name], f"{key}.{name}")
    if "kind" not in fields:
        raise s.fail(item, key, f"missing required key 'kind' (one of: {', '.join(FAULT_KINDS)})")
    if "node" in entries:
        fields["node"] = ctx.node(entries["node"], f"{key}.node")
    elif need_node:
        raise s.fail(item, key, "missing required key 'node'")
    params = {k: v.plain() for k, v in entries.items() if k not in meta}
    try:
        fields["params"] = check_params(fields["kind"], params)
    except FaultError as exc:
        bad = next((k for k in params if k in str(exc)), None)
        where = entries[bad] if bad else item
        raise s.fail(where, f"{key}.{bad}" if bad else key, str(exc)) from None
    narrowed = next((k for k in ("route", "service") if k in fields), None)
    if narrowed and node_level(fields["kind"], fields["params"]):
        raise s.fail(
            entries[narrowed],
            f"{key}.{narrowed}",
            f"fault {fields['kind']} acts inside the node; it cannot be narrowed to a {narrowed}",
        )
    return fields


def _transfer(ctx: StepContext, item: Located, key: str) -> dict[str, Any]:
    spec = s.v_map(
        {
            "node": ctx.node,
            "direction": s.v_str(("push", "pull")),
            "path": s.v_str(),
            "size": s.v_size,
            "transports": s.v_list(TRANSPORT),
            "expect": OP_EXPECT,
            "preset": s.v_str(("scenario", "quick", "large", "default")),
        },
        ["node", "path"],
    )
    args: dict[str, Any] = spec(item, key)
    args.setdefault("direction", "push")
    args.setdefault("size", 64 * 1024)
    return args


def _sync(ctx: StepContext, item: Located, key: str) -> dict[str, Any]:
    args: dict[str, Any] = s.v_map(
        {
            "node": ctx.node,
            "path": s.v_str(),
            "size": s.v_size,
            "force_transport": TRANSPORT,
            "expect": OP_EXPECT,
        },
        ["node", "path"],
    )(item, key)
    args.setdefault("size", 64 * 1024)
    return args


DB_EXPECT = s.v_map(
    {
        "outcome": s.v_str(),
        "transport": s.v_optional(s.v_str()),
        "records": s.v_int(),
        "changes": s.v_int(),
    }
)


def _db_sync(ctx: StepContext, item: Located, key: str) -> dict[str, Any]:
    args: dict[str, Any] = s.v_map(
        {"node": ctx.node, "rows": s.v_int(), "expect": DB_EXPECT}, ["node"]
    )(item, key)
    args.setdefault("rows", 100)
    return args


def _http(ctx: StepContext, item: Located, key: str) -> dict[str, Any]:
    args: dict[str, Any] = s.v_map(
        {
            "node": ctx.node,
            "endpoint": s.v_str(),
            "method": s.v_str(),
            "port": s.v_str(("http", "p2p")),
            "expect": OP_EXPECT,
        },
        ["node"],
    )(item, key)
    args.setdefault("endpoint", "/health")
    args.setdefault("method", "GET")
    return args


def _step_validators(ctx: StepContext) -> dict[str, s.Validator]:
    def node_or_all(item: Located, key: str) -> str:
        return "all" if item.value == "all" else ctx.node(item, key)

    def fault_set(item: Located, key: str) -> dict[str, Any]:
        args: dict[str, Any] = s.v_map(
            {"set": s.v_str(), "node": ctx.node, "as": s.v_str()}, ["set", "node"]
        )(item, key)
        if args["set"] not in ctx.fault_sets:
            known = ", ".join(ctx.fault_sets) or "none (add use: [faults/FILE.yaml])"
            raise s.fail(
                item.mapping(key)["set"],
                f"{key}.set",
                f"unknown fault set {args['set']!r} (known: {known})",
            )
        args["faults"] = [dict(f, node=args["node"]) for _, f in ctx.fault_sets[args["set"]]]
        return args

    def wait_for(item: Located, key: str) -> dict[str, Any]:
        entries = dict(item.mapping(key))
        args: dict[str, Any] = {"within": 60.0, "tick": 1.0, "repeat": None}
        for name, validator in (("within", s.v_duration), ("tick", s.v_duration)):
            if name in entries:
                args[name] = validator(entries.pop(name), f"{key}.{name}")
        if "repeat" in entries:
            args["repeat"] = parse_step(ctx, entries.pop("repeat"), f"{key}.repeat")
        args["condition"] = parse_condition(Located(entries, item.line, item.file), key)
        return args

    def repeat(item: Located, key: str) -> dict[str, Any]:
        entries = item.mapping(key)
        args: dict[str, Any] = s.v_map({"times": s.v_int(1), "steps": s.v_any}, ["times", "steps"])(
            item, key
        )
        args["steps"] = tuple(
            parse_step(ctx, child, f"{key}.steps[{i}]")
            for i, child in enumerate(entries["steps"].sequence(key))
        )
        return args

    return {
        "fault": lambda item, key: parse_fault(ctx, item, key),
        "faults": fault_set,
        "clear": s.v_str(),
        "advance": s.v_duration,
        "transfer": lambda item, key: _transfer(ctx, item, key),
        "sync": lambda item, key: _sync(ctx, item, key),
        "db_sync": lambda item, key: _db_sync(ctx, item, key),
        "http": lambda item, key: _http(ctx, item, key),
        "wait_for": wait_for,
        "check": lambda item, key: parse_condition(item, key),
        "repeat": repeat,
        "reenable": ctx.node,
        "prefer": s.v_map(
            {"node": ctx.node, "transport": s.v_optional(TRANSPORT)}, ["node", "transport"]
        ),
        "reset_transport_failures": ctx.node,
        "reset_breakers": node_or_all,
        "test_transport": s.v_map(
            {"node": ctx.node, "transport": TRANSPORT, "expect": OP_EXPECT}, ["node", "transport"]
        ),
    }


def parse_step(ctx: StepContext, item: Located, key: str) -> Step:
    kind, args, _ = s.one_key(item, key, _step_validators(ctx))
    ctx.counter += 1
    children = args["steps"] if kind == "repeat" else ()
    return Step(kind, args, Where(item.file, item.line), ctx.counter, children)
