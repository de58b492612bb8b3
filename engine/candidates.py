"""What the failover loop runs: candidates, where they come from, and an escalation hook.

A ``Candidate`` is one way to do an operation (a transport attempt, an HTTP route), with an
optional ``connect`` phase that racing runs early. A ``CandidateSource`` gives them in
order: ``Chain`` a fixed list, ``Escalated`` whatever an ``Escalation`` (the router) names
after each failure. The loop itself is ``netfault.engine.failover``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from netfault.engine.errors import IntegrityError, TransportUnavailable
from netfault.engine.results import Attempt
from netfault.engine.route_memory import RouteName

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Escalation(Protocol):
    """Chooses the next transport after a failed attempt (None: stop); see ``transfer_file``."""

    def next_transport(self, failed: Attempt) -> str | None: ...


class Connection(Protocol[T_co]):
    """A candidate's connection, set up and unused: ``run`` does the operation on it."""

    def run(self) -> Awaitable[T_co]: ...

    def close(self) -> Awaitable[None]: ...


@dataclass(frozen=True)
class Candidate(Generic[T]):
    """One thing to try: ``run`` returns the operation's value or raises."""

    name: str  # in attempts and events, e.g. "ssh" or "http:tailscale"
    run: Callable[[], Awaitable[T]]
    available: bool = True
    timeout: float | None = None  # limit of one attempt, child processes included
    reports_as: str | None = None  # the result's ``transport_used`` (default: ``name``)
    route: RouteName | None = None  # the node address it rides (route memory, racing)
    connect: Callable[[], Awaitable[Connection[T]]] | None = None  # set-up phase: raceable


class CandidateSource(Protocol[T]):
    """Gives the candidates of one operation: the first, then one after each failure.

    Racing runs candidates of ``upcoming`` early. A source that ``follows_races`` is told of
    each connect failure in a race as it happens (``raced``) and decides itself what runs
    again; for one that does not, the loop skips, once, a candidate it offers that already
    failed or ran in a race, and offers race losers again once it has nothing left.
    """

    follows_races: bool

    def first(self) -> Candidate[T] | None: ...

    def after(self, failed: Attempt) -> Candidate[T] | None: ...

    def upcoming(self) -> Sequence[Candidate[T]]:
        """The candidates queued after the current one (racing looks ahead; none: [])."""
        ...

    def raced(self, failed: Attempt) -> None:
        """A raced connection failed (only called when ``follows_races``)."""
        ...


class Chain(Generic[T]):
    """Candidates in a fixed order: each gets ``tries`` attempts for path errors, plus
    ``integrity_retries`` more after an integrity error, before the next one runs."""

    def __init__(
        self, candidates: Sequence[Candidate[T]], *, tries: int = 1, integrity_retries: int = 0
    ) -> None:
        self._candidates = list(candidates)
        self._tries = max(1, tries)
        self._integrity = max(0, integrity_retries)
        self._index = -1
        self._tries_left = 0
        self._integrity_left = 0

    def first(self) -> Candidate[T] | None:
        return self._advance()

    def after(self, failed: Attempt) -> Candidate[T] | None:
        if failed.error_kind == IntegrityError.kind and self._integrity_left > 0:
            self._integrity_left -= 1
            return self._candidates[self._index]
        if failed.error_kind not in (IntegrityError.kind, TransportUnavailable.kind):
            self._tries_left -= 1
            if self._tries_left > 0:
                return self._candidates[self._index]
        return self._advance()

    follows_races = False  # its order is fixed: the loop skips what already raced

    def upcoming(self) -> Sequence[Candidate[T]]:
        return self._candidates[self._index + 1 :]

    def raced(self, failed: Attempt) -> None:
        return None

    def _advance(self) -> Candidate[T] | None:
        self._index += 1
        self._tries_left, self._integrity_left = self._tries, self._integrity
        if self._index < len(self._candidates):
            return self._candidates[self._index]
        return None


class Escalated(Generic[T]):
    """Candidates in ``order``, the first first, then whatever ``escalation`` names after each
    failure. A named transport the node cannot use is skipped and reported as an attempt of
    kind ``unavailable`` (never in the result's attempts), so the escalation names another.

    It follows races: the escalation hears each raced connection's failure when it happens,
    so its decisions (and a router's events) keep their true order, and it alone decides
    what runs again. A race's cancelled loser is never reported: it stays in line. The
    transports still in line (``upcoming``, what racing may start early) are those of
    ``order`` the escalation has not moved past: asked after a transport's failure, it
    named another.
    """

    follows_races = True

    def __init__(
        self, order: Sequence[str], build: Callable[[str], Candidate[T]], escalation: Escalation
    ) -> None:
        self._order, self._build, self._escalation = list(order), build, escalation
        self._current: str | None = None
        self._done: set[str] = set()
        self._heard: list[Attempt] = []  # raced failures the escalation already heard
        self._latest: str | None = None  # its answer to the last of them

    def first(self) -> Candidate[T] | None:
        self._current = self._order[0] if self._order else None
        return None if self._current is None else self._build(self._current)

    def after(self, failed: Attempt) -> Candidate[T] | None:
        if any(failed is heard for heard in self._heard):
            name = self._latest  # heard during the race: its last answer stands
        else:
            name = self._ask(failed)
        self._heard.clear()
        self._current = name
        return None if name is None else self._build(name)

    def upcoming(self) -> Sequence[Candidate[T]]:
        names = [n for n in self._order if n not in self._done and n != self._current]
        return [self._build(n) for n in names]

    def raced(self, failed: Attempt) -> None:
        self._latest = self._ask(failed)
        self._heard.append(failed)

    def _ask(self, failed: Attempt) -> str | None:
        name = self._escalation.next_transport(failed)
        if name != failed.transport:
            self._done.add(failed.transport)
        return name


__all__ = ["Candidate", "CandidateSource", "Chain", "Connection", "Escalated", "Escalation"]
