"""Incident replay: an engine JSON-lines event log becomes a scenario that fails the same way.

Each operation in the log (ATTEMPT_STARTED ... OPERATION_SUCCEEDED/FAILED on one node)
becomes: the fault steps that make exactly its failed transports fail (``faults_for``), the
transfer (or sync, or http request) with the transports tried in order and the recorded
outcome as ``expect:``, then ``clear: all``. The virtual clock advances by the gaps between
operation starts, so breaker timing is reproduced; breaker transitions and disabled nodes
become top-level expectations. Grouping and fault choice live in ``replay_model``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from netfault.engine import Event, read_event_log
from netfault.simulator.scenario.replay_model import (
    Incident,
    Operation,
    faults_for,
    parse_incident,
)

DEFAULT_SIZE = 64 * 1024


def _dump(value: Any) -> str:
    text: str = yaml.safe_dump(value, sort_keys=False, default_flow_style=None, width=100)
    return text


def _op_step(op: Operation, index: int, router_nodes: dict[str, list[str]]) -> dict[str, Any]:
    tried = list(dict.fromkeys(a.transport for a in op.attempts))
    expect: dict[str, Any] = {"success": op.success}
    if op.refused:
        expect.update(error_kind="breaker_open", attempts=0)
    elif op.success:
        expect["transport_used"] = op.transport_used
    if not op.refused:
        expect["failed"] = [a.transport for a in op.attempts if not a.ok]
    if op.http is not None:
        method, endpoint = op.http
        return {"http": {"node": op.node, "endpoint": endpoint, "method": method, "expect": expect}}
    size = op.size or DEFAULT_SIZE
    path = f"replay/op-{index}.bin"
    chain = router_nodes.get(op.node)
    if chain is not None and op.direction == "push" and not op.refused and _prefix(tried, chain):
        return {"sync": {"node": op.node, "path": path, "size": size, "expect": expect}}
    args: dict[str, Any] = {"node": op.node, "direction": op.direction, "path": path}
    args["size"] = size
    if tried:
        args["transports"] = tried
    args["expect"] = expect
    return {"transfer": args}


def _prefix(tried: list[str], chain: list[str]) -> bool:
    return tried == chain[: len(tried)]


def _summary(op: Operation) -> str:
    tried = " -> ".join(a.transport + ("" if a.ok else f"({a.error_kind})") for a in op.attempts)
    what = f"http {op.http[0]} {op.http[1]}" if op.http else op.direction
    outcome = "refused by the open breaker" if op.refused else tried or "no attempt"
    return f"{op.node} {what} at t={op.start:g}s: {outcome}"


def _cluster(incident: Incident) -> dict[str, Any]:
    nodes = []
    for name in incident.nodes:
        entry: dict[str, Any] = {"name": name, "tailscale": name in incident.tailscale}
        if name in incident.router_chains:
            entry["transports"] = incident.router_chains[name]
        nodes.append(entry)
    cluster: dict[str, Any] = {"nodes": nodes}
    breaker: dict[str, Any] = {}
    if incident.failure_threshold is not None:
        breaker["failure_threshold"] = incident.failure_threshold
    if incident.recovery_timeout is not None:
        breaker["recovery_timeout"] = incident.recovery_timeout
    if breaker:
        cluster["breaker"] = breaker
    if incident.uses_timeouts:
        # a held connection costs real seconds: keep the wait for it short
        cluster["config"] = {"connect_timeout": 2.0, "http_timeout": 2.0}
    return cluster


def _expect(incident: Incident) -> dict[str, Any]:
    expect: dict[str, Any] = {"breaker": dict(incident.breaker)}
    disabled: dict[str, Any] = {}
    for node, info in incident.disabled.items():
        disabled[node] = info if info is not None else False
    if disabled:
        expect["disabled"] = disabled
    return expect


def _steps(incident: Incident) -> list[str]:
    chunks: list[str] = []
    now = 0.0
    for index, item in enumerate(incident.items, start=1):
        if item.start - now > 1e-6:
            chunks.append(_dump([{"advance": round(item.start - now, 6)}]))
            now = item.start
        if item.reenable is not None:
            chunks.append(f"# t={item.start:g}s: {item.reenable} re-enabled\n")
            chunks.append(_dump([{"reenable": item.reenable}]))
            continue
        if item.reset_breaker is not None:
            chunks.append(_dump([{"reset_breakers": item.reset_breaker}]))
            continue
        op = item.operation
        assert op is not None
        plan = faults_for(op)
        chunks.append(f"# op {index}: {_summary(op)}\n")
        chunks += [f"# note: {note}\n" for note in plan.notes]
        chunks.append(_dump([{"fault": dict(f, node=op.node)} for f in plan.faults]))
        chunks.append(_dump([_op_step(op, index, incident.router_chains)]))
        if plan.faults:
            chunks.append(_dump([{"clear": "all"}]))
    return [c for c in chunks if c.strip() != "[]"]


def replay(events: list[Event], *, name: str, source: str) -> str:
    """The scenario (YAML text) that reproduces the transport failures in ``events``."""
    incident = parse_incident(events)
    if not incident.items:
        raise ValueError(f"{source}: no operations in this event log; nothing to replay")
    header = [
        f"# Replayed from {source} by `netfault replay`:",
        f"# {len(incident.operations)} operations on {', '.join(incident.nodes)}.",
        "# The faults below are chosen to make the same transports fail (and the winner",
        "# succeed); they are not copied from the incident, whose causes the log does not name.",
        "# Breaker settings are inferred from the transitions seen (defaults otherwise).",
    ]
    top = {
        "name": name,
        "description": f"Replay of {Path(source).name}: the same transport failures, in order.",
        "seed": 0,
        "cluster": _cluster(incident),
    }
    body = "\n".join(header) + "\n" + _dump(top) + "steps:\n" + "".join(_steps(incident))
    return body + _dump({"expect": _expect(incident)})


def replay_file(jsonl_path: str | Path, out_path: str | Path, *, name: str | None = None) -> Path:
    """Read a JSON-lines event log and write the replay scenario to ``out_path``."""
    source, target = Path(jsonl_path), Path(out_path)
    text = replay(read_event_log(source), name=name or target.stem, source=str(source))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


__all__ = ["replay", "replay_file"]
