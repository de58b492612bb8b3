"""CircuitBreaker against a small independent model, step by step (Hypothesis stateful)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from netfault.engine.breaker import ADMITTED, REFUSED, BreakerState, CircuitBreaker
from netfault.engine.clock import ManualClock

THRESHOLD = 3
TIMEOUT = 300.0
MAX_WAIT = 600.0
# Every time is a multiple of 0.5, so sums of them are exact floats and `>=` straddles exactly.
TICK = 1.0
DELTAS = [0.0, 0.5, TICK, 5.0, TIMEOUT - TICK, TIMEOUT, TIMEOUT + TICK]
DELTAS += [MAX_WAIT - TICK, MAX_WAIT, MAX_WAIT + TICK]
OFFSETS = [-TICK, -0.5, 0.0, 0.5, TICK]


class Excluded(Exception):
    pass


@dataclass(frozen=True)
class Permit:
    token: int  # the model's name for this call
    real: int  # what CircuitBreaker.allow() returned


@dataclass
class Model:
    """The breaker as the issue describes it, with time-driven changes applied eagerly."""

    now: float = 0.0
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float | None = None
    probe: int | None = None  # token of the probe in flight
    probe_started: float = 0.0
    probes: set[int] = field(default_factory=set)  # tokens ever admitted as probes

    def advance(self, seconds: float) -> None:
        self.now += seconds
        if self.state is BreakerState.OPEN:
            assert self.opened_at is not None
            if self.now >= self.opened_at + TIMEOUT:
                self.state = BreakerState.HALF_OPEN
        if self.probe is not None and self.now >= self.probe_started + MAX_WAIT:
            self.probe = None

    def allow(self, token: int) -> str:
        if self.state is BreakerState.CLOSED:
            return "admitted"
        if self.state is BreakerState.HALF_OPEN and self.probe is None:
            self.probe, self.probe_started = token, self.now
            self.probes.add(token)
            return "probe"
        return "refused"

    def success(self, token: int) -> None:
        if self.state is BreakerState.CLOSED:
            self.failures = 0
        elif token == self.probe:
            self.state, self.failures, self.opened_at, self.probe = (
                BreakerState.CLOSED,
                0,
                None,
                None,
            )

    def failure(self, token: int) -> None:
        if self.state is BreakerState.CLOSED:
            self.failures += 1
            if self.failures >= THRESHOLD:
                self.open()
        elif token == self.probe:
            self.failures += 1
            self.open()

    def release(self, token: int) -> None:
        if token == self.probe:
            self.probe = None

    def open(self) -> None:
        self.state, self.opened_at, self.probe = BreakerState.OPEN, self.now, None

    def reset(self) -> None:
        self.state, self.failures, self.opened_at, self.probe = BreakerState.CLOSED, 0, None, None

    def retry_in(self) -> float:
        if self.state is BreakerState.OPEN:
            assert self.opened_at is not None
            return self.opened_at + TIMEOUT - self.now
        if self.probe is not None:
            return self.probe_started + MAX_WAIT - self.now
        return 0.0


# How each report reaches the breaker: the direct call, or record() with the exception.
REPORTS: dict[str, tuple[str, BaseException | None]] = {
    "success": ("record_success", None),
    "failure": ("record_failure", ConnectionResetError("peer reset")),
    "excluded": ("release", Excluded("caller's fault")),
    "cancel": ("release", asyncio.CancelledError()),
}
MODEL_EFFECT = {
    "success": "success",
    "failure": "failure",
    "excluded": "release",
    "cancel": "release",
}

# Which outstanding call reports: the first or latest probe still out (live or expired), the
# oldest call (often admitted before the breaker opened), or the n-th newest.
picks: st.SearchStrategy[str | int] = st.one_of(
    st.sampled_from(["first-probe", "last-probe", "oldest"]), st.integers(min_value=0, max_value=6)
)


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.breaker = CircuitBreaker(
            "node-1",
            failure_threshold=THRESHOLD,
            recovery_timeout=TIMEOUT,
            half_open_max_wait=MAX_WAIT,
            clock=self.clock,
            excluded=(Excluded,),
        )
        self.model = Model()
        self.outstanding: list[Permit] = []
        self.next_token = 0

    def observed(self) -> tuple[object, ...]:
        b = self.breaker
        return (b.state, b.failures, b.opened_at, b.probe_in_flight, b.retry_in())

    # -- calls -------------------------------------------------------------------------------
    def begin(self) -> Permit | None:
        before = self.observed()
        token, self.next_token = self.next_token, self.next_token + 1
        real = self.breaker.allow()
        expected = self.model.allow(token)
        if expected == "refused":
            assert real == REFUSED
            assert self.observed() == before, "a refused call changed the breaker"
            return None
        assert (real == ADMITTED) if expected == "admitted" else (real >= 2)
        return Permit(token, real)

    def report(self, permit: Permit, outcome: str, via_record: bool) -> None:
        method, exc = REPORTS[outcome]
        if via_record:
            self.breaker.record(permit.real, exc)
        else:
            getattr(self.breaker, method)(permit.real)
        getattr(self.model, MODEL_EFFECT[outcome])(permit.token)

    def report_outstanding(self, pick: str | int, outcome: str, via_record: bool) -> None:
        if not self.outstanding:
            return
        if pick == "oldest":
            index = 0
        elif pick in ("first-probe", "last-probe"):
            probes = [i for i, p in enumerate(self.outstanding) if p.real >= 2] or [-1]
            index = probes[0] if pick == "first-probe" else probes[-1]
        else:
            index = -1 - int(pick) % len(self.outstanding)
        self.report(self.outstanding.pop(index), outcome, via_record)

    @initialize(start=st.sampled_from(["closed", "one-failure-short", "open", "half-open"]))
    def start_in(self, start: str) -> None:
        """Start most runs at or past the threshold (via the public API) to reach later states."""
        failures = {"closed": 0, "one-failure-short": THRESHOLD - 1}.get(start, THRESHOLD)
        for _ in range(failures):
            self.complete_call("failure")
        if start == "half-open":
            self.advance(TIMEOUT)

    @rule()
    def begin_call(self) -> None:
        permit = self.begin()
        if permit is not None:
            self.outstanding.append(permit)

    @rule(pick=picks, outcome=st.sampled_from(sorted(REPORTS)), via_record=st.booleans())
    def end_call(self, pick: str | int, outcome: str, via_record: bool) -> None:
        """An outstanding call ends: success, failure, excluded error or cancellation."""
        self.report_outstanding(pick, outcome, via_record)

    @rule(outcome=st.sampled_from(sorted(REPORTS)))
    def complete_call(self, outcome: str) -> None:
        """A call that begins and reports with no other call in between."""
        permit = self.begin()
        if permit is not None:
            self.report(permit, outcome, via_record=False)

    # -- time --------------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.model.advance(seconds)

    def seconds_to_deadline(self, offset: float) -> float:
        """Seconds to just before, on, or after the recovery timeout or the probe's max wait."""
        m = self.model
        if m.state is BreakerState.OPEN and m.opened_at is not None:
            deadline = m.opened_at + TIMEOUT
        elif m.probe is not None:
            deadline = m.probe_started + MAX_WAIT
        else:
            return 0.0
        return max(0.0, deadline + offset - m.now)

    @rule(seconds=st.sampled_from(DELTAS))
    def advance_clock(self, seconds: float) -> None:
        self.advance(seconds)

    @rule(offset=st.sampled_from(OFFSETS))
    def advance_to_around_the_next_deadline(self, offset: float) -> None:
        self.advance(self.seconds_to_deadline(offset))

    @rule(pick=picks, outcome=st.sampled_from(sorted(REPORTS)), offset=st.sampled_from(OFFSETS))
    def advance_then_report_without_looking(
        self, pick: str | int, outcome: str, offset: float
    ) -> None:
        """The clock crosses a deadline and a report arrives before anyone reads the state."""
        self.advance(self.seconds_to_deadline(offset))
        self.report_outstanding(pick, outcome, via_record=False)

    @rule()
    def reset(self) -> None:
        self.breaker.reset()
        self.model.reset()

    # -- invariants --------------------------------------------------------------------------
    @invariant()
    def state_matches_the_model(self) -> None:
        assert self.breaker.state is self.model.state

    @invariant()
    def failures_match_the_model(self) -> None:
        assert self.breaker.failures == self.model.failures
        assert self.breaker.opened_at == self.model.opened_at

    @invariant()
    def at_most_one_probe_in_flight(self) -> None:
        in_flight = self.model.probe is not None
        assert self.breaker.probe_in_flight is in_flight
        assert len({self.model.probe} & self.model.probes) <= 1
        if self.model.state is BreakerState.HALF_OPEN:
            assert self.breaker.can_attempt() is not in_flight

    @invariant()
    def retry_in_is_never_negative_and_matches_the_model(self) -> None:
        retry_in = self.breaker.retry_in()
        assert retry_in >= 0
        assert retry_in == self.model.retry_in()


BreakerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestBreakerAgainstModel = BreakerMachine.TestCase


def test_machine_replay_expired_probe_reports_before_anyone_reads_the_state() -> None:
    """Regression: a probe expired by the clock alone must not decide when it reports late."""
    machine = BreakerMachine()
    for _ in range(THRESHOLD):
        machine.complete_call("failure")
    machine.advance_to_around_the_next_deadline(offset=0.0)
    machine.begin_call()
    machine.advance_then_report_without_looking(pick="last-probe", outcome="success", offset=0.0)
    machine.state_matches_the_model()
    machine.failures_match_the_model()
    machine.at_most_one_probe_in_flight()
    machine.retry_in_is_never_negative_and_matches_the_model()


@settings(max_examples=200, deadline=None)
@given(
    threshold=st.integers(min_value=1, max_value=5),
    outcomes=st.lists(st.booleans(), max_size=30),
)
def test_closed_breaker_opens_exactly_when_consecutive_failures_reach_threshold(
    threshold: int, outcomes: list[bool]
) -> None:
    breaker = CircuitBreaker("n", failure_threshold=threshold, clock=ManualClock())
    run = 0
    for failed in outcomes:
        permit = breaker.allow()
        assert permit == ADMITTED
        if failed:
            breaker.record_failure(permit)
            run += 1
        else:
            breaker.record_success(permit)
            run = 0
        assert (breaker.state is BreakerState.OPEN) is (run >= threshold)
        assert breaker.failures == run
        if run >= threshold:
            assert breaker.allow() == REFUSED
            break
