"""HTTP request with failover across a node's routes (tailscale, then hostname)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from netfault.engine.breaker import REFUSED
from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import CircuitOpenError, TransportError
from netfault.engine.events import EventType
from netfault.engine.http_client import http_routes, request_once
from netfault.engine.results import Attempt, HttpResult

if TYPE_CHECKING:
    from netfault.engine.transport import ClusterTransport


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
        for route in http_routes(node, port):
            if await _try_route(ct, node, route, endpoint, method, cfg, kwargs, result):
                break
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


async def _try_route(
    ct: ClusterTransport,
    node: NodeConfig,
    route: Any,
    endpoint: str,
    method: str,
    cfg: TransportConfig,
    kwargs: dict[str, Any],
    result: HttpResult,
) -> bool:
    """Send the request on one route; fill ``result``; True when no failover is needed."""
    name = f"http:{route.name}"
    ct.events.emit(
        EventType.ATTEMPT_STARTED, node=node.name, transport=name, operation=f"http {method}"
    )
    started = time.perf_counter()
    try:
        status, body, headers = await request_once(
            ct.session(),
            node,
            route,
            method,
            endpoint,
            total_timeout=cfg.http_timeout,
            connect_timeout=cfg.connect_timeout,
            **dict(kwargs),
        )
    except TransportError as exc:
        ms = (time.perf_counter() - started) * 1000
        result.attempts.append(Attempt(name, False, ms, exc.kind, exc.message))
        result.error, result.error_kind = exc.message, exc.kind
        ct.events.emit(
            EventType.ATTEMPT_FAILED,
            node=node.name,
            transport=name,
            outcome="failure",
            error_kind=exc.kind,
            error=exc.message,
            duration_ms=ms,
        )
        return False
    ms = (time.perf_counter() - started) * 1000
    result.status, result.body, result.headers = status, body, headers
    if status >= 500:
        message = f"{route.name}@{node.name}: HTTP {status}"
        result.attempts.append(Attempt(name, False, ms, "http_5xx", message, len(body)))
        result.error, result.error_kind = message, "http_5xx"
        ct.events.emit(
            EventType.ATTEMPT_FAILED,
            node=node.name,
            transport=name,
            outcome="failure",
            error_kind="http_5xx",
            error=message,
            duration_ms=ms,
        )
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
