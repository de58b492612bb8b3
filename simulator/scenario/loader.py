"""Load and validate scenario files; every error names file:line: key: what is wrong."""

from __future__ import annotations

from pathlib import Path

from netfault.engine.errors import ConfigError
from netfault.engine.yamlsrc import Located, load_located
from netfault.simulator.node.node import SSH_SERVERS
from netfault.simulator.scenario import schema as s
from netfault.simulator.scenario.expect_schema import validate_expect
from netfault.simulator.scenario.model import (
    ClusterSpec,
    NodeEntry,
    Scenario,
    Where,
)
from netfault.simulator.scenario.step_schema import (
    TRANSPORT,
    StepContext,
    parse_condition,
    parse_fault,
    parse_step,
)


def _delay_or_off(item: Located, key: str) -> float | None:
    """A duration, or ``off`` (which YAML reads as false) for no racing."""
    off = item.value is False or item.value is None or item.value == "off"
    return None if off else s.v_duration(item, key)


CONFIG = s.v_map(
    {k: s.v_duration for k in ("connect_timeout", "operation_timeout", "http_timeout")}
    | {"integrity_retries": s.v_int(), "race_delay": _delay_or_off}
    | {"route_cooldown": s.v_duration}
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


def _nodes(item: Located, key: str) -> tuple[NodeEntry, ...]:
    if isinstance(item.value, int) and not isinstance(item.value, bool):
        count = s.v_int(1)(item, key)
        return tuple(NodeEntry(f"node-{i + 1}") for i in range(count))
    entry = s.v_map(
        {
            "name": s.v_str(),
            "tailscale": s.v_bool,
            "transports": s.v_list(s.v_any),
            "ssh_server": s.v_str(SSH_SERVERS),
        },
        ["name"],
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
        server = raw.get("ssh_server", "asyncssh")
        nodes.append(NodeEntry(raw["name"], raw.get("tailscale", True), tuple(specs), server))
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


def _load_library(ctx: StepContext, item: Located) -> None:
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
                (f, parse_fault(ctx, f, f"sets.{name}[{j}]", need_node=False))
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
    ctx = StepContext(Path(path))
    cluster = _cluster(top["cluster"])
    ctx.nodes = [n.name for n in cluster.nodes]
    if "use" in top:
        _load_library(ctx, top["use"])
    steps = tuple(
        parse_step(ctx, child, f"steps[{i}]")
        for i, child in enumerate(top["steps"].sequence("steps"))
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
            parse_condition(c, f"always[{i}]")
            for i, c in enumerate(top["always"].sequence("always"))
        )
        if "always" in top
        else (),
        eventually=tuple(
            parse_condition(c, f"eventually[{i}]", True)
            for i, c in enumerate(top["eventually"].sequence("eventually"))
        )
        if "eventually" in top
        else (),
        tags=tuple(s.v_list(s.v_str())(top["tags"], "tags")) if "tags" in top else (),
        expect_where=Where(str(path), top["expect"].line if "expect" in top else root.line),
    )
