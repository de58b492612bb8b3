"""HTTP API calls as failover candidates: one per route of the node (tailscale, then hostname).

A route that answers 5xx or fails on the path fails over to the next; any other status is
the call's answer. The loop, breaker and events are ``netfault.engine.failover``'s. Each
route can also be raced (``Candidate.connect``): its request is connected and held unsent
(``netfault.engine.http_race``), and only the winner's is sent, so a call is never sent twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.failover import (
    Candidate,
    Chain,
    Connection,
    FailoverOperation,
    FailoverOutcome,
)
from netfault.engine.http_client import HttpResponse, Route, http_routes, request_once
from netfault.engine.http_race import HeldRequest, hold_request
from netfault.engine.results import HttpResult
from netfault.engine.route_memory import RouteName
from netfault.engine.transports.failures import Tracker, http_status_error


@dataclass(frozen=True)
class HttpRequest:
    """One API call: method, endpoint, port override and aiohttp keyword arguments."""

    method: str
    endpoint: str
    port: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"http {self.method} {self.endpoint}"


async def request_with_failover(
    op: FailoverOperation[HttpResponse],
    session: aiohttp.ClientSession,
    request: HttpRequest,
    config: TransportConfig,
) -> HttpResult:
    """Run ``request`` over the node's routes (``ClusterTransport.http_request_with_failover``)."""
    last: list[HttpResponse] = []
    routes = http_routes(op.node, request.port)
    candidates = [_candidate(session, op.node, r, request, config, last) for r in routes]
    outcome = await op.run(Chain(op.ordered(candidates)))
    return _http_result(op.node, outcome.success, last, outcome)


def _candidate(
    session: aiohttp.ClientSession,
    node: NodeConfig,
    route: Route,
    request: HttpRequest,
    config: TransportConfig,
    last: list[HttpResponse],
) -> Candidate[HttpResponse]:
    """The call on one route: sent at once (``run``), or connected and held (``connect``)."""

    def answered(response: HttpResponse) -> HttpResponse:
        last.append(response)
        if response.status >= 500:
            tracker = Tracker(node, f"http:{route.name}")
            raise http_status_error(response.status, tracker, request.label)
        return response

    async def run() -> HttpResponse:
        return answered(
            await request_once(
                session,
                node,
                route,
                request.method,
                request.endpoint,
                total_timeout=config.http_timeout,
                connect_timeout=config.connect_timeout,
                **request.kwargs,
            )
        )

    async def connect() -> Connection[HttpResponse]:
        held = await hold_request(
            session, node, route, request.method, request.endpoint, config, request.kwargs
        )
        return _HeldCall(held, answered)

    name, route_name = f"http:{route.name}", RouteName(route.name)
    return Candidate(name, run, reports_as=route.name, route=route_name, connect=connect)


class _HeldCall:
    """A raced route's request, connected and unsent: ``run`` sends it, ``close`` drops it."""

    def __init__(self, held: HeldRequest, answered: Callable[[HttpResponse], HttpResponse]) -> None:
        self._held, self._answered = held, answered

    async def run(self) -> HttpResponse:
        return self._answered(await self._held.send())

    def close(self) -> Awaitable[None]:
        return self._held.abandon()


def _http_result(
    node: NodeConfig,
    success: bool,
    responses: list[HttpResponse],
    outcome: FailoverOutcome[HttpResponse],
) -> HttpResult:
    result = HttpResult(
        success=success,
        node=node.name,
        transport_used=outcome.transport_used,
        latency_ms=outcome.latency_ms,
        error=outcome.error,
        error_kind=outcome.error_kind,
        attempts=outcome.attempts,
    )
    if responses:
        response = responses[-1]
        result.status, result.body = response.status, response.body
        result.headers = response.headers
    return result
