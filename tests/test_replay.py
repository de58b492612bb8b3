"""Incident replay: a recorded event log becomes a scenario that fails the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from netfault.engine.clock import ManualClock
from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.events import Event, EventBus, EventType, JsonlEventLog, read_event_log
from netfault.engine.router import SyncRouter
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport
from netfault.simulator.cluster import LocalCluster
from netfault.simulator.cluster.spec import NodeSpec
from netfault.simulator.scenario.loader import load_scenario
from netfault.simulator.scenario.replay import replay, replay_file
from netfault.simulator.scenario.runner import run_scenario

CONFIG = TransportConfig(connect_timeout=3.0, operation_timeout=15.0, http_timeout=3.0)
THRESHOLDS = Thresholds(breaker_failure_threshold=2, breaker_recovery_timeout=300.0)


def failed_sequence(events: list[Event]) -> list[tuple[str | None, str | None]]:
    return [(e.node, e.transport) for e in events if e.type == EventType.ATTEMPT_FAILED]


def breaker_sequence(events: list[Event]) -> list[tuple[str | None, Any]]:
    return [(e.node, e.data.get("to")) for e in events if e.type == EventType.BREAKER_TRANSITION]


Session = Callable[[ClusterTransport, SyncRouter, NodeConfig, Any, ManualClock], Awaitable[None]]


async def record(tmp_path: Path, session: Session) -> Path:
    """Run ``session`` against a real LocalCluster with the engine logging to JSON lines."""
    log_path = tmp_path / "events.jsonl"
    clock = ManualClock(start=1000.0)  # a log's clock need not start at zero
    bus = EventBus(clock)
    log = JsonlEventLog(log_path)
    bus.subscribe(log)
    async with LocalCluster(nodes=[NodeSpec("node-1", tailscale=False)], seed=3) as cluster:
        node = cluster.node("node-1")
        transport = ClusterTransport(clock=clock, thresholds=THRESHOLDS, events=bus, config=CONFIG)
        router = SyncRouter(transport, nodes=[node], thresholds=THRESHOLDS)
        try:
            await session(transport, router, node, cluster, clock)
        finally:
            await transport.close()
            log.close()
    return log_path


async def push(
    transport: ClusterTransport, node: NodeConfig, tmp_path: Path, transports: list[str]
) -> bool:
    local = tmp_path / "payload.bin"
    await asyncio.to_thread(local.write_bytes, bytes(range(256)) * 64)
    result = await transport.transfer_file(
        local, "incident/payload.bin", node, "push", CONFIG, transports=transports
    )
    return result.success


async def replay_and_run(tmp_path: Path, log_path: Path) -> tuple[list[Event], list[Event]]:
    out = replay_file(log_path, tmp_path / "incident-test.yaml")
    scenario = load_scenario(out)
    result = await run_scenario(scenario)
    assert result.passed, result.report() + "\n\n" + out.read_text()
    return read_event_log(log_path), result.events


async def test_replayed_incident_fails_the_same_transports_and_trips_the_breaker(
    tmp_path: Path,
) -> None:
    async def session(
        t: ClusterTransport, r: SyncRouter, node: NodeConfig, cluster: Any, clock: ManualClock
    ) -> None:
        faults = cluster.faults
        faults.apply("auth_refused", "node-1")
        assert await push(t, node, tmp_path, ["ssh", "base64", "http"])
        faults.clear_all()
        faults.apply("reset", "node-1", level="ssh")
        assert await push(t, node, tmp_path, ["ssh", "rsync", "base64"])
        faults.clear_all()
        clock.advance(12.5)
        faults.apply("http_5xx", "node-1")
        assert not (await t.http_request_with_failover(node, "/health", config=CONFIG)).success
        faults.clear_all()
        faults.apply("down", "node-1", service="ssh")
        assert not await push(t, node, tmp_path, ["ssh", "base64"])  # second failure: opens
        assert not await push(t, node, tmp_path, ["ssh"])  # refused by the open breaker
        faults.clear_all()
        clock.advance(300)
        assert await push(t, node, tmp_path, ["ssh"])  # the half-open probe succeeds

    original, replayed = await replay_and_run(tmp_path, await record(tmp_path, session))

    assert failed_sequence(replayed) == failed_sequence(original)
    assert failed_sequence(original) == [("node-1", t) for t in ("ssh", "base64")] + [
        ("node-1", t) for t in ("ssh", "rsync", "http:hostname", "ssh", "base64")
    ]
    assert breaker_sequence(replayed) == breaker_sequence(original)
    assert [to for _, to in breaker_sequence(original)] == ["open", "half_open", "closed"]


async def test_replayed_incident_disables_the_node_like_the_original(tmp_path: Path) -> None:
    async def session(
        t: ClusterTransport, r: SyncRouter, node: NodeConfig, cluster: Any, clock: ManualClock
    ) -> None:
        local = tmp_path / "db.bin"
        await asyncio.to_thread(local.write_bytes, b"rows" * 1000)
        cluster.faults.apply("down", "node-1", service="p2p")
        assert (await r.sync_to_node("node-1", local, remote_path="db.bin", config=CONFIG)).success
        cluster.faults.apply("down", "node-1")
        assert not (await r.sync_to_node("node-1", local, remote_path="db.bin")).success

    original, replayed = await replay_and_run(tmp_path, await record(tmp_path, session))

    assert failed_sequence(replayed) == failed_sequence(original)
    disabled = [e for e in replayed if e.type == EventType.NODE_DISABLED]
    assert [(e.node, e.outcome) for e in disabled] == [("node-1", "all_transports_exhausted")]


def test_hand_made_log_replays_to_a_valid_scenario(tmp_path: Path) -> None:
    def ev(kind: EventType, t: float, **fields: Any) -> Event:
        return Event(kind, node="node-2", monotonic=t, **fields)

    events = [
        ev(EventType.ATTEMPT_STARTED, 50.0, transport="ssh", operation="push"),
        ev(EventType.ATTEMPT_FAILED, 50.2, transport="ssh", error_kind="connect"),
        ev(EventType.ATTEMPT_STARTED, 50.2, transport="base64", operation="push"),
        ev(EventType.ATTEMPT_SUCCEEDED, 50.9, transport="base64", bytes=4096),
        ev(EventType.OPERATION_SUCCEEDED, 50.9, transport="base64", operation="push", bytes=4096),
        ev(EventType.ATTEMPT_STARTED, 170.0, transport="http", operation="pull"),
        ev(EventType.ATTEMPT_FAILED, 170.1, transport="http", error_kind="storage"),
        ev(EventType.OPERATION_FAILED, 170.1, operation="pull", error_kind="storage"),
    ]
    text = replay(events, name="incident-hand-made", source="field/node-2.jsonl")
    assert text.startswith("# Replayed from field/node-2.jsonl")
    scenario = load_scenario(tmp_path / "incident.yaml", text)

    assert scenario.node_names == ["node-2"]
    kinds = [s.kind for s in scenario.steps]
    assert kinds == ["fault", "transfer", "clear", "advance", "fault", "transfer", "clear"]
    fault, first, _, advance, storage, second, _ = (getattr(s, s.kind) for s in scenario.steps)
    # ssh must fail without taking base64 (same route and service) down with it
    assert fault.kind == "reset" and fault.params()["level"] == "ssh"
    assert first.transports == ["ssh", "base64"] and first.size == 4096
    assert first.expect.model_dump(exclude_unset=True) == {
        "success": True,
        "transport_used": "base64",
        "failed": ["ssh"],
    }
    assert advance == pytest.approx(120.0)
    assert storage.kind == "down" and storage.service == "http"  # a pull: not disk_full
    assert second.direction == "pull"
    assert second.expect.model_dump(exclude_unset=True) == {"success": False, "failed": ["http"]}
    assert scenario.expect.breaker == {"node-2": ["closed"]}


def test_log_without_operations_is_refused() -> None:
    with pytest.raises(ValueError, match="no operations"):
        replay([Event(EventType.ALERT, outcome="transport_failures")], name="x", source="e.jsonl")
