"""HTTP request with failover across a node's routes (tailscale, then hostname).

Route memory puts a route that recently failed to connect last; the routes' connections
are raced (``race_delay`` apart, see ``netfault.engine.race``) and the request is sent
only on the connection that won, so it is never sent twice. A route outpaced in the race
(still connecting when a later-started one connected) is demoted like one that failed to
connect, so the next requests do not wait ``race_delay`` for it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from netfault.engine.breaker import REFUSED
from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import CircuitOpenError, TransportError
from netfault.engine.events import EventType
from netfault.engine.http_client import Route, http_routes
from netfault.engine.http_race import HeldRequest, hold_request
from netfault.engine.race import RaceOutcome, outpaced, race
from netfault.engine.results import Attempt, HttpResult
from netfault.engine.route_memory import RouteName

if TYPE_CHECKING:
    from netfault.engine.transport import ClusterTransport


async def _walk_routes(
    ct: ClusterTransport,
    node: NodeConfig,
    routes: list[Route],
    endpoint: str,
    method: str,
    cfg: TransportConfig,
    kwargs: dict[str, Any],
    result: HttpResult,
) -> None:
    """Race the connections of the routes left (demoted ones last); send on the winner.

    When the winner's request fails, the routes that lost or never started race again.
    """
    left = ct.routes.order(node.name, routes, lambda r: RouteName(r.name))

    async def abandon(held: HeldRequest) -> None:
        await held.abandon()
        _cancelled(ct, node, held.route, held.started, result)

    while left:
        starters = [_starter(ct, node, r, endpoint, method, cfg, kwargs, result) for r in left]
        raced = await race(starters, cfg.race_delay, close=abandon)
        for entry in raced.entries:
            if entry.error is not None and not isinstance(entry.error, TransportError):
                raise entry.error  # a bug, not a route failing: let it surface
        for index in outpaced(raced):  # still connecting after race_delay: try it last next time
            ct.routes.record_failure(node.name, RouteName(left[index].name), "outpaced")
        if raced.winner is None or await _send(ct, node, raced.winner, result):
            return
        untried = (RaceOutcome.CANCELLED, RaceOutcome.NOT_STARTED)
        left = [r for r, e in zip(left, raced.entries, strict=True) if e.outcome in untried]


async def request_with_failover(
    ct: ClusterTransport,
    node: NodeConfig,
    endpoint: str,
    method: str,
    config: TransportConfig | None,
    port: int | None,
    kwargs: dict[str, Any],
) -> HttpResult:
    """See ``ClusterTransport.http_request_with_failover``; one breaker outcome per call."""
    cfg = config or ct.config
    result = HttpResult(success=False, node=node.name)
    breaker = ct.breakers.get(node.name)
    permit = breaker.allow()
    if permit == REFUSED:
        err = CircuitOpenError(node.name, breaker.retry_in())
        result.error, result.error_kind = err.message, err.kind
        return result
    started = time.perf_counter()
    try:
        await _walk_routes(ct, node, http_routes(node, port), endpoint, method, cfg, kwargs, result)
    except BaseException as exc:
        breaker.record(permit, exc)
        raise
    result.latency_ms = (time.perf_counter() - started) * 1000
    if result.success:
        breaker.record_success(permit)
    else:
        breaker.record_failure(permit)
    ct.events.emit(
        EventType.OPERATION_SUCCEEDED if result.success else EventType.OPERATION_FAILED,
        node=node.name,
        operation=f"http {method} {endpoint}",
        transport=result.transport_used,
        outcome="success" if result.success else "failure",
        error_kind=result.error_kind,
        error=result.error,
        duration_ms=result.latency_ms,
    )
    return result


def _starter(
    ct: ClusterTransport,
    node: NodeConfig,
    route: Route,
    endpoint: str,
    method: str,
    cfg: TransportConfig,
    kwargs: dict[str, Any],
    result: HttpResult,
) -> Callable[[], Awaitable[HeldRequest]]:
    """Connect one route's request (held, unsent); record failure or cancellation as it happens."""

    async def start() -> HeldRequest:
        ct.events.emit(
            EventType.ATTEMPT_STARTED,
            node=node.name,
            transport=f"http:{route.name}",
            operation=f"http {method}",
        )
        started = time.perf_counter()
        try:
            return await hold_request(ct.session(), node, route, method, endpoint, cfg, kwargs)
        except TransportError as exc:
            _failed(ct, node, route, started, exc.kind, exc.message, result)
            ct.routes.record_attempt(node.name, RouteName(route.name), exc)
            raise
        except asyncio.CancelledError:
            _cancelled(ct, node, route, started, result)
            raise

    return start


async def _send(
    ct: ClusterTransport, node: NodeConfig, held: HeldRequest, result: HttpResult
) -> bool:
    """Send on the connection that won; fill ``result``; True when no failover is needed."""
    route, name = held.route, f"http:{held.route.name}"
    try:
        status, body, headers = await held.send()
    except TransportError as exc:
        _failed(ct, node, route, held.started, exc.kind, exc.message, result)
        ct.routes.record_attempt(node.name, RouteName(route.name), exc)
        return False
    ct.routes.record_success(node.name, RouteName(route.name))
    ms = (time.perf_counter() - held.started) * 1000
    result.status, result.body, result.headers = status, body, headers
    if status >= 500:
        message = f"{route.name}@{node.name}: HTTP {status}"
        _failed(ct, node, route, held.started, "http_5xx", message, result, len(body))
        return False
    result.attempts.append(Attempt(name, True, ms, bytes=len(body)))
    result.success, result.transport_used = True, route.name
    result.error = result.error_kind = None
    ct.events.emit(
        EventType.ATTEMPT_SUCCEEDED,
        node=node.name,
        transport=name,
        outcome="success",
        bytes=len(body),
        duration_ms=ms,
    )
    return True


def _failed(
    ct: ClusterTransport,
    node: NodeConfig,
    route: Route,
    started: float,
    kind: str,
    message: str,
    result: HttpResult,
    size: int = 0,
) -> None:
    ms = (time.perf_counter() - started) * 1000
    name = f"http:{route.name}"
    result.attempts.append(Attempt(name, False, ms, kind, message, size))
    result.error, result.error_kind = message, kind
    ct.events.emit(
        EventType.ATTEMPT_FAILED,
        node=node.name,
        transport=name,
        outcome="failure",
        error_kind=kind,
        error=message,
        duration_ms=ms,
    )


def _cancelled(
    ct: ClusterTransport, node: NodeConfig, route: Route, started: float, result: HttpResult
) -> None:
    """A route that lost the race (or whose operation was cancelled): never a failure."""
    ms = (time.perf_counter() - started) * 1000
    name = f"http:{route.name}"
    message = f"{route.name}@{node.name}: connection abandoned, another route connected first"
    result.attempts.append(Attempt(name, False, ms, "cancelled", message))
    ct.events.emit(
        EventType.ATTEMPT_CANCELLED,
        node=node.name,
        transport=name,
        outcome="cancelled",
        duration_ms=ms,
    )
