"""The one failover loop: one operation on one node, over an ordered list of candidates.

A candidate is one way to do the operation (a transport attempt, an HTTP route). The loop
takes the node's breaker permit once, runs candidates in the order a ``CandidateSource``
gives them, classifies each error once (``failures.classify``), records a typed ``Attempt``
and emits its events as it happens, and returns one ``FailoverOutcome``:

* success: the first candidate that returns wins; the breaker hears one success;
* a request error (``RequestError``: not found, a directory, a bad remote path, ...): the
  operation stops at once; the breaker and the router hear nothing, since another
  transport would fail the same way;
* a path error (``TransportError``): the source chooses the next candidate (the same one
  again, the next of the chain, or the escalation's choice); when none is left the breaker
  hears one failure, unless no candidate could even be tried (all unavailable);
* cancellation: the permit is released (neither success nor failure) and it propagates.

Route memory and racing (``netfault.engine.route_memory``, ``failover_race``): a candidate
names the node address it rides (``route``); ``ordered`` puts candidates on demoted routes
last, and every attempt's outcome teaches the memory. A candidate with a ``connect`` phase
is raced, ``race_delay`` apart, against the next candidate on another route; the first to
connect runs, the others are closed and recorded as ``cancelled`` attempts, never failures.

``ClusterTransport.transfer_file`` (transport candidates), ``http_request_with_failover``
(route candidates, ``http_failover``) and the script API (``transfer``) build candidates;
candidates and their sources (``Chain``, ``Escalated``) are in ``netfault.engine.candidates``.

The failover order is defined once, in ``netfault.engine.config`` ("Failover order");
``transfer_file(transports=...)`` and an ``Escalation`` choose it per operation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from netfault.engine.breaker import REFUSED, BreakerRegistry
from netfault.engine.candidates import (
    Candidate,
    CandidateSource,
    Chain,
    Connection,
    Escalated,
    Escalation,
)
from netfault.engine.config import NodeConfig
from netfault.engine.errors import (
    AttemptError,
    CircuitOpenError,
    TransportUnavailable,
    most_telling,
)
from netfault.engine.events import EventBus, EventType
from netfault.engine.failover_race import RaceStep
from netfault.engine.results import Attempt
from netfault.engine.route_memory import RouteMemory
from netfault.engine.transports.failures import (
    AttemptNote,
    Tracker,
    classify,
    noting,
    timed_out,
)

T = TypeVar("T")


@dataclass
class FailoverOutcome(Generic[T]):
    """What one operation did: its value if it succeeded, and every attempt in order."""

    node: str
    success: bool = False
    value: T | None = None
    transport_used: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    refused: bool = False
    latency_ms: float = 0.0


class FailoverOperation(Generic[T]):
    """One operation (``label``: "push", "pull", "http GET /status") on one node."""

    def __init__(
        self,
        node: NodeConfig,
        label: str,
        *,
        breakers: BreakerRegistry,
        events: EventBus,
        size: Callable[[T], int] | None = None,
        routes: RouteMemory | None = None,
        race_delay: float | None = None,
    ) -> None:
        self.node = node
        self.label = label
        self.breakers = breakers
        self.events = events
        self.routes = routes
        self.race_delay = race_delay  # None: candidates run strictly one after another
        self._size = size
        self._race = RaceStep(self)
        self._source_done = False
        self._tried = False  # a candidate ran and failed in a way that counts
        self._last: AttemptError | None = None
        self._kinds: list[str] = []  # the kinds of the failures that counted, in order

    async def run(self, source: CandidateSource[T]) -> FailoverOutcome[T]:
        """Take the permit once, walk the candidates, report one outcome to the breaker."""
        outcome: FailoverOutcome[T] = FailoverOutcome(self.node.name)
        breaker = self.breakers.get(self.node.name)
        permit = breaker.allow()
        if permit == REFUSED:
            return self._refused(outcome)
        started = time.perf_counter()
        try:
            await self._walk(source, outcome)
        except BaseException as exc:
            breaker.record(permit, exc)
            raise
        outcome.latency_ms = (time.perf_counter() - started) * 1000
        if outcome.success:
            breaker.record_success(permit)
        elif self._tried and (self._last is None or self._last.counts):
            breaker.record_failure(permit)
        else:
            breaker.release(permit)
        self._emit_end(outcome)
        return outcome

    def reject(self, error: AttemptError) -> FailoverOutcome[T]:
        """Fail the operation before any candidate ran (a request error); nothing counted."""
        outcome: FailoverOutcome[T] = FailoverOutcome(self.node.name)
        self._last = error
        self._emit_end(outcome)
        return outcome

    def ordered(self, candidates: Sequence[Candidate[T]]) -> list[Candidate[T]]:
        """``candidates`` with those on a demoted route moved last (order otherwise kept)."""
        if self.routes is None:
            return list(candidates)
        return self.routes.order(self.node.name, candidates, lambda c: c.route)

    async def _walk(self, source: CandidateSource[T], outcome: FailoverOutcome[T]) -> None:
        candidate = source.first()
        while candidate is not None:
            if not candidate.available or self._race.spent(candidate):
                if not candidate.available:
                    self._emit(EventType.ATTEMPT_SKIPPED, candidate.name, outcome="unavailable")
                skipped = Attempt(candidate.name, False, 0.0, TransportUnavailable.kind)
                candidate = self._next(source, skipped)
                continue
            rivals = self._race.rivals(candidate, source)
            if rivals:
                ran, attempt, value = await self._race.run([candidate, *rivals], outcome, source)
            else:
                ran, (attempt, value) = candidate, await self._attempt(candidate)
                outcome.attempts.append(attempt)
            if attempt.success:
                outcome.success, outcome.value = True, value
                outcome.transport_used = ran.reports_as or ran.name
                return
            if self._last is not None and not self._last.fails_over:
                return
            candidate = self._next(source, attempt)

    def _next(self, source: CandidateSource[T], failed: Attempt) -> Candidate[T] | None:
        """The source's next candidate; once it has none, those that lost a race."""
        if not self._source_done:
            candidate = source.after(failed)
            if candidate is not None or source.follows_races:
                return candidate
            self._source_done = True
        return self._race.take_lost()

    async def _attempt(
        self,
        candidate: Candidate[T],
        run: Callable[[], Awaitable[T]] | None = None,
        started: float | None = None,
    ) -> tuple[Attempt, T | None]:
        """One attempt (``run``: on a connection already set up since ``started``)."""
        name = candidate.name
        if started is None:
            self._emit(EventType.ATTEMPT_STARTED, name)
            started = time.perf_counter()
        with noting() as note:
            try:
                async with asyncio.timeout(candidate.timeout):
                    value = await (run or candidate.run)()
            except Exception as exc:
                error = self._classify(exc, candidate, note)
                ms = (time.perf_counter() - started) * 1000
                failed = self._failed(name, error, ms, note)
                self._learn(candidate, error)
                return failed, None
        ms = (time.perf_counter() - started) * 1000
        moved = self._size(value) if self._size is not None else 0
        resumed = note.resumed_from or None
        self._emit(
            EventType.ATTEMPT_SUCCEEDED,
            name,
            outcome="success",
            bytes=moved,
            resumed_from=resumed,
            duration_ms=ms,
        )
        self._learn(candidate, None)
        return Attempt(name, True, ms, bytes=moved, resumed_from=note.resumed_from), value

    def _learn(self, candidate: Candidate[T], error: AttemptError | None) -> None:
        """Tell route memory how the candidate's route did (a request error says nothing)."""
        if self.routes is None or candidate.route is None:
            return
        if error is None or error.fails_over:
            self.routes.record_attempt(self.node.name, candidate.route, error)

    def _classify(
        self, exc: Exception, candidate: Candidate[T], note: AttemptNote | None = None
    ) -> AttemptError:
        tracker = Tracker(self.node, candidate.name)
        if note is not None and note.tracked:  # how far it got, for the timeout's hint
            tracker.done = note.resumed_from + note.sent
        if isinstance(exc, TimeoutError) and candidate.timeout is not None:
            return timed_out(tracker, candidate.timeout)
        return classify(exc, tracker)

    def _failed(
        self, name: str, error: AttemptError, ms: float, note: AttemptNote | None = None
    ) -> Attempt:
        if error.counts or not error.fails_over:
            self._tried = self._tried or error.counts
            self._last = error
            self._kinds.append(error.kind)
        # the bytes this attempt moved itself (its tracker's count, when it had one)
        moved = note.sent if note is not None and note.tracked else error.bytes_done
        resumed_from = note.resumed_from if note is not None else 0
        self._emit(
            EventType.ATTEMPT_FAILED,
            name,
            outcome="failure" if error.fails_over else "rejected",
            error_kind=error.kind,
            error=error.message,
            bytes=moved,
            resumed_from=resumed_from or None,
            duration_ms=ms,
        )
        return Attempt(name, False, ms, error.kind, error.message, moved, resumed_from)

    def _refused(self, outcome: FailoverOutcome[T]) -> FailoverOutcome[T]:
        err = CircuitOpenError(self.node.name, self.breakers.get(self.node.name).retry_in())
        outcome.error, outcome.error_kind, outcome.refused = err.message, err.kind, True
        self._emit(
            EventType.OPERATION_FAILED,
            None,
            outcome="refused",
            error_kind=err.kind,
            error=err.message,
        )
        return outcome

    def _emit_end(self, outcome: FailoverOutcome[T]) -> None:
        if outcome.success:
            moved = outcome.attempts[-1].bytes
            self._emit(
                EventType.OPERATION_SUCCEEDED,
                outcome.transport_used,
                outcome="success",
                bytes=moved,
                duration_ms=outcome.latency_ms,
            )
            return
        last = self._last
        rejected = last is not None and not last.fails_over
        if rejected:
            assert last is not None
            outcome.error_kind, outcome.error = last.kind, last.message  # what stopped it
        else:
            outcome.error_kind = most_telling(self._kinds) or TransportUnavailable.kind
            tried = "; ".join(f"{a.transport}: {a.message}" for a in outcome.attempts)
            tried = tried or "none available"
            outcome.error = f"every transport to {self.node.name} failed: {tried}"
        self._emit(
            EventType.OPERATION_FAILED,
            None,
            outcome="rejected" if rejected else "failure",
            error_kind=outcome.error_kind,
            error=outcome.error,
            duration_ms=outcome.latency_ms,
        )

    def _emit(self, type_: EventType, transport: str | None, **fields: object) -> None:
        self.events.emit(
            type_, node=self.node.name, transport=transport, operation=self.label, **fields
        )


__all__ = [
    "Candidate",
    "CandidateSource",
    "Chain",
    "Connection",
    "Escalated",
    "Escalation",
    "FailoverOperation",
    "FailoverOutcome",
]
