"""Route memory: which of a node's addresses failed to connect lately, so failover tries it last.

A node is reached over two routes: ``tailscale`` (its tailscale_ip) and ``hostname``. The
tailscale transport and HTTP over the tailscale address ride the first; ssh, rsync, base64,
scp and HTTP over the hostname ride the second. When a connection on a route cannot be set
up (refused, timed out, reset before any data moved) the route is *demoted* for a cooldown
on the engine's clock; each repeat failure doubles the cooldown up to a cap, and a success
resets it. Demotion only reorders a node's candidates (healthy routes first); it never drops
one, so a node whose every route is demoted is still tried, demoted routes last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from netfault.engine.clock import SYSTEM_CLOCK, Clock
from netfault.engine.errors import (
    ConnectError,
    ConnectionReset,
    TransportTimeout,
    TransportUnavailable,
)
from netfault.engine.events import EventBus, EventType

T = TypeVar("T")

DEFAULT_COOLDOWN = 60.0
MAX_DOUBLINGS_FACTOR = 10.0  # default cap: ten times the base cooldown


class RouteName(StrEnum):
    TAILSCALE = "tailscale"
    HOSTNAME = "hostname"


def route_of(candidate: str) -> RouteName:
    """The route a transport name (``ssh``) or HTTP route label (``http:tailscale``) rides."""
    if candidate in ("tailscale", "http:tailscale"):
        return RouteName.TAILSCALE
    return RouteName.HOSTNAME


def connect_failure(exc: BaseException) -> str | None:
    """The error kind when ``exc`` means the route could not carry a connection, else None.

    Refused or unreachable always counts; a timeout only before a byte of the payload
    moved; a reset only while the connection was being set up (a session that dies, even
    before its first byte, says little about the route, and whether a byte had moved when
    a reset lands is a matter of timing, so it would make the same seed demote or not).
    """
    if isinstance(exc, ConnectError):
        return exc.kind
    if isinstance(exc, TransportTimeout) and (exc.bytes_done == 0 or exc.connecting):
        return exc.kind
    if isinstance(exc, ConnectionReset) and exc.connecting:
        return exc.kind
    return None


@dataclass(frozen=True, slots=True)
class RouteStatus:
    """A demoted route as ``summary()`` reports it."""

    failures: int
    cooldown: float
    retry_in: float
    last_error: str


@dataclass(slots=True)
class _Record:
    failures: int = 0
    strikes: int = 0  # demotions since the last success: the cooldown doubles with each
    demoted_until: float | None = None
    cooldown: float = 0.0
    last_error: str = ""


class RouteMemory:
    """Per (node, route) connect outcomes and cooldowns; synchronous, clock-injected."""

    def __init__(
        self,
        *,
        cooldown: float = DEFAULT_COOLDOWN,
        max_cooldown: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
        events: EventBus | None = None,
    ) -> None:
        cap = cooldown * MAX_DOUBLINGS_FACTOR if max_cooldown is None else max_cooldown
        if cooldown < 0 or cap < cooldown:
            raise ValueError(f"need 0 <= cooldown ({cooldown}) <= max_cooldown ({cap})")
        self.cooldown = cooldown
        self.max_cooldown = cap
        self.clock = clock
        self.events = events
        self._records: dict[tuple[str, RouteName], _Record] = {}

    def record_attempt(self, node: str, route: RouteName, error: BaseException | None) -> None:
        """Learn from one attempt: a connect failure demotes; reaching the node restores."""
        if isinstance(error, TransportUnavailable):
            return  # never tried: says nothing about the route
        kind = None if error is None else connect_failure(error)
        if kind is None:
            self.record_success(node, route)
        else:
            self.record_failure(node, route, kind)

    def record_success(self, node: str, route: RouteName) -> None:
        """A connection on the route was established: forget its failures."""
        record = self._records.pop((node, route), None)
        if record is not None and record.demoted_until is not None:
            self._emit(EventType.ROUTE_RESTORED, node, route, record, reason="connected")

    def record_failure(self, node: str, route: RouteName, error: str) -> None:
        """A connection on the route could not be set up: demote it (again, for longer).

        A failure while the route is already demoted (it was tried as a last resort, or
        another service on it failed in the same operation) restarts the cooldown without
        lengthening it; only a failure after the cooldown ran out doubles it.
        """
        self._expire(node, route)
        record = self._records.setdefault((node, route), _Record())
        record.failures += 1
        record.last_error = error
        was_demoted = record.demoted_until is not None
        if not was_demoted:
            record.strikes += 1
            record.cooldown = min(self.cooldown * 2 ** (record.strikes - 1), self.max_cooldown)
        record.demoted_until = self.clock.monotonic() + record.cooldown
        if not was_demoted:
            self._emit(EventType.ROUTE_DEMOTED, node, route, record, reason=error)

    def reset(self, node: str | None = None) -> None:
        """Forget every route's failures (of one node, or of all nodes)."""
        for key in [k for k in self._records if node is None or k[0] == node]:
            record = self._records.pop(key)
            if record.demoted_until is not None:
                self._emit(EventType.ROUTE_RESTORED, key[0], key[1], record, reason="reset")

    def is_demoted(self, node: str, route: RouteName) -> bool:
        self._expire(node, route)
        record = self._records.get((node, route))
        return record is not None and record.demoted_until is not None

    def order(
        self, node: str, candidates: Sequence[T], route: Callable[[T], RouteName | None]
    ) -> list[T]:
        """``candidates`` with those on demoted routes moved after the rest, order kept."""
        demoted = {r for r in RouteName if self.is_demoted(node, r)}
        healthy = [c for c in candidates if route(c) not in demoted]
        return healthy + [c for c in candidates if route(c) in demoted]

    def summary(self) -> dict[str, dict[str, RouteStatus]]:
        """{node: {route: status}} for every route demoted now."""
        now = self.clock.monotonic()
        out: dict[str, dict[str, RouteStatus]] = {}
        for node, route in list(self._records):
            if not self.is_demoted(node, route):
                continue
            record = self._records[(node, route)]
            assert record.demoted_until is not None
            out.setdefault(node, {})[str(route)] = RouteStatus(
                record.failures, record.cooldown, record.demoted_until - now, record.last_error
            )
        return out

    def _expire(self, node: str, route: RouteName) -> None:
        record = self._records.get((node, route))
        if record is None or record.demoted_until is None:
            return
        if self.clock.monotonic() >= record.demoted_until:
            record.demoted_until = None  # failures kept: the next one doubles the cooldown
            self._emit(EventType.ROUTE_RESTORED, node, route, record, reason="cooldown expired")

    def _emit(
        self, type: EventType, node: str, route: RouteName, record: _Record, *, reason: str
    ) -> None:
        if self.events is None:
            return
        self.events.emit(
            type,
            node=node,
            outcome="demoted" if type is EventType.ROUTE_DEMOTED else "restored",
            data={
                "route": str(route),
                "reason": reason,
                "failures": record.failures,
                "cooldown": record.cooldown,
            },
        )


__all__ = [
    "DEFAULT_COOLDOWN",
    "RouteMemory",
    "RouteName",
    "RouteStatus",
    "connect_failure",
    "route_of",
]
