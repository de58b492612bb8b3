"""HTTP route racing against real sockets: a blackholed route loses, the call is sent once."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from aiohttp import web

from netfault.engine.clock import ManualClock
from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.events import Event, EventBus, EventRecorder, EventType
from netfault.engine.results import HttpResult
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport


class Agent:
    """An HTTP server on 127.0.0.1 that counts what it was sent."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.path))
        return web.json_response({"ok": True})


@pytest.fixture
async def agent() -> AsyncIterator[Agent]:
    server = Agent()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.port = runner.addresses[0][1]
    yield server
    await runner.cleanup()


@pytest.fixture
def blackholes() -> Iterator[Callable[[], tuple[str, int]]]:
    """Addresses whose TCP handshake never completes: a listener whose backlog is full."""
    sockets: list[socket.socket] = []

    def make() -> tuple[str, int]:
        listener = socket.socket()
        listener.bind(("127.0.0.3", 0))
        listener.listen(0)
        filler = socket.create_connection(listener.getsockname(), timeout=5)
        sockets.extend([listener, filler])
        host, port = listener.getsockname()
        return str(host), int(port)

    yield make
    for sock in sockets:
        sock.close()


def http_engine(
    race_delay: float | None, connect_timeout: float
) -> tuple[ClusterTransport, EventRecorder]:
    clock = ManualClock()
    bus = EventBus(clock)
    recorder = EventRecorder()
    bus.subscribe(recorder)
    config = TransportConfig(
        connect_timeout=connect_timeout, http_timeout=30.0, race_delay=race_delay
    )
    ct = ClusterTransport(
        transports={}, clock=clock, config=config, thresholds=Thresholds(), events=bus
    )
    return ct, recorder


def attempts(result: HttpResult) -> list[tuple[str, str | None]]:
    return [(a.transport, a.error_kind) for a in result.attempts]


async def test_blackholed_tailscale_connect_loses_the_race_and_the_post_is_sent_once(
    agent: Agent, blackholes: Callable[[], tuple[str, int]]
) -> None:
    host, port = blackholes()
    node = NodeConfig(
        hostname="127.0.0.1", tailscale_ip=host, tailscale_http_port=port, http_port=agent.port
    )
    ct, recorder = http_engine(race_delay=0.05, connect_timeout=60.0)
    async with ct:
        result = await ct.http_request_with_failover(node, "/api/sync", "POST", json={"a": 1})

    assert (result.success, result.status, result.transport_used) == (True, 200, "hostname")
    assert attempts(result) == [("http:tailscale", "cancelled"), ("http:hostname", None)]
    assert agent.seen == [("POST", "/api/sync")]
    assert [(str(e.type), e.transport) for e in recorder.events if e.transport] == [
        ("ATTEMPT_STARTED", "http:tailscale"),
        ("ATTEMPT_STARTED", "http:hostname"),
        ("ATTEMPT_CANCELLED", "http:tailscale"),
        ("ATTEMPT_SUCCEEDED", "http:hostname"),
        ("OPERATION_SUCCEEDED", "hostname"),
    ]
    assert not recorder.of_type(EventType.ATTEMPT_FAILED)
    health = ct.get_health_summary()["127.0.0.1"]
    assert (health["state"], health["failures"]) == ("closed", 0)  # a lost race is no failure
    assert health["demoted_routes"]["tailscale"]["last_error"] == "outpaced"


async def test_route_outpaced_once_is_not_waited_for_on_the_next_request(
    agent: Agent, blackholes: Callable[[], tuple[str, int]]
) -> None:
    host, port = blackholes()
    node = NodeConfig(
        hostname="127.0.0.1", tailscale_ip=host, tailscale_http_port=port, http_port=agent.port
    )
    ct, recorder = http_engine(race_delay=0.05, connect_timeout=60.0)
    async with ct:
        first = await ct.http_request_with_failover(node, "/status")
        second = await ct.http_request_with_failover(node, "/status")

    assert attempts(first) == [("http:tailscale", "cancelled"), ("http:hostname", None)]
    assert attempts(second) == [("http:hostname", None)]
    demoted = recorder.of_type(EventType.ROUTE_DEMOTED)
    assert [(e.data["route"], e.data["reason"]) for e in demoted] == [("tailscale", "outpaced")]


async def test_racing_off_waits_for_the_timeout_then_demotes_the_route(
    agent: Agent, blackholes: Callable[[], tuple[str, int]]
) -> None:
    host, port = blackholes()
    node = NodeConfig(
        hostname="127.0.0.1", tailscale_ip=host, tailscale_http_port=port, http_port=agent.port
    )
    ct, recorder = http_engine(race_delay=None, connect_timeout=0.3)
    async with ct:
        first = await ct.http_request_with_failover(node, "/status")
        second = await ct.http_request_with_failover(node, "/status")

    assert attempts(first) == [("http:tailscale", "timeout"), ("http:hostname", None)]
    assert attempts(second) == [("http:hostname", None)]
    [demoted] = recorder.of_type(EventType.ROUTE_DEMOTED)
    assert (demoted.node, demoted.data["route"], demoted.data["reason"]) == (
        "127.0.0.1",
        "tailscale",
        "timeout",
    )
    assert agent.seen == [("GET", "/status")] * 2


async def test_cancelling_the_request_cancels_every_route_being_raced(
    blackholes: Callable[[], tuple[str, int]],
) -> None:
    (ts_host, ts_port), (host, port) = blackholes(), blackholes()
    node = NodeConfig(
        hostname=host, http_port=port, tailscale_ip=ts_host, tailscale_http_port=ts_port
    )
    ct, recorder = http_engine(race_delay=0.05, connect_timeout=60.0)
    both_started = asyncio.Event()

    def on_event(event: Event) -> None:
        if len(recorder.of_type(EventType.ATTEMPT_STARTED)) == 2:
            both_started.set()

    ct.events.subscribe(on_event)
    async with ct:
        request = asyncio.ensure_future(ct.http_request_with_failover(node, "/status"))
        await asyncio.wait_for(both_started.wait(), timeout=30)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request

    cancelled = recorder.of_type(EventType.ATTEMPT_CANCELLED)
    assert sorted(str(e.transport) for e in cancelled) == ["http:hostname", "http:tailscale"]
    assert not recorder.of_type(EventType.ATTEMPT_FAILED, EventType.ROUTE_DEMOTED)
    assert ct.get_health_summary()[host]["failures"] == 0
