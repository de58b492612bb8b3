"""The failover loop's racing step: leading candidates on different routes race to connect.

``FailoverOperation`` asks ``rivals`` for the candidates that may race the one it is about
to run: when racing is on (``race_delay`` set) and the candidate has a ``connect`` phase,
the first raceable candidate of each other route among those queued after it (or lost
earlier in this operation). ``run`` races their ``connect`` with ``netfault.engine.race``,
records each connect failure as the attempt it is, each loser as a ``cancelled`` attempt
(``ATTEMPT_CANCELLED``, never a failure), demotes a route outpaced in the race, and runs the
operation on the winner's connection alone. For a source that does not follow races (a
fixed chain), a rival that failed or ran is not offered again in the same operation, and a
candidate that lost is offered again when the source has nothing left; a source that
follows them (an escalation) hears each connect failure as it happens and decides alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from netfault.engine.errors import CANCELLED_KIND as CANCELLED
from netfault.engine.events import EventType
from netfault.engine.race import RaceOutcome, RaceResult, outpaced, race
from netfault.engine.results import Attempt

if TYPE_CHECKING:
    from netfault.engine.candidates import Candidate, CandidateSource, Connection
    from netfault.engine.failover import FailoverOperation, FailoverOutcome

T = TypeVar("T")


@dataclass(slots=True)
class _Entrant(Generic[T]):
    candidate: Candidate[T]
    started: float  # perf_counter when its connect began
    connection: Connection[T]


class RaceStep(Generic[T]):
    """Racing state of one operation: what already ran in a race, and who lost."""

    def __init__(self, op: FailoverOperation[T]) -> None:
        self._op = op
        self._spent: set[str] = set()  # rivals that failed to connect or ran
        self._lost: list[Candidate[T]] = []  # candidates the source moved past, cancelled
        self._queued: set[str] = set()  # names the source still holds, as of the last race
        self._broken: list[Exception] = []  # raised by the source while it heard a failure

    def spent(self, candidate: Candidate[T]) -> bool:
        """Whether the source offers a candidate that already raced (skip it, once)."""
        if candidate.name in self._spent:
            self._spent.discard(candidate.name)
            return True
        return False

    def take_lost(self) -> Candidate[T] | None:
        """A candidate that lost a race and has not run since, once the source is done."""
        return self._lost.pop(0) if self._lost else None

    def rivals(self, lead: Candidate[T], source: CandidateSource[T]) -> list[Candidate[T]]:
        """Candidates to race against ``lead``: one per other route, in queue order."""
        self._lost = [c for c in self._lost if c.name != lead.name]  # offered again already
        if self._op.race_delay is None or lead.connect is None or lead.route is None:
            return []
        upcoming = source.upcoming()
        seen, found = {lead.route}, []
        for c in [*self._lost, *upcoming]:
            if c.connect is None or c.route is None or c.route in seen or not c.available:
                continue
            if c.name in self._spent or c.name == lead.name:
                continue
            seen.add(c.route)
            found.append(c)
        self._lost = [c for c in self._lost if c not in found]
        self._queued = {c.name for c in upcoming}
        return found

    async def run(
        self, entrants: list[Candidate[T]], outcome: FailoverOutcome[T], source: CandidateSource[T]
    ) -> tuple[Candidate[T], Attempt, T | None]:
        """Race ``entrants``' connects; run the winner; return what ran and its attempt."""
        op = self._op

        async def close(entrant: _Entrant[T]) -> None:
            await entrant.connection.close()
            self._cancelled(entrant.candidate, entrant.started, outcome)

        starters = [self._starter(c, outcome, source) for c in entrants]
        raced: RaceResult[_Entrant[T]] = await race(starters, op.race_delay, close=close)
        for index in outpaced(raced):  # still connecting after race_delay: try it last
            self._demote(entrants[index])
        if not source.follows_races:  # otherwise the source decides what runs again
            self._settle(entrants, raced)
        winner = raced.winner
        if self._broken:  # the source itself failed: the operation cannot go on
            if winner is not None:
                await close(winner)
            raise self._broken[0]
        if winner is None or (op._last is not None and not op._last.fails_over):
            if winner is not None:  # a request error in another connect: stop, unsent
                await close(winner)
            failed = [a for a in outcome.attempts if a.error_kind != CANCELLED]
            return entrants[0], failed[-1], None
        candidate = winner.candidate
        attempt, value = await op._attempt(candidate, winner.connection.run, winner.started)
        outcome.attempts.append(attempt)
        return candidate, attempt, value

    def _settle(self, entrants: list[Candidate[T]], raced: RaceResult[_Entrant[T]]) -> None:
        """Note what the source must not offer again, and what it has moved past."""
        for candidate, entry in zip(entrants, raced.entries, strict=True):
            if entry.outcome in (RaceOutcome.FAILED, RaceOutcome.WON):
                self._spent.add(candidate.name)  # not again from the source
            elif candidate.name not in self._queued or candidate is entrants[0]:
                self._lost.append(candidate)  # the source has moved past it
        self._spent.discard(entrants[0].name)  # the source's current one: it moves on itself

    def _starter(
        self, candidate: Candidate[T], outcome: FailoverOutcome[T], source: CandidateSource[T]
    ) -> Callable[[], Awaitable[_Entrant[T]]]:
        op = self._op
        connect = candidate.connect
        assert connect is not None

        async def start() -> _Entrant[T]:
            op._emit(EventType.ATTEMPT_STARTED, candidate.name)
            started = time.perf_counter()
            try:
                async with asyncio.timeout(candidate.timeout):
                    connection = await connect()
            except BaseException as exc:
                if not isinstance(exc, Exception):  # cancelled: lost, or the operation was
                    self._cancelled(candidate, started, outcome)
                    raise
                error = op._classify(exc, candidate)
                ms = (time.perf_counter() - started) * 1000
                failed = op._failed(candidate.name, error, ms)
                outcome.attempts.append(failed)
                op._learn(candidate, error)
                if source.follows_races and error.fails_over:
                    try:
                        source.raced(failed)  # heard now, in the order it happened
                    except Exception as bug:  # the race would take it for a connect failure
                        self._broken.append(bug)
                raise
            return _Entrant(candidate, started, connection)

        return start

    def _cancelled(
        self, candidate: Candidate[T], started: float, outcome: FailoverOutcome[T]
    ) -> None:
        ms = (time.perf_counter() - started) * 1000
        node = self._op.node.name
        message = f"{candidate.name}@{node}: connection abandoned, another route connected first"
        outcome.attempts.append(Attempt(candidate.name, False, ms, CANCELLED, message))
        self._op._emit(
            EventType.ATTEMPT_CANCELLED, candidate.name, outcome=CANCELLED, duration_ms=ms
        )

    def _demote(self, candidate: Candidate[T]) -> None:
        routes = self._op.routes
        if routes is not None and candidate.route is not None:
            routes.record_failure(self._op.node.name, candidate.route, "outpaced")


__all__ = ["RaceStep"]
