"""Circuit breaker and registry, on a ManualClock (no sleeps, no wall time)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from netfault.engine.breaker import (
    ADMITTED,
    REFUSED,
    BreakerRegistry,
    BreakerState,
    CircuitBreaker,
)
from netfault.engine.clock import ManualClock
from netfault.engine.errors import CircuitOpenError

TIMEOUT = 300.0
MAX_WAIT = 600.0
TICK = 1.0

Transition = tuple[str, BreakerState, BreakerState, str]


class Excluded(Exception):
    """An error the breaker is told not to count (e.g. the caller's own bad input)."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def breaker(clock: ManualClock) -> CircuitBreaker:
    return CircuitBreaker(
        "node-1",
        failure_threshold=3,
        recovery_timeout=TIMEOUT,
        half_open_max_wait=MAX_WAIT,
        clock=clock,
        excluded=(Excluded,),
    )


def trip(breaker: CircuitBreaker) -> None:
    """Open the breaker with `failure_threshold` failed calls."""
    for _ in range(breaker.failure_threshold):
        breaker.record_failure(breaker.allow())
    assert breaker.state is BreakerState.OPEN


def half_open(breaker: CircuitBreaker, clock: ManualClock) -> None:
    trip(breaker)
    clock.advance(TIMEOUT)
    assert breaker.state is BreakerState.HALF_OPEN


def snapshot(breaker: CircuitBreaker) -> tuple[object, ...]:
    return (
        breaker.state,
        breaker.failures,
        breaker.opened_at,
        breaker.probe_in_flight,
        breaker.retry_in(),
    )


# -- CLOSED: counting consecutive failures -----------------------------------------------------


def test_three_consecutive_failures_open_the_breaker(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    clock.advance(42)
    for _ in range(2):
        breaker.record_failure(breaker.allow())
        assert breaker.state is BreakerState.CLOSED
    breaker.record_failure(breaker.allow())
    assert breaker.state is BreakerState.OPEN
    assert breaker.failures == 3
    assert breaker.opened_at == 42
    assert breaker.allow() == REFUSED


@pytest.mark.parametrize(
    ("outcomes", "state", "failures"),
    [
        pytest.param("", BreakerState.CLOSED, 0, id="no-calls"),
        pytest.param("ff", BreakerState.CLOSED, 2, id="two-failures-stay-closed"),
        pytest.param("ffs", BreakerState.CLOSED, 0, id="success-resets-the-count"),
        pytest.param("ffsff", BreakerState.CLOSED, 2, id="failures-not-consecutive"),
        pytest.param("sfsfsf", BreakerState.CLOSED, 1, id="alternating"),
        pytest.param("ffsfff", BreakerState.OPEN, 3, id="three-after-a-success-open"),
        pytest.param("fff", BreakerState.OPEN, 3, id="three-in-a-row-open"),
    ],
)
def test_only_consecutive_failures_count_towards_the_threshold(
    breaker: CircuitBreaker, outcomes: str, state: BreakerState, failures: int
) -> None:
    for outcome in outcomes:
        permit = breaker.allow()
        assert permit == ADMITTED
        if outcome == "s":
            breaker.record_success(permit)
        else:
            breaker.record_failure(permit)
    assert breaker.state is state
    assert breaker.failures == failures


@pytest.mark.parametrize("threshold", [pytest.param(1, id="one"), pytest.param(5, id="five")])
def test_failure_threshold_is_configurable(clock: ManualClock, threshold: int) -> None:
    breaker = CircuitBreaker("n", failure_threshold=threshold, clock=clock)
    for _ in range(threshold - 1):
        breaker.record_failure(breaker.allow())
    assert breaker.summary()["state"] == "closed"
    breaker.record_failure(breaker.allow())
    assert breaker.state is BreakerState.OPEN


def test_threshold_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker("n", failure_threshold=0)


@pytest.mark.parametrize(
    ("exc", "failures"),
    [
        pytest.param(None, 0, id="no-exception-is-success"),
        pytest.param(OSError("reset"), 3, id="ordinary-error-is-failure"),
        pytest.param(Excluded("bad input"), 2, id="excluded-error-not-counted"),
        pytest.param(asyncio.CancelledError(), 2, id="cancellation-not-counted"),
    ],
)
def test_record_classifies_the_outcome_by_exception(
    breaker: CircuitBreaker, exc: BaseException | None, failures: int
) -> None:
    breaker.record_failure(breaker.allow())
    breaker.record_failure(breaker.allow())
    breaker.record(breaker.allow(), exc)
    assert breaker.failures == failures
    expected = BreakerState.OPEN if failures >= 3 else BreakerState.CLOSED
    assert breaker.state is expected


# -- OPEN -> HALF_OPEN on the clock ------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed", "state", "admitted"),
    [
        pytest.param(0, BreakerState.OPEN, False, id="just-opened"),
        pytest.param(TIMEOUT - TICK, BreakerState.OPEN, False, id="timeout-minus-one-tick"),
        pytest.param(TIMEOUT, BreakerState.HALF_OPEN, True, id="exactly-timeout"),
        pytest.param(TIMEOUT + TICK, BreakerState.HALF_OPEN, True, id="timeout-plus-one-tick"),
    ],
)
def test_open_breaker_refuses_until_recovery_timeout_has_passed(
    breaker: CircuitBreaker,
    clock: ManualClock,
    elapsed: float,
    state: BreakerState,
    admitted: bool,
) -> None:
    trip(breaker)
    clock.advance(elapsed)
    assert breaker.state is state
    assert breaker.can_attempt() is admitted
    assert breaker.retry_in() == max(0.0, TIMEOUT - elapsed)
    assert (breaker.allow() >= 2) is admitted


def test_refused_call_changes_no_counter_or_state(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    trip(breaker)
    clock.advance(TIMEOUT - TICK)
    before = snapshot(breaker)
    for _ in range(5):
        assert breaker.allow() == REFUSED
    assert snapshot(breaker) == before


def test_can_attempt_takes_no_probe_slot(breaker: CircuitBreaker, clock: ManualClock) -> None:
    half_open(breaker, clock)
    assert breaker.can_attempt()
    assert breaker.can_attempt()
    assert not breaker.probe_in_flight
    assert breaker.allow() >= 2


# -- HALF_OPEN: one probe at a time ------------------------------------------------------------


def test_half_open_admits_one_probe_and_refuses_concurrent_callers(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    half_open(breaker, clock)
    probe = breaker.allow()
    assert probe >= 2
    assert breaker.probe_in_flight
    assert [breaker.allow() for _ in range(3)] == [REFUSED] * 3
    assert not breaker.can_attempt()
    assert breaker.retry_in() == MAX_WAIT


def test_probe_success_closes_and_resets_counters(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    half_open(breaker, clock)
    breaker.record_success(breaker.allow())
    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == 0
    assert breaker.opened_at is None
    assert breaker.retry_in() == 0
    # A fresh run of failures is needed to open it again.
    breaker.record_failure(breaker.allow())
    breaker.record_failure(breaker.allow())
    assert breaker.state is BreakerState.CLOSED


def test_probe_failure_reopens_with_a_new_opening_time(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    half_open(breaker, clock)
    clock.advance(7)
    breaker.record_failure(breaker.allow())
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_at == TIMEOUT + 7
    assert breaker.failures == 4
    assert breaker.retry_in() == TIMEOUT
    clock.advance(TIMEOUT - TICK)
    assert breaker.allow() == REFUSED
    clock.advance(TICK)
    assert breaker.allow() >= 2


@pytest.mark.parametrize(
    "report",
    [
        pytest.param(lambda b, p: b.release(p), id="release"),
        pytest.param(lambda b, p: b.record(p, asyncio.CancelledError()), id="record-cancelled"),
    ],
)
def test_cancelled_probe_frees_the_slot_without_counting(
    breaker: CircuitBreaker,
    clock: ManualClock,
    report: Callable[[CircuitBreaker, int], None],
) -> None:
    half_open(breaker, clock)
    probe = breaker.allow()
    report(breaker, probe)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.failures == 3
    assert not breaker.probe_in_flight
    assert breaker.allow() >= 2


def test_excluded_error_in_probe_frees_the_slot_without_counting(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    half_open(breaker, clock)
    breaker.record(breaker.allow(), Excluded("caller's fault"))
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.failures == 3
    assert breaker.allow() >= 2


@pytest.mark.parametrize(
    ("waited", "slot_free"),
    [
        pytest.param(MAX_WAIT - TICK, False, id="max-wait-minus-one-tick"),
        pytest.param(MAX_WAIT, True, id="exactly-max-wait"),
        pytest.param(MAX_WAIT + TICK, True, id="max-wait-plus-one-tick"),
    ],
)
def test_probe_that_never_reports_frees_slot_after_max_wait(
    breaker: CircuitBreaker, clock: ManualClock, waited: float, slot_free: bool
) -> None:
    half_open(breaker, clock)
    assert breaker.allow() >= 2
    clock.advance(waited)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.probe_in_flight is not slot_free
    assert breaker.retry_in() == max(0.0, MAX_WAIT - waited)
    assert (breaker.allow() >= 2) is slot_free


@pytest.mark.parametrize(
    "report",
    [
        pytest.param(lambda b, p: b.record_success(p), id="late-success"),
        pytest.param(lambda b, p: b.record_failure(p), id="late-failure"),
        pytest.param(lambda b, p: b.release(p), id="late-release"),
    ],
)
def test_report_from_expired_probe_does_not_decide_the_new_probe(
    breaker: CircuitBreaker,
    clock: ManualClock,
    report: Callable[[CircuitBreaker, int], None],
) -> None:
    half_open(breaker, clock)
    stale = breaker.allow()
    clock.advance(MAX_WAIT)
    current = breaker.allow()
    assert current >= 2 and current != stale
    report(breaker, stale)
    assert breaker.summary()["state"] == "half_open"
    assert breaker.failures == 3
    assert breaker.probe_in_flight
    breaker.record_success(current)
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(
    "observe",
    [
        pytest.param(True, id="state-read-before-report"),
        pytest.param(False, id="report-without-reading-state"),
    ],
)
@pytest.mark.parametrize(
    "report",
    [
        pytest.param(lambda b, p: b.record_success(p), id="late-success"),
        pytest.param(lambda b, p: b.record_failure(p), id="late-failure"),
    ],
)
def test_report_from_expired_probe_is_ignored_whether_or_not_state_was_read(
    breaker: CircuitBreaker,
    clock: ManualClock,
    report: Callable[[CircuitBreaker, int], None],
    observe: bool,
) -> None:
    # Reading `state` is a query; the outcome must not depend on whether anyone asked.
    half_open(breaker, clock)
    stale = breaker.allow()
    clock.advance(MAX_WAIT)
    if observe:
        assert breaker.state is BreakerState.HALF_OPEN
    report(breaker, stale)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.failures == 3
    assert breaker.can_attempt()


@pytest.mark.parametrize(
    "report",
    [
        pytest.param(lambda b, p: b.record_success(p), id="late-success"),
        pytest.param(lambda b, p: b.record_failure(p), id="late-failure"),
        pytest.param(lambda b, p: b.release(p), id="late-release"),
    ],
)
def test_late_report_from_pre_open_call_does_not_decide_probe(
    breaker: CircuitBreaker,
    clock: ManualClock,
    report: Callable[[CircuitBreaker, int], None],
) -> None:
    slow_call = breaker.allow()
    assert slow_call == ADMITTED
    trip(breaker)
    clock.advance(TIMEOUT)
    probe = breaker.allow()
    report(breaker, slow_call)
    assert breaker.summary()["state"] == "half_open"
    assert breaker.failures == 3
    assert breaker.probe_in_flight
    breaker.record_failure(probe)
    assert breaker.state is BreakerState.OPEN


@pytest.mark.parametrize(
    "report",
    [
        pytest.param(lambda b, p: b.record_success(p), id="late-success"),
        pytest.param(lambda b, p: b.record_failure(p), id="late-failure"),
    ],
)
def test_late_report_while_open_changes_nothing(
    breaker: CircuitBreaker,
    clock: ManualClock,
    report: Callable[[CircuitBreaker, int], None],
) -> None:
    slow_call = breaker.allow()
    trip(breaker)
    clock.advance(TIMEOUT - TICK)
    before = snapshot(breaker)
    report(breaker, slow_call)
    assert snapshot(breaker) == before


# -- guard() -----------------------------------------------------------------------------------


async def test_guard_runs_the_body_and_records_success(breaker: CircuitBreaker) -> None:
    breaker.record_failure(breaker.allow())
    async with breaker.guard() as permit:
        assert permit == ADMITTED
    assert breaker.failures == 0


async def test_guard_on_open_breaker_raises_circuit_open_error_with_retry_in(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    trip(breaker)
    clock.advance(100)
    ran = False
    with pytest.raises(CircuitOpenError) as info:
        async with breaker.guard():
            ran = True
    assert not ran
    assert info.value.retry_in == TIMEOUT - 100
    assert info.value.node == "node-1"
    assert info.value.kind == "breaker_open"
    assert "retry in 200.0s" in str(info.value)


async def test_guard_refuses_a_second_caller_while_the_probe_is_in_flight(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    half_open(breaker, clock)
    async with breaker.guard() as probe:
        assert probe >= 2
        with pytest.raises(CircuitOpenError) as info:
            async with breaker.guard():
                pass
        assert info.value.retry_in == MAX_WAIT
    assert breaker.state is BreakerState.CLOSED


async def test_error_inside_guard_counts_as_failure_and_propagates(
    breaker: CircuitBreaker,
) -> None:
    for _ in range(3):
        with pytest.raises(ConnectionResetError):
            async with breaker.guard():
                raise ConnectionResetError("peer reset")
    assert breaker.state is BreakerState.OPEN


async def test_excluded_error_inside_guard_propagates_without_counting(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    half_open(breaker, clock)
    with pytest.raises(Excluded):
        async with breaker.guard():
            raise Excluded("bad request")
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.failures == 3
    assert breaker.can_attempt()


async def test_cancelled_error_inside_guard_releases_the_probe_slot(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    half_open(breaker, clock)
    entered = asyncio.Event()

    async def probe_forever() -> None:
        async with breaker.guard():
            entered.set()
            await asyncio.get_running_loop().create_future()

    task = asyncio.create_task(probe_forever())
    await entered.wait()
    assert breaker.probe_in_flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.failures == 3
    assert not breaker.probe_in_flight
    assert breaker.can_attempt()


async def test_cancelled_call_inside_guard_when_closed_does_not_count(
    breaker: CircuitBreaker,
) -> None:
    breaker.record_failure(breaker.allow())
    with pytest.raises(asyncio.CancelledError):
        async with breaker.guard():
            raise asyncio.CancelledError
    assert breaker.failures == 1


# -- listeners and reset -----------------------------------------------------------------------


def test_listeners_see_each_transition_with_its_reason(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    seen: list[Transition] = []
    breaker.add_listener(lambda *event: seen.append(event))
    closed, open_, half = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
    trip(breaker)
    clock.advance(TIMEOUT)
    breaker.record_failure(breaker.allow())
    clock.advance(TIMEOUT)
    probe = breaker.allow()
    breaker.release(probe)  # not a transition
    clock.advance(MAX_WAIT)  # nor is an expired probe slot
    breaker.record_success(breaker.allow())
    trip(breaker)
    breaker.reset()
    breaker.reset()  # already closed: no event
    assert seen == [
        ("node-1", closed, open_, "failure_threshold_reached"),
        ("node-1", open_, half, "recovery_timeout_elapsed"),
        ("node-1", half, open_, "probe_failed"),
        ("node-1", open_, half, "recovery_timeout_elapsed"),
        ("node-1", half, closed, "probe_succeeded"),
        ("node-1", closed, open_, "failure_threshold_reached"),
        ("node-1", open_, closed, "manual_reset"),
    ]


def test_reset_closes_the_breaker_and_forgets_failures(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    half_open(breaker, clock)
    stale_probe = breaker.allow()
    breaker.reset()
    assert snapshot(breaker) == (BreakerState.CLOSED, 0, None, False, 0.0)
    breaker.release(stale_probe)
    assert breaker.state is BreakerState.CLOSED


def test_summary_reports_state_failures_opened_at_and_retry_in(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    clock.advance(10)
    trip(breaker)
    clock.advance(60)
    assert breaker.summary() == {
        "state": "open",
        "failures": 3,
        "opened_at": 10,
        "retry_in": TIMEOUT - 60,
    }


# -- registry ----------------------------------------------------------------------------------


@pytest.fixture
def registry(clock: ManualClock) -> BreakerRegistry:
    return BreakerRegistry(failure_threshold=2, recovery_timeout=TIMEOUT, clock=clock)


def test_registry_keeps_one_isolated_breaker_per_node(registry: BreakerRegistry) -> None:
    a = registry.get("node-a")
    assert registry.get("node-a") is a
    a.record_failure(a.allow())
    a.record_failure(a.allow())
    assert not registry.can_attempt("node-a")
    assert registry.can_attempt("node-b")
    assert registry.get("node-b").state is BreakerState.CLOSED
    assert registry.get("node-b").failure_threshold == 2


def test_can_attempt_for_unknown_node_is_true_and_creates_no_breaker(
    registry: BreakerRegistry,
) -> None:
    assert registry.can_attempt("never-seen")
    assert "never-seen" not in registry
    assert registry.health_summary() == {}


def test_health_summary_lists_every_node_with_state_failures_opened_at_retry_in(
    registry: BreakerRegistry, clock: ManualClock
) -> None:
    b = registry.get("node-b")
    a = registry.get("node-a")
    a.record_failure(a.allow())
    clock.advance(5)
    b.record_failure(b.allow())
    b.record_failure(b.allow())
    clock.advance(100)
    summary = registry.health_summary()
    assert list(summary) == ["node-a", "node-b"]
    assert summary == {
        "node-a": {"state": "closed", "failures": 1, "opened_at": None, "retry_in": 0.0},
        "node-b": {"state": "open", "failures": 2, "opened_at": 5, "retry_in": TIMEOUT - 100},
    }


def test_reset_of_one_node_leaves_the_others_open(registry: BreakerRegistry) -> None:
    for node in ("node-a", "node-b"):
        b = registry.get(node)
        b.record_failure(b.allow())
        b.record_failure(b.allow())
    registry.reset("node-a")
    registry.reset("unknown-node")
    assert registry.can_attempt("node-a")
    assert not registry.can_attempt("node-b")
    assert "unknown-node" not in registry


def test_reset_without_a_node_closes_every_breaker(registry: BreakerRegistry) -> None:
    for node in ("node-a", "node-b"):
        b = registry.get(node)
        b.record_failure(b.allow())
        b.record_failure(b.allow())
    registry.reset()
    assert {n: s["state"] for n, s in registry.health_summary().items()} == {
        "node-a": "closed",
        "node-b": "closed",
    }


def test_registry_listener_sees_transitions_of_breakers_made_before_and_after(
    registry: BreakerRegistry,
) -> None:
    seen: list[Transition] = []
    early = registry.get("early")
    registry.add_listener(lambda *event: seen.append(event))
    late = registry.get("late")
    for b in (early, late):
        b.record_failure(b.allow())
        b.record_failure(b.allow())
    registry.reset()
    assert [(name, new, reason) for name, _, new, reason in seen] == [
        ("early", BreakerState.OPEN, "failure_threshold_reached"),
        ("late", BreakerState.OPEN, "failure_threshold_reached"),
        ("early", BreakerState.CLOSED, "manual_reset"),
        ("late", BreakerState.CLOSED, "manual_reset"),
    ]
