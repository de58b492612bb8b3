"""The staggered race on a virtual clock: who wins, when, and what became of the others."""

from __future__ import annotations

import asyncio
import selectors
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from aiohttp import web

from netfault.engine.clock import ManualClock
from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.events import Event, EventBus, EventRecorder, EventType
from netfault.engine.race import RaceOutcome, RaceResult, outpaced, race
from netfault.engine.results import HttpResult
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport

T = TypeVar("T")
WON, FAILED, CANCELLED, NOT_STARTED = (
    RaceOutcome.WON,
    RaceOutcome.FAILED,
    RaceOutcome.CANCELLED,
    RaceOutcome.NOT_STARTED,
)
HANG = float("inf")


class _JumpSelector(selectors.BaseSelector):
    """Polls real file descriptors without waiting; a wait for a timer jumps the clock."""

    def __init__(self, loop: VirtualClockLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise RuntimeError("deadlock: every task waits and no timer is set")
        self._loop.now += timeout
        return []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose time moves only when every task waits (trio's autojump clock)."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_JumpSelector(self))

    def time(self) -> float:
        return self.now


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


@dataclass(frozen=True)
class Plan:
    """A fake connection set-up: after ``after`` seconds it returns ``name`` or raises."""

    name: str
    after: float
    fails: bool = False


class Net:
    """Starters built from plans; remembers what was closed and what saw cancellation."""

    def __init__(self) -> None:
        self.closed: list[str] = []
        self.cancelled: list[tuple[str, float]] = []

    def starter(self, plan: Plan) -> Callable[[], Awaitable[str]]:
        async def start() -> str:
            loop = asyncio.get_running_loop()
            try:
                await asyncio.sleep(plan.after if plan.after != HANG else 3600 * 24)
            except asyncio.CancelledError:
                self.cancelled.append((plan.name, loop.time()))
                raise
            if plan.fails:
                raise ConnectionRefusedError(f"{plan.name} refused")
            return plan.name

        return start

    async def close(self, connection: str) -> None:
        self.closed.append(connection)

    async def race(self, plans: list[Plan], delay: float | None) -> tuple[RaceResult[str], float]:
        result = await race([self.starter(p) for p in plans], delay, close=self.close)
        return result, asyncio.get_running_loop().time()


CASES = [
    pytest.param(
        [Plan("ts", 0.1), Plan("host", 0.1)], 0.5, "ts", 0.1, [WON, NOT_STARTED], id="fast-first"
    ),
    pytest.param(
        [Plan("ts", HANG), Plan("host", 0.1)],
        0.5,
        "host",
        0.6,
        [CANCELLED, WON],
        id="blackholed-first",
    ),
    pytest.param(
        [Plan("ts", 0.1, True), Plan("host", 0.1)],
        0.5,
        "host",
        0.2,
        [FAILED, WON],
        id="refused-first-starts-next-at-once",
    ),
    pytest.param(
        [Plan("ts", 2.0), Plan("host", 0.1)],
        None,
        "ts",
        2.0,
        [WON, NOT_STARTED],
        id="off-waits-for-first",
    ),
    pytest.param(
        [Plan("ts", 2.0, True), Plan("host", 0.1)],
        None,
        "host",
        2.1,
        [FAILED, WON],
        id="off-is-sequential",
    ),
    pytest.param(
        [Plan("a", HANG), Plan("b", HANG), Plan("c", 0.1)],
        0.5,
        "c",
        1.1,
        [CANCELLED, CANCELLED, WON],
        id="third-after-two-delays",
    ),
    pytest.param(
        [Plan("a", 0.7, True), Plan("b", 1.0), Plan("c", 0.1)],
        0.5,
        "c",
        1.1,
        [FAILED, CANCELLED, WON],
        id="older-failure-does-not-hurry-the-next",
    ),
    pytest.param(
        [Plan("ts", 1.0), Plan("host", 0.1)],
        0.0,
        "host",
        0.1,
        [CANCELLED, WON],
        id="zero-delay-starts-all",
    ),
]


@pytest.mark.parametrize(("plans", "delay", "winner", "at", "outcomes"), CASES)
def test_race_winner_time_and_outcomes(
    plans: list[Plan], delay: float | None, winner: str, at: float, outcomes: list[RaceOutcome]
) -> None:
    net = Net()
    result, now = run_virtual(lambda: net.race(plans, delay))
    assert (result.winner, now) == (winner, pytest.approx(at))
    assert [e.outcome for e in result.entries] == outcomes
    assert result.winner_index == [p.name for p in plans].index(winner)
    assert net.closed == []
    cancelled = [p.name for p, o in zip(plans, outcomes, strict=True) if o is CANCELLED]
    assert net.cancelled == [(name, pytest.approx(at)) for name in cancelled]


OUTPACED = [
    pytest.param([Plan("ts", 0.1), Plan("host", 0.1)], 0.5, [], id="fast-first"),
    pytest.param([Plan("ts", HANG), Plan("host", 0.1)], 0.5, [0], id="blackholed-first"),
    pytest.param([Plan("ts", 0.1, True), Plan("host", 0.1)], 0.5, [], id="failed-not-outpaced"),
    pytest.param([Plan("a", HANG), Plan("b", HANG), Plan("c", 0.1)], 0.5, [0, 1], id="two"),
    pytest.param([Plan("ts", 1.0), Plan("host", 0.1)], 0.0, [], id="same-start-is-no-lead"),
    pytest.param([Plan("ts", 0.6), Plan("host", 0.1)], 0.5, [], id="connected-spare"),
    pytest.param([Plan("ts", 0.1, True), Plan("host", 0.2, True)], 0.5, [], id="no-winner"),
]


@pytest.mark.parametrize(("plans", "delay", "expected"), OUTPACED)
def test_outpaced_are_the_earlier_starts_still_connecting_when_the_winner_connected(
    plans: list[Plan], delay: float, expected: list[int]
) -> None:
    async def main() -> list[int]:
        result, _ = await Net().race(plans, delay)
        return outpaced(result)

    assert run_virtual(main) == expected


def test_every_start_failing_records_each_failure_and_no_winner() -> None:
    net = Net()
    result, now = run_virtual(
        lambda: net.race([Plan("ts", 1.0, True), Plan("host", 0.3, True)], 0.5)
    )
    assert (result.winner, result.winner_index, now) == (None, None, pytest.approx(1.0))
    assert [e.outcome for e in result.entries] == [FAILED, FAILED]
    assert [str(e.error) for e in result.entries] == ["ts refused", "host refused"]
    assert [e.started_at for e in result.entries] == [0.0, pytest.approx(0.5)]
    assert [e.ended_at for e in result.entries] == [pytest.approx(1.0), pytest.approx(0.8)]


def test_connection_completing_with_the_winner_is_closed_not_leaked() -> None:
    net = Net()
    result, now = run_virtual(lambda: net.race([Plan("ts", 0.6), Plan("host", 0.1)], 0.5))
    assert (result.winner, now) == ("ts", pytest.approx(0.6))
    assert [e.outcome for e in result.entries] == [WON, CANCELLED]
    assert net.closed == ["host"]


def test_cancelling_the_race_cancels_every_start_in_flight() -> None:
    net = Net()

    async def main() -> str:
        task = asyncio.ensure_future(net.race([Plan("ts", HANG), Plan("host", HANG)], 0.5))
        asyncio.get_running_loop().call_later(1.0, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "finished"

    assert run_virtual(main) == "cancelled"
    assert net.cancelled == [("ts", 1.0), ("host", 1.0)]
    assert net.closed == []


def test_no_starters_is_no_winner() -> None:
    result, now = run_virtual(lambda: Net().race([], 0.5))
    assert (result.winner, result.entries, now) == (None, [], 0.0)


# -- racing HTTP routes against real sockets -------------------------------------------------------


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
