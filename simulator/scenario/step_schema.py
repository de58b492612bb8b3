"""Validation of a scenario's steps, faults and conditions (file:line: key errors)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from netfault.engine.errors import ConfigError
from netfault.engine.yamlsrc import Located
from netfault.simulator.cluster.faults import (
    FAULT_KINDS,
    ROUTES,
    SERVICES,
    FaultError,
    FaultParamError,
    check_params,
    node_level,
)
from netfault.simulator.scenario import schema as s
from netfault.simulator.scenario import vocab
from netfault.simulator.scenario.expect_schema import disabled_spec, event_spec, stats_spec
from netfault.simulator.scenario.model import (
    Condition,
    Step,
    Where,
)
from netfault.simulator.scenario.presets import CONFIG_FIELDS, PRESETS

TRANSPORT = s.v_str(vocab.transports())
ERROR_KIND = s.v_str(vocab.error_kinds())
PRESET = s.v_str(PRESETS)
CONFIG = s.v_map(
    {k: s.v_duration for k in CONFIG_FIELDS if k != "integrity_retries"}
    | {"integrity_retries": s.v_int()}
)


def op_expect(used: s.Validator, tried: s.Validator) -> s.Validator:
    """A step's ``expect:``; ``used``/``tried`` check what the operation names its attempts."""
    return s.v_map(
        {
            "success": s.v_bool,
            "transport_used": s.v_optional(used),
            "tried": s.v_list(tried),
            "failed": s.v_list(tried),
            "error_kind": s.v_optional(ERROR_KIND),
            "attempts": s.v_int(),
            "status": s.v_int(),
            "route": s.v_optional(s.v_str(vocab.http_route_names())),
            "content_equal": s.v_bool,
        }
    )


OP_EXPECT = op_expect(TRANSPORT, TRANSPORT)
HTTP_EXPECT = op_expect(s.v_str(vocab.http_route_names()), s.v_str(vocab.attempt_names()))


def _conditions(ctx: StepContext) -> dict[str, s.Validator]:
    return {
        "breaker": s.v_map(
            {"node": ctx.node, "state": s.v_str(vocab.BREAKER_STATES)}, ["node", "state"]
        ),
        "disabled": lambda item, key: disabled_spec(ctx.node, item, key),
        "enabled": ctx.node,
        "can_attempt": ctx.node,
        "event": lambda item, key: event_spec(ctx.node, item, key),
        "file": s.v_map({"node": ctx.node, "path": s.v_str()}, ["node", "path"]),
        "intact": ctx.node_or_all,
        "stats": stats_spec,
    }


def parse_condition(
    ctx: StepContext, item: Located, key: str, with_within: bool = False
) -> Condition:
    entries = dict(item.mapping(key))
    within = None
    if "within" in entries:
        if not with_within:
            raise s.fail(entries["within"], f"{key}.within", "'within' belongs to eventually:")
        within = s.v_duration(entries.pop("within"), f"{key}.within")
    elif with_within:
        raise s.fail(item, key, "missing required key 'within' (virtual time, e.g. 30s)")
    kind, args, _ = s.one_key(Located(entries, item.line, item.file), key, _conditions(ctx))
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

    def node_or_all(self, item: Located, key: str) -> str:
        return "all" if item.value == "all" else self.node(item, key)


def parse_fault(
    ctx: StepContext, item: Located, key: str, need_node: bool = True
) -> dict[str, Any]:
    entries = item.mapping(key)
    checks = {
        "kind": s.v_str(FAULT_KINDS),
        "route": s.v_str(ROUTES),
        "service": s.v_str(SERVICES),
        "as": s.v_str(),
        "node": ctx.node,
    }
    fields: dict[str, Any] = {
        name: s.attempt(partial(check, entries[name], f"{key}.{name}"))
        for name, check in checks.items()
        if name in entries
    }
    if "node" not in entries and need_node:
        s.record(s.fail(item, key, "missing required key 'node'"))
    if "kind" not in entries:
        known = ", ".join(FAULT_KINDS)
        s.record(s.fail(item, key, f"missing required key 'kind' (one of: {known})"))
    if fields.get("kind") is None:
        raise s.Reported()
    fields["params"] = _fault_params(fields["kind"], entries, key)
    narrowed = next((k for k in ("route", "service") if fields.get(k)), None)
    if narrowed and node_level(fields["kind"], fields["params"]):
        s.record(
            s.fail(
                entries[narrowed],
                f"{key}.{narrowed}",
                f"fault {fields['kind']} acts inside the node; it cannot be narrowed to a "
                f"{narrowed}",
            )
        )
    if None in fields.values():
        raise s.Reported()
    return fields


FAULT_META = ("kind", "node", "route", "service", "as")


def _fault_params(kind: str, entries: dict[str, Located], key: str) -> dict[str, Any]:
    """The fault's parameters, written inline next to ``kind:``; each bad one reported."""
    params = {k: v.plain() for k, v in entries.items() if k not in FAULT_META}
    if "params" in entries:
        raise s.fail(
            entries["params"],
            f"{key}.params",
            f"write the fault's parameters inline next to kind: (e.g. {{kind: {kind}, "
            f"{', '.join(f'{n}: ...' for n in FAULT_KINDS[kind].params) or 'no parameters'}}}), "
            "not under params:",
        )
    try:
        return check_params(kind, params)
    except FaultParamError:
        failed = False
        for name in params:
            try:
                check_params(kind, {name: params[name]})
            except FaultParamError as exc:
                s.record(s.fail(entries[name], f"{key}.{name}", str(exc)))
                failed = True
        if failed:
            raise s.Reported() from None
        raise
    except FaultError as exc:
        raise ConfigError(str(exc)) from None


def _transfer(ctx: StepContext, item: Located, key: str) -> dict[str, Any]:
    spec = s.v_map(
        {
            "node": ctx.node,
            "direction": s.v_str(("push", "pull")),
            "path": s.v_str(),
            "size": s.v_size,
            "transports": s.v_list(TRANSPORT),
            "expect": OP_EXPECT,
            "preset": PRESET,
            "config": CONFIG,
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
            "preset": PRESET,
            "config": CONFIG,
        },
        ["node", "path"],
    )(item, key)
    args.setdefault("size", 64 * 1024)
    return args


DB_EXPECT = s.v_map(
    {
        "outcome": s.v_str(),
        "transport": s.v_optional(TRANSPORT),
        "records": s.v_int(),
        "changes": s.v_int(),
    }
)


def _db_sync(ctx: StepContext, item: Located, key: str) -> dict[str, Any]:
    args: dict[str, Any] = s.v_map(
        {
            "node": ctx.node,
            "rows": s.v_int(),
            "expect": DB_EXPECT,
            "preset": PRESET,
            "config": CONFIG,
        },
        ["node"],
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
            "expect": HTTP_EXPECT,
            "preset": PRESET,
            "config": CONFIG,
        },
        ["node"],
    )(item, key)
    args.setdefault("endpoint", "/health")
    args.setdefault("method", "GET")
    return args


def _step_validators(ctx: StepContext) -> dict[str, s.Validator]:
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
        args["condition"] = parse_condition(ctx, Located(entries, item.line, item.file), key)
        return args

    def repeat(item: Located, key: str) -> dict[str, Any]:
        entries = item.mapping(key)
        args: dict[str, Any] = s.v_map({"times": s.v_int(1), "steps": s.v_any}, ["times", "steps"])(
            item, key
        )
        steps = s.v_list(lambda child, where: parse_step(ctx, child, where))
        args["steps"] = tuple(steps(entries["steps"], f"{key}.steps"))
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
        "check": lambda item, key: parse_condition(ctx, item, key),
        "repeat": repeat,
        "reenable": ctx.node,
        "prefer": s.v_map(
            {"node": ctx.node, "transport": s.v_optional(TRANSPORT)}, ["node", "transport"]
        ),
        "reset_transport_failures": ctx.node,
        "reset_breakers": ctx.node_or_all,
        "test_transport": s.v_map(
            {"node": ctx.node, "transport": TRANSPORT, "expect": OP_EXPECT}, ["node", "transport"]
        ),
    }


def parse_step(ctx: StepContext, item: Located, key: str) -> Step:
    kind, args, _ = s.one_key(item, key, _step_validators(ctx))
    ctx.counter += 1
    children = args["steps"] if kind == "repeat" else ()
    return Step(kind, args, Where(item.file, item.line), ctx.counter, children)
