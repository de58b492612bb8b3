"""Load and validate scenario files; every error names file:line: key: what is wrong."""

from __future__ import annotations

from pathlib import Path

from netfault.engine.errors import ConfigError
from netfault.engine.yamlsrc import Located, load_located
from netfault.simulator.scenario import schema as s
from netfault.simulator.scenario.expect_schema import validate_expect
from netfault.simulator.scenario.model import (
    ClusterSpec,
    Condition,
    NodeEntry,
    Scenario,
    Where,
)
from netfault.simulator.scenario.step_schema import (
    CONFIG,
    PRESET,
    TRANSPORT,
    StepContext,
    parse_condition,
    parse_fault,
    parse_step,
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
            "preset": PRESET,
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
        raw.get("preset"),
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
    """Parse and validate one scenario file.

    Raises ConfigError naming file:line: key; a file with several mistakes raises
    ``ScenarioErrors`` listing every one of them, in line order.
    """
    root = load_located(path, text)
    with s.collecting():
        return _scenario(Path(path), root, root.mapping())
    raise AssertionError("unreachable: collecting() raises when an error was recorded")


def _scenario(path: Path, root: Located, top: dict[str, Located]) -> Scenario:
    for key, item in top.items():
        if key not in TOP:
            s.record(s.fail(item, key, f"unknown key (known: {', '.join(TOP)})"))
    for key in ("name", "cluster", "steps"):
        if key not in top:
            s.record(s.fail(root, key, "missing required key"))
    ctx = StepContext(path)
    cluster = s.attempt(lambda: _cluster(top["cluster"])) if "cluster" in top else None
    ctx.nodes = [n.name for n in cluster.nodes] if cluster else []
    if "use" in top:
        s.attempt(lambda: _load_library(ctx, top["use"]))
    steps = s.attempt(
        lambda: s.v_list(lambda child, key: parse_step(ctx, child, key))(top["steps"], "steps")
    )
    name = s.attempt(lambda: s.v_str()(top["name"], "name")) if "name" in top else None
    seed = s.attempt(lambda: s.v_int()(top["seed"], "seed")) if "seed" in top else 0
    expect = s.attempt(lambda: validate_expect(ctx.node, top["expect"])) if "expect" in top else {}
    always = s.attempt(lambda: _conditions(ctx, top, "always")) if "always" in top else ()
    eventually = (
        s.attempt(lambda: _conditions(ctx, top, "eventually")) if "eventually" in top else ()
    )
    tags = s.attempt(lambda: s.v_list(s.v_str())(top["tags"], "tags")) if "tags" in top else []
    if cluster is None or steps is None or name is None or seed is None or expect is None:
        raise s.Reported()
    if always is None or eventually is None or tags is None:
        raise s.Reported()
    return Scenario(
        name=name,
        description=str(top["description"].value) if "description" in top else "",
        path=path,
        seed=seed,
        cluster=cluster,
        steps=tuple(steps),
        expect=expect,
        always=always,
        eventually=eventually,
        tags=tuple(tags),
        expect_where=Where(str(path), top["expect"].line if "expect" in top else root.line),
    )


def _conditions(ctx: StepContext, top: dict[str, Located], key: str) -> tuple[Condition, ...]:
    within = key == "eventually"
    conditions = s.v_list(lambda child, where: parse_condition(ctx, child, where, within))
    return tuple(conditions(top[key], key))
