"""Per-node circuit breakers on an injected clock.

CLOSED -> OPEN after ``failure_threshold`` consecutive failures. OPEN -> HALF_OPEN once
``recovery_timeout`` seconds have passed. HALF_OPEN admits one probe at a time: its success
closes the breaker, its failure re-opens it with a new opening time, and a probe that never
reports back frees its slot after ``half_open_max_wait``. Cancellations and excluded errors
count as neither success nor failure.

``allow()`` returns a permit: ``REFUSED`` (0), ``ADMITTED`` (1) or a probe id (>= 2). The
permit goes back with the outcome, so a late report from a call admitted before the breaker
opened, or from a probe whose slot already expired, never decides the current probe.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from netfault.engine.clock import SYSTEM_CLOCK, Clock
from netfault.engine.errors import CircuitOpenError

REFUSED = 0
ADMITTED = 1


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


Listener = Callable[[str, BreakerState, BreakerState, str], None]
"""Called as listener(name, old_state, new_state, reason) on every transition."""

_CLOSED, _OPEN, _HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class CircuitBreaker:
    """One node's breaker; synchronous, so it can be model-checked and benchmarked."""

    __slots__ = (
        "name",
        "failure_threshold",
        "recovery_timeout",
        "half_open_max_wait",
        "excluded",
        "_clock",
        "_state",
        "_failures",
        "_opened_at",
        "_probe_id",
        "_probe_started",
        "_next_probe_id",
        "_listeners",
    )

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 3,
        recovery_timeout: float = 300.0,
        half_open_max_wait: float = 600.0,
        clock: Clock = SYSTEM_CLOCK,
        excluded: tuple[type[BaseException], ...] = (),
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.half_open_max_wait = half_open_max_wait
        self.excluded = excluded
        self._clock = clock
        self._state = _CLOSED
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_id = 0  # 0: no probe in flight
        self._probe_started = 0.0
        self._next_probe_id = 2
        self._listeners: list[Listener] = []

    # -- state ---------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        if self._state is not _CLOSED:
            self._advance()
        return self._state

    @property
    def failures(self) -> int:
        return self._failures

    @property
    def opened_at(self) -> float | None:
        return self._opened_at

    @property
    def probe_in_flight(self) -> bool:
        self.state  # noqa: B018 - expires a stale probe slot
        return self._probe_id != 0

    def retry_in(self) -> float:
        """Seconds until a call may be attempted (0 when one may be now)."""
        state = self.state
        if state is _OPEN and self._opened_at is not None:
            return max(0.0, self._opened_at + self.recovery_timeout - self._clock.monotonic())
        if state is _HALF_OPEN and self._probe_id:
            return max(0.0, self._probe_started + self.half_open_max_wait - self._clock.monotonic())
        return 0.0

    def _advance(self) -> None:
        now = self._clock.monotonic()
        if self._state is _OPEN:
            assert self._opened_at is not None
            if now >= self._opened_at + self.recovery_timeout:
                self._transition(_HALF_OPEN, "recovery_timeout_elapsed")
        elif self._probe_id and now >= self._probe_started + self.half_open_max_wait:
            self._probe_id = 0

    def _transition(self, new: BreakerState, reason: str) -> None:
        old = self._state
        self._state = new
        for listener in list(self._listeners):
            listener(self.name, old, new, reason)

    def _open(self, reason: str) -> None:
        self._opened_at = self._clock.monotonic()
        self._probe_id = 0
        self._transition(_OPEN, reason)

    # -- calls ---------------------------------------------------------------
    def can_attempt(self) -> bool:
        """Whether ``allow()`` would admit a call now (takes no slot)."""
        state = self.state
        return state is _CLOSED or (state is _HALF_OPEN and not self._probe_id)

    def allow(self) -> int:
        """Admit a call: REFUSED, ADMITTED, or a probe id in HALF_OPEN."""
        if self._state is _CLOSED:
            return ADMITTED
        self._advance()
        if self._state is _HALF_OPEN and not self._probe_id:
            self._probe_id = self._next_probe_id
            self._next_probe_id += 1
            self._probe_started = self._clock.monotonic()
            return self._probe_id
        return REFUSED

    def record_success(self, permit: int = ADMITTED) -> None:
        if self._state is _CLOSED:
            self._failures = 0
            return
        self._advance()  # an expired probe's slot is freed before its late report counts
        if permit >= 2 and permit == self._probe_id:
            self._failures = 0
            self._probe_id = 0
            self._opened_at = None
            self._transition(_CLOSED, "probe_succeeded")

    def record_failure(self, permit: int = ADMITTED) -> None:
        if self._state is _CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open("failure_threshold_reached")
            return
        self._advance()
        if permit >= 2 and permit == self._probe_id:
            self._failures += 1
            self._open("probe_failed")

    def release(self, permit: int) -> None:
        """The call was cancelled or hit an excluded error: neither success nor failure."""
        self._advance()
        if permit >= 2 and permit == self._probe_id:
            self._probe_id = 0

    def record(self, permit: int, exc: BaseException | None) -> None:
        """Report the outcome of an admitted call by the exception it ended with."""
        if exc is None:
            self.record_success(permit)
        elif not isinstance(exc, Exception) or isinstance(exc, self.excluded):
            # cancellation, interpreter exit and excluded errors say nothing about the node
            self.release(permit)
        else:
            self.record_failure(permit)

    def guard(self) -> _Guard:
        """``async with breaker.guard():`` runs the body only if admitted and records it."""
        return _Guard(self)

    def reset(self) -> None:
        """Close the breaker and forget its failures."""
        self._failures = 0
        self._opened_at = None
        self._probe_id = 0
        if self._state is not _CLOSED:
            self._transition(_CLOSED, "manual_reset")

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def summary(self) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "failures": self._failures,
            "opened_at": self._opened_at,
            "retry_in": self.retry_in(),
        }


class _Guard:
    """The context manager behind ``CircuitBreaker.guard()`` (a class: cheaper than an
    ``asynccontextmanager`` generator on this hot path, see ``bench/breaker.py``)."""

    __slots__ = ("_breaker", "_permit")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker
        self._permit = REFUSED

    async def __aenter__(self) -> int:
        permit = self._breaker.allow()
        if permit == REFUSED:
            raise CircuitOpenError(self._breaker.name, self._breaker.retry_in())
        self._permit = permit
        return permit

    async def __aexit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is None:
            self._breaker.record_success(self._permit)
        else:
            self._breaker.record(self._permit, exc)


class BreakerRegistry:
    """One breaker per node, created on first use with shared settings."""

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        recovery_timeout: float = 300.0,
        half_open_max_wait: float = 600.0,
        clock: Clock = SYSTEM_CLOCK,
        excluded: tuple[type[BaseException], ...] = (),
    ) -> None:
        self._settings: dict[str, Any] = {
            "failure_threshold": failure_threshold,
            "recovery_timeout": recovery_timeout,
            "half_open_max_wait": half_open_max_wait,
            "clock": clock,
            "excluded": excluded,
        }
        self._breakers: dict[str, CircuitBreaker] = {}
        self._listeners: list[Listener] = []

    def get(self, node: str) -> CircuitBreaker:
        breaker = self._breakers.get(node)
        if breaker is None:
            breaker = CircuitBreaker(node, **self._settings)
            for listener in self._listeners:
                breaker.add_listener(listener)
            self._breakers[node] = breaker
        return breaker

    def can_attempt(self, node: str) -> bool:
        breaker = self._breakers.get(node)
        return breaker is None or breaker.can_attempt()

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)
        for breaker in self._breakers.values():
            breaker.add_listener(listener)

    def health_summary(self) -> dict[str, dict[str, Any]]:
        return {node: b.summary() for node, b in sorted(self._breakers.items())}

    def reset(self, node: str | None = None) -> None:
        targets = [self._breakers[node]] if node in self._breakers else []
        for breaker in self._breakers.values() if node is None else targets:
            breaker.reset()

    def __contains__(self, node: str) -> bool:
        return node in self._breakers
