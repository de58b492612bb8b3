"""The staggered race on a virtual clock: who wins, when, and what became of the others."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from netfault.engine.race import RaceOutcome, RaceResult, race

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
