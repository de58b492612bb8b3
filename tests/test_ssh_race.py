"""SSH connection racing on a LocalCluster: a blackholed tailscale route loses to ssh.

The proxy's ``timeout`` fault accepts the TCP connection and drops every byte, so the SSH
handshake over the tailscale address never completes. Connect timeouts here are far longer
than any test runs: a push that succeeds with the tailscale attempt cancelled can only have
been raced.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netfault.engine.clock import ManualClock
from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.events import EventBus, EventRecorder, EventType
from netfault.engine.router import SyncRouter
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport
from netfault.simulator.cluster import LocalCluster


@dataclass
class Rig:
    cluster: LocalCluster
    ct: ClusterTransport
    node: NodeConfig
    recorder: EventRecorder
    src: Path

    async def push(self, name: str) -> list[tuple[str, str | None]]:
        result = await self.ct.transfer_file(self.src, name, self.node)
        assert result.success, result.error
        assert await self.cluster.read_remote("node-1", name) == self.src.read_bytes()
        return [(a.transport, a.error_kind) for a in result.attempts]


@pytest.fixture
async def blackholed(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    race_delay, connect_timeout = request.param
    clock = ManualClock()
    bus, recorder = EventBus(clock), EventRecorder()
    bus.subscribe(recorder)
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(200_000))
    config = TransportConfig(
        connect_timeout=connect_timeout,
        operation_timeout=connect_timeout + 30.0,
        race_delay=race_delay,
    )
    async with (
        LocalCluster(nodes=1, seed=3) as cluster,
        ClusterTransport(config=config, clock=clock, thresholds=Thresholds(), events=bus) as ct,
    ):
        cluster.faults.apply("timeout", "node-1", route="tailscale")
        yield Rig(cluster, ct, cluster.node("node-1"), recorder, src)


@pytest.mark.parametrize("blackholed", [(0.2, 600.0)], indirect=True)
async def test_blackholed_tailscale_handshake_loses_the_race_to_ssh(blackholed: Rig) -> None:
    assert await blackholed.push("a.bin") == [("tailscale", "cancelled"), ("ssh", None)]
    assert await blackholed.push("b.bin") == [("ssh", None)]  # demoted: not waited for again
    demoted = blackholed.recorder.of_type(EventType.ROUTE_DEMOTED)
    assert [(e.data["route"], e.data["reason"]) for e in demoted] == [("tailscale", "outpaced")]
    assert not blackholed.recorder.of_type(EventType.ATTEMPT_FAILED)
    health = blackholed.ct.get_health_summary()["node-1"]
    assert (health["state"], health["failures"]) == ("closed", 0)


@pytest.mark.parametrize("blackholed", [(None, 1.0)], indirect=True)
async def test_racing_off_waits_for_the_connect_timeout_then_uses_ssh(blackholed: Rig) -> None:
    assert await blackholed.push("a.bin") == [("tailscale", "timeout"), ("ssh", None)]
    assert await blackholed.push("b.bin") == [("ssh", None)]
    assert not blackholed.recorder.of_type(EventType.ATTEMPT_CANCELLED)


@pytest.mark.parametrize("blackholed", [(0.2, 600.0)], indirect=True)
async def test_a_pull_races_too_and_lands_the_exact_bytes(blackholed: Rig, tmp_path: Path) -> None:
    remote = blackholed.cluster.home_path("node-1", "m.bin")
    remote.parent.mkdir(parents=True, exist_ok=True)
    remote.write_bytes(blackholed.src.read_bytes())
    back = tmp_path / "back.bin"
    result = await blackholed.ct.transfer_file(back, "m.bin", blackholed.node, "pull")
    assert [(a.transport, a.error_kind) for a in result.attempts] == [
        ("tailscale", "cancelled"),
        ("ssh", None),
    ]
    assert back.read_bytes() == blackholed.src.read_bytes()


@pytest.mark.parametrize("blackholed", [(0.2, 600.0)], indirect=True)
async def test_a_router_sync_races_past_the_blackholed_route_and_remembers_it(
    blackholed: Rig,
) -> None:
    router = SyncRouter(
        blackholed.ct, nodes=[blackholed.node], escalation_order=("tailscale", "ssh", "base64")
    )

    async def sync(name: str) -> list[tuple[str, str | None]]:
        data = blackholed.src.parent / name
        data.write_bytes(blackholed.src.read_bytes())
        result = await router.sync_to_node("node-1", data)
        assert (result.success, result.transport_used) == (True, "ssh"), result.error
        assert await blackholed.cluster.read_remote("node-1", name) == data.read_bytes()
        return [(a.transport, a.error_kind) for a in result.attempts]

    assert await sync("a.bin") == [("tailscale", "cancelled"), ("ssh", None)]
    seen = [(str(e.type), e.transport) for e in blackholed.recorder.events]
    assert seen == [
        ("ATTEMPT_STARTED", "tailscale"),
        ("ATTEMPT_STARTED", "ssh"),
        ("ATTEMPT_CANCELLED", "tailscale"),
        ("ROUTE_DEMOTED", None),
        ("ATTEMPT_SUCCEEDED", "ssh"),
        ("OPERATION_SUCCEEDED", "ssh"),
    ]
    demoted = blackholed.recorder.of_type(EventType.ROUTE_DEMOTED)
    assert [(e.node, e.data["route"], e.data["reason"]) for e in demoted] == [
        ("node-1", "tailscale", "outpaced")
    ]
    # the cancelled loser counted against neither the escalation nor the breaker
    assert router.get_transport_failures() == {}
    assert [h["transport"] for h in router.get_transport_history("node-1")] == ["ssh"]
    assert router.transport_order("node-1") == ["ssh", "base64", "tailscale"]
    health = blackholed.ct.get_health_summary()["node-1"]
    assert (health["state"], health["failures"]) == ("closed", 0)

    assert await sync("b.bin") == [("ssh", None)]  # the hostname route first: nothing raced
    assert len(blackholed.recorder.of_type(EventType.ATTEMPT_CANCELLED)) == 1
    assert not blackholed.recorder.of_type(EventType.SYNC_STALLED)
    stats = router.get_stats()
    assert (stats["disabled_node_count"], stats["escalations_today"]) == (0, 0)


@pytest.mark.parametrize("blackholed", [(None, 1.0)], indirect=True)
async def test_a_router_sync_with_racing_off_stalls_on_the_timeout_then_uses_ssh(
    blackholed: Rig,
) -> None:
    router = SyncRouter(
        blackholed.ct, nodes=[blackholed.node], escalation_order=("tailscale", "ssh", "base64")
    )
    result = await router.sync_to_node("node-1", blackholed.src)
    assert [(a.transport, a.error_kind) for a in result.attempts] == [
        ("tailscale", "timeout"),
        ("ssh", None),
    ]
    stalls = blackholed.recorder.of_type(EventType.SYNC_STALLED)
    assert [(e.transport, e.data["next_transport"]) for e in stalls] == [("tailscale", "ssh")]
    assert router.get_transport_failures() == {"node-1": {"tailscale": 1}}
    assert router.transport_order("node-1") == ["ssh", "base64", "tailscale"]


@pytest.mark.parametrize("blackholed", [(0.2, 600.0)], indirect=True)
async def test_rsync_races_its_connection_and_copies_over_the_route_that_won(
    blackholed: Rig, tmp_path: Path
) -> None:
    ct, node, src = blackholed.ct, blackholed.node, blackholed.src
    pushed = await ct.transfer_file(src, "r.bin", node, transports=["tailscale", "rsync"])
    assert [(a.transport, a.error_kind) for a in pushed.attempts] == [
        ("tailscale", "cancelled"),
        ("rsync", None),
    ]
    assert (pushed.transport_used, pushed.bytes_transferred) == ("rsync", len(src.read_bytes()))
    assert await blackholed.cluster.read_remote("node-1", "r.bin") == src.read_bytes()
    back = tmp_path / "r-back.bin"
    pulled = await ct.transfer_file(back, "r.bin", node, "pull", transports=["tailscale", "rsync"])
    assert [(a.transport, a.error_kind) for a in pulled.attempts] == [("rsync", None)]
    assert back.read_bytes() == src.read_bytes()
