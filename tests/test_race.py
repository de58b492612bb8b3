"""The staggered race on a virtual clock: who wins, when, and what became of the others."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from netfault.engine.breaker import BreakerRegistry
from netfault.engine.clock import ManualClock
from netfault.engine.config import NodeConfig
from netfault.engine.errors import ConnectError, ConnectionReset
from netfault.engine.escalation import NodeEscalation, Policy
from netfault.engine.events import EventBus, EventRecorder
from netfault.engine.failover import (
    Candidate,
    Chain,
    Escalated,
    FailoverOperation,
    FailoverOutcome,
)
from netfault.engine.race import RaceOutcome, RaceResult, outpaced, race
from netfault.engine.results import Attempt
from netfault.engine.route_memory import RouteMemory, RouteName

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


# -- the failover loop's racing step (engine.failover_race) on the virtual clock ------------------


@dataclass(frozen=True)
class Route:
    """A fake route: its connection takes ``after`` s (HANG: never) and ``fails`` it or the run."""

    name: str
    after: float
    connect_fails: bool = False
    run_fails: bool = False


class Conn:
    def __init__(self, route: Route, log: list[str]) -> None:
        self.route, self.log = route, log

    async def run(self) -> int:
        self.log.append(f"run {self.route.name}")
        if self.route.run_fails:
            raise ConnectionReset(f"{self.route.name}@n1: reset", node="n1", bytes_done=5)
        return 10

    async def close(self) -> None:
        self.log.append(f"close {self.route.name}")


def candidate(route: Route, log: list[str]) -> Candidate[int]:
    async def connect() -> Conn:
        await asyncio.sleep(route.after if route.after != HANG else 3600 * 24)
        if route.connect_fails:
            raise ConnectError(f"{route.name}@n1: refused", node="n1")
        return Conn(route, log)

    async def run() -> int:
        return await (await connect()).run()

    name = f"http:{route.name}"
    return Candidate(name, run, route=RouteName(route.name), connect=connect)


@dataclass
class Ran:
    outcome: FailoverOutcome[int]
    at: float
    log: list[str]
    recorder: EventRecorder
    breakers: BreakerRegistry
    routes: RouteMemory


def run_operation(routes: list[Route], delay: float | None, tries: int = 1) -> Ran:
    clock = ManualClock()
    bus, recorder = EventBus(clock), EventRecorder()
    bus.subscribe(recorder)
    breakers, memory = BreakerRegistry(clock=clock), RouteMemory(clock=clock, events=bus)
    log: list[str] = []

    async def main() -> FailoverOutcome[int]:
        op: FailoverOperation[int] = FailoverOperation(
            NodeConfig(hostname="n1"),
            "push",
            breakers=breakers,
            events=bus,
            size=int,
            routes=memory,
            race_delay=delay,
        )
        return await op.run(Chain(op.ordered([candidate(r, log) for r in routes]), tries=tries))

    loop = VirtualClockLoop()
    try:
        outcome = loop.run_until_complete(main())
    finally:
        loop.close()
    return Ran(outcome, loop.now, log, recorder, breakers, memory)


def tried(ran: Ran) -> list[tuple[str, str | None]]:
    return [(a.transport, a.error_kind) for a in ran.outcome.attempts]


LOOP_CASES = [
    pytest.param(
        [Route("tailscale", HANG), Route("hostname", 0.1)],
        0.5,
        "hostname",
        0.6,
        [("http:tailscale", "cancelled"), ("http:hostname", None)],
        ["run hostname"],
        id="blackholed-lead-loses",
    ),
    pytest.param(
        [Route("tailscale", 0.1), Route("hostname", 0.1)],
        0.5,
        "tailscale",
        0.1,
        [("http:tailscale", None)],
        ["run tailscale"],
        id="fast-lead-races-nobody",
    ),
    pytest.param(
        [Route("tailscale", 0.2, connect_fails=True), Route("hostname", 0.1)],
        0.5,
        "hostname",
        0.3,
        [("http:tailscale", "connect"), ("http:hostname", None)],
        ["run hostname"],
        id="refused-lead-starts-the-next-at-once",
    ),
    pytest.param(
        [Route("tailscale", 0.7), Route("hostname", 0.1, run_fails=True)],
        0.5,
        "tailscale",
        1.3,
        [("http:tailscale", "cancelled"), ("http:hostname", "reset"), ("http:tailscale", None)],
        ["run hostname", "run tailscale"],
        id="winner-fails-the-loser-runs-again",
    ),
    pytest.param(
        [Route("tailscale", 2.0, connect_fails=True), Route("hostname", 0.1)],
        None,
        "hostname",
        2.1,
        [("http:tailscale", "connect"), ("http:hostname", None)],
        ["run hostname"],
        id="racing-off-is-sequential",
    ),
]


@pytest.mark.parametrize(("routes", "delay", "used", "at", "attempts", "log"), LOOP_CASES)
def test_the_loop_races_connects_and_runs_the_operation_on_one_connection(
    routes: list[Route],
    delay: float | None,
    used: str,
    at: float,
    attempts: list[tuple[str, str | None]],
    log: list[str],
) -> None:
    ran = run_operation(routes, delay)
    assert (ran.outcome.success, ran.outcome.transport_used) == (True, f"http:{used}")
    assert (ran.at, tried(ran), ran.log) == (pytest.approx(at), attempts, log)
    assert ran.breakers.health_summary()["n1"]["failures"] == 0


def test_a_route_outpaced_in_the_race_is_demoted_and_put_last_next_time() -> None:
    ran = run_operation([Route("tailscale", HANG), Route("hostname", 0.1)], 0.5)
    assert ran.routes.is_demoted("n1", RouteName.TAILSCALE)
    assert not ran.routes.is_demoted("n1", RouteName.HOSTNAME)
    events = [(str(e.type), e.transport) for e in ran.recorder.events]
    assert events == [
        ("ATTEMPT_STARTED", "http:tailscale"),
        ("ATTEMPT_STARTED", "http:hostname"),
        ("ATTEMPT_CANCELLED", "http:tailscale"),
        ("ROUTE_DEMOTED", None),
        ("ATTEMPT_SUCCEEDED", "http:hostname"),
        ("OPERATION_SUCCEEDED", "http:hostname"),
    ]


def test_every_connect_failing_records_each_failure_and_one_breaker_failure() -> None:
    failing = [Route("tailscale", 1.0, True), Route("hostname", 0.3, True)]
    ran = run_operation(failing, 0.5)
    assert (ran.outcome.success, ran.outcome.error_kind) == (False, "connect")
    assert tried(ran) == [("http:hostname", "connect"), ("http:tailscale", "connect")]
    assert ran.at == pytest.approx(1.0)
    assert ran.breakers.health_summary()["n1"]["failures"] == 1
    assert ran.log == []


def test_a_lost_lead_offered_again_by_its_own_retries_runs_no_more_than_them() -> None:
    failing = [Route("tailscale", 0.7, run_fails=True), Route("hostname", 0.1, run_fails=True)]
    ran = run_operation(failing, 0.5, tries=2)
    assert ran.outcome.success is False
    assert tried(ran) == [
        ("http:tailscale", "cancelled"),
        ("http:hostname", "reset"),
        ("http:tailscale", "reset"),
    ]
    assert ran.log == ["run hostname", "run tailscale"]


# -- an escalation (the router's machine) as the source: what it hears, and when -------------------
@dataclass
class Routed:
    ran: Ran
    machine: NodeEscalation
    heard: list[tuple[str, str | None, str | None, int]]  # transport, kind, next, events before


def run_routed(routes: list[Route], delay: float | None, broken: bool = False) -> Routed:
    """``run_operation`` with the escalation machine choosing each next transport."""
    clock = ManualClock()
    bus, recorder = EventBus(clock), EventRecorder()
    bus.subscribe(recorder)
    breakers, memory = BreakerRegistry(clock=clock), RouteMemory(clock=clock, events=bus)
    log: list[str] = []
    names = [f"http:{r.name}" for r in routes]
    machine = NodeEscalation("n1", names, Policy(), clock)
    operation = machine.begin()
    heard: list[tuple[str, str | None, str | None, int]] = []

    class Hook:
        def next_transport(self, failed: Attempt) -> str | None:
            if broken:
                raise RuntimeError("the escalation broke")
            decision = operation.failed(failed.transport, failed.error_kind, failed.message)
            heard.append(
                (failed.transport, failed.error_kind, decision.next_transport, len(recorder.events))
            )
            return decision.next_transport

    async def main() -> FailoverOutcome[int]:
        op: FailoverOperation[int] = FailoverOperation(
            NodeConfig(hostname="n1"),
            "push",
            breakers=breakers,
            events=bus,
            size=int,
            routes=memory,
            race_delay=delay,
        )
        built = {f"http:{r.name}": r for r in routes}
        return await op.run(Escalated(names, lambda n: candidate(built[n], log), Hook()))

    loop = VirtualClockLoop()
    try:
        outcome = loop.run_until_complete(main())
    finally:
        loop.close()
    return Routed(Ran(outcome, loop.now, log, recorder, breakers, memory), machine, heard)


def kinds(ran: Ran) -> list[tuple[str, str | None]]:
    return [(str(e.type), e.transport) for e in ran.recorder.events]


def test_an_escalation_never_hears_of_the_lead_cancelled_by_the_race() -> None:
    routed = run_routed([Route("tailscale", HANG), Route("hostname", 0.1)], 0.5)
    ran = routed.ran
    assert (ran.outcome.transport_used, ran.at) == ("http:hostname", pytest.approx(0.6))
    assert tried(ran) == [("http:tailscale", "cancelled"), ("http:hostname", None)]
    assert routed.heard == []
    assert (routed.machine.history, dict(routed.machine.failures)) == ((), {})
    assert routed.machine.active() == ("http:tailscale", "http:hostname")
    assert ran.routes.is_demoted("n1", RouteName.TAILSCALE)


def test_an_escalation_hears_a_raced_connect_failure_when_it_happens() -> None:
    failing = [Route("tailscale", 1.0, connect_fails=True), Route("hostname", 0.1, True)]
    routed = run_routed(failing, 0.5)
    ran = routed.ran
    assert (ran.outcome.success, ran.at) == (False, pytest.approx(1.0))
    assert kinds(ran) == [
        ("ATTEMPT_STARTED", "http:tailscale"),
        ("ATTEMPT_STARTED", "http:hostname"),
        ("ATTEMPT_FAILED", "http:hostname"),
        ("ROUTE_DEMOTED", None),
        ("ATTEMPT_FAILED", "http:tailscale"),
        ("ROUTE_DEMOTED", None),
        ("OPERATION_FAILED", None),
    ]
    # heard at 0.6 s, while the lead still connects, then the lead at 1.0 s; each right
    # after its own failure event (and its route's), before the operation's end
    assert routed.heard == [
        ("http:hostname", "connect", "http:tailscale", 4),
        ("http:tailscale", "connect", None, 6),
    ]
    assert routed.machine.disabled is not None
    assert routed.machine.disabled.failed_transports == ("http:tailscale", "http:hostname")
    assert ran.breakers.health_summary()["n1"]["failures"] == 1


def test_a_refused_lead_is_heard_before_the_next_route_connects() -> None:
    routed = run_routed([Route("tailscale", 0.2, connect_fails=True), Route("hostname", 0.1)], 0.5)
    ran = routed.ran
    assert (ran.outcome.transport_used, ran.at) == ("http:hostname", pytest.approx(0.3))
    assert routed.heard == [("http:tailscale", "connect", "http:hostname", 3)]
    assert kinds(ran)[3] == ("ATTEMPT_STARTED", "http:hostname")


def test_a_race_winner_that_fails_is_charged_itself_and_the_cancelled_lead_runs() -> None:
    routes = [Route("tailscale", 0.7), Route("hostname", 0.1, run_fails=True)]
    routed = run_routed(routes, 0.5)
    ran = routed.ran
    assert ran.outcome.transport_used == "http:tailscale"
    assert tried(ran) == [
        ("http:tailscale", "cancelled"),
        ("http:hostname", "reset"),
        ("http:tailscale", None),
    ]
    assert [(t, k, n) for t, k, n, _ in routed.heard] == [
        ("http:hostname", "reset", "http:tailscale")
    ]
    assert dict(routed.machine.failures) == {"http:hostname": 1}
    assert ran.log == ["run hostname", "run tailscale"]


def test_an_escalation_that_raises_while_hearing_a_race_fails_the_operation_loudly() -> None:
    failing = [Route("tailscale", 1.0), Route("hostname", 0.1, connect_fails=True)]
    with pytest.raises(RuntimeError, match="the escalation broke"):
        run_routed(failing, 0.5, broken=True)
