"""Load and validate scenario files; every error names file:line: key: what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netfault.engine.config import TRANSPORT_TYPES
from netfault.engine.errors import ConfigError
from netfault.engine.yamlsrc import Located, load_located
from netfault.simulator.cluster.faults import (
    FAULT_KINDS,
    ROUTES,
    SERVICES,
    FaultError,
    check_params,
    node_level,
)
from netfault.simulator.scenario import schema as s
from netfault.simulator.scenario.expect_schema import event_spec, validate_expect
from netfault.simulator.scenario.model import (
    ClusterSpec,
    Condition,
    NodeEntry,
    Scenario,
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
CONFIG = s.v_map(
    {k: s.v_duration for k in ("connect_timeout", "operation_timeout", "http_timeout")}
    | {"integrity_retries": s.v_int()}
)
BREAKER = s.v_map(
    {
        "failure_threshold": s.v_int(1),
        "recovery_timeout": s.v_duration,
        "half_open_max_wait": s.v_duration,
    }
)
ROUTER = s.v_map(
    {
        "failover_threshold": s.v_int(1),
        "backup_transport": s.v_optional(TRANSPORT),
        "escalation_order": s.v_list(TRANSPORT),
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


def _condition(item: Located, key: str, with_within: bool = False) -> Condition:
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


class _Ctx:
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


def _fault(ctx: _Ctx, item: Located, key: str, need_node: bool = True) -> dict[str, Any]:
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


def _transfer(ctx: _Ctx, item: Located, key: str) -> dict[str, Any]:
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


def _sync(ctx: _Ctx, item: Located, key: str) -> dict[str, Any]:
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


def _db_sync(ctx: _Ctx, item: Located, key: str) -> dict[str, Any]:
    args: dict[str, Any] = s.v_map(
        {"node": ctx.node, "rows": s.v_int(), "expect": DB_EXPECT}, ["node"]
    )(item, key)
    args.setdefault("rows", 100)
    return args


def _http(ctx: _Ctx, item: Located, key: str) -> dict[str, Any]:
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


def _step_validators(ctx: _Ctx) -> dict[str, s.Validator]:
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
            args["repeat"] = _step(ctx, entries.pop("repeat"), f"{key}.repeat")
        args["condition"] = _condition(Located(entries, item.line, item.file), key)
        return args

    def repeat(item: Located, key: str) -> dict[str, Any]:
        entries = item.mapping(key)
        args: dict[str, Any] = s.v_map({"times": s.v_int(1), "steps": s.v_any}, ["times", "steps"])(
            item, key
        )
        args["steps"] = tuple(
            _step(ctx, child, f"{key}.steps[{i}]")
            for i, child in enumerate(entries["steps"].sequence(key))
        )
        return args

    return {
        "fault": lambda item, key: _fault(ctx, item, key),
        "faults": fault_set,
        "clear": s.v_str(),
        "advance": s.v_duration,
        "transfer": lambda item, key: _transfer(ctx, item, key),
        "sync": lambda item, key: _sync(ctx, item, key),
        "db_sync": lambda item, key: _db_sync(ctx, item, key),
        "http": lambda item, key: _http(ctx, item, key),
        "wait_for": wait_for,
        "check": lambda item, key: _condition(item, key),
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


def _step(ctx: _Ctx, item: Located, key: str) -> Step:
    kind, args, _ = s.one_key(item, key, _step_validators(ctx))
    ctx.counter += 1
    children = args["steps"] if kind == "repeat" else ()
    return Step(kind, args, Where(item.file, item.line), ctx.counter, children)


def _nodes(item: Located, key: str) -> tuple[NodeEntry, ...]:
    if isinstance(item.value, int) and not isinstance(item.value, bool):
        count = s.v_int(1)(item, key)
        return tuple(NodeEntry(f"node-{i + 1}") for i in range(count))
    entry = s.v_map(
        {"name": s.v_str(), "tailscale": s.v_bool, "transports": s.v_list(s.v_any)}, ["name"]
    )
    nodes = []
    for i, child in enumerate(item.sequence(key)):
        where = f"{key}[{i}]"
        raw = entry(child, where)
        specs = []
        for j, t in enumerate(child.mapping(where).get("transports", Located([], 0, "")).value):
            if isinstance(t.value, str):
                specs.append({"type": TRANSPORT(t, f"{where}.transports[{j}]"), "priority": j})
            else:
                specs.append(
                    s.v_map(
                        {
                            "type": TRANSPORT,
                            "priority": s.v_int(),
                            "fallback": s.v_bool,
                            "last_resort": s.v_bool,
                        },
                        ["type"],
                    )(t, f"{where}.transports[{j}]")
                )
        nodes.append(NodeEntry(raw["name"], raw.get("tailscale", True), tuple(specs)))
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise s.fail(item, key, f"node names must be unique: {names}")
    return tuple(nodes)


def _cluster(item: Located) -> ClusterSpec:
    raw = s.v_map(
        {
            "nodes": s.v_any,
            "preset": s.v_str(("scenario", "quick", "large", "default")),
            "config": CONFIG,
            "breaker": BREAKER,
            "router": ROUTER,
        },
        ["nodes"],
    )(item, "cluster")
    nodes = _nodes(item.mapping("cluster")["nodes"], "cluster.nodes")
    return ClusterSpec(
        nodes,
        raw.get("config", {}),
        raw.get("breaker", {}),
        raw.get("router", {}),
        raw.get("preset", "scenario"),
    )


def _load_library(ctx: _Ctx, item: Located) -> None:
    for i, entry in enumerate(s.v_str_or_list(s.v_str())(item, "use")):
        path = (ctx.path.parent / entry).resolve()
        try:
            root = load_located(path)
        except ConfigError as exc:
            raise s.fail(item, f"use[{i}]", f"cannot load fault library {entry}: {exc}") from None
        sets = root.mapping().get("sets")
        if sets is None:
            raise root.error("a fault library needs a top-level 'sets:' mapping", "sets")
        for name, faults in sets.mapping("sets").items():
            ctx.fault_sets[name] = [
                (f, _fault(ctx, f, f"sets.{name}[{j}]", need_node=False))
                for j, f in enumerate(faults.sequence(f"sets.{name}"))
            ]


TOP = (
    "name",
    "description",
    "seed",
    "use",
    "cluster",
    "steps",
    "expect",
    "always",
    "eventually",
    "tags",
)


def load_scenario(path: str | Path, text: str | None = None) -> Scenario:
    """Parse and validate one scenario file; raises ConfigError naming file:line: key."""
    root = load_located(path, text)
    top = root.mapping()
    for key, item in top.items():
        if key not in TOP:
            raise s.fail(item, key, f"unknown key (known: {', '.join(TOP)})")
    for key in ("name", "cluster", "steps"):
        if key not in top:
            raise s.fail(root, key, "missing required key")
    ctx = _Ctx(Path(path))
    cluster = _cluster(top["cluster"])
    ctx.nodes = [n.name for n in cluster.nodes]
    if "use" in top:
        _load_library(ctx, top["use"])
    steps = tuple(
        _step(ctx, child, f"steps[{i}]") for i, child in enumerate(top["steps"].sequence("steps"))
    )
    return Scenario(
        name=s.v_str()(top["name"], "name"),
        description=str(top["description"].value) if "description" in top else "",
        path=Path(path),
        seed=s.v_int()(top["seed"], "seed") if "seed" in top else 0,
        cluster=cluster,
        steps=steps,
        expect=validate_expect(ctx.node, top["expect"]) if "expect" in top else {},
        always=tuple(
            _condition(c, f"always[{i}]") for i, c in enumerate(top["always"].sequence("always"))
        )
        if "always" in top
        else (),
        eventually=tuple(
            _condition(c, f"eventually[{i}]", True)
            for i, c in enumerate(top["eventually"].sequence("eventually"))
        )
        if "eventually" in top
        else (),
        tags=tuple(s.v_list(s.v_str())(top["tags"], "tags")) if "tags" in top else (),
        expect_where=Where(str(path), top["expect"].line if "expect" in top else root.line),
    )
