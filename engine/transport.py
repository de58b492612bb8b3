"""ClusterTransport: one operation on one node, failing over across its transports.

How an operation counts against the node's breaker: the breaker admits the *operation*
once and hears one outcome for it. It is a success if any transport succeeded, a failure
if every transport tried failed on the path to the node, and neither if the operation was
cancelled, stopped by a request error (the caller's mistake), or no transport could even
be attempted (none configured). So three transports failing in a row inside one failover
are one failure, not three, and a breaker never opens in the middle of a failover; it
opens after ``failure_threshold`` whole operations have failed. The loop itself lives in
``netfault.engine.failover``; this class builds its candidates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp

from netfault.engine.breaker import BreakerRegistry, BreakerState
from netfault.engine.clock import SYSTEM_CLOCK, Clock
from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import (
    IsDirectoryError,
    NotFoundError,
    RequestError,
    TransportUnavailable,
)
from netfault.engine.events import EventBus, EventType
from netfault.engine.failover import (
    Candidate,
    CandidateSource,
    Chain,
    Connection,
    Escalated,
    Escalation,
    FailoverOperation,
    FailoverOutcome,
)
from netfault.engine.http_client import HttpResponse
from netfault.engine.http_failover import HttpRequest, request_with_failover
from netfault.engine.http_race import RacingConnector
from netfault.engine.paths import confine_remote_path
from netfault.engine.results import HttpResult, ProbeResult, TransferResult
from netfault.engine.route_memory import RouteMemory, route_of
from netfault.engine.thresholds import Thresholds, load_thresholds
from netfault.engine.transports.base import Direction, Progress, Transport, TransportConnection
from netfault.engine.transports.failures import Tracker, classify


class ClusterTransport:
    """Moves files and API calls to nodes with ordered failover and per-node breakers."""

    def __init__(
        self,
        transports: Mapping[str, Transport] | None = None,
        *,
        config: TransportConfig | None = None,
        clock: Clock = SYSTEM_CLOCK,
        thresholds: Thresholds | None = None,
        breakers: BreakerRegistry | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.thresholds = thresholds or load_thresholds()
        self.config = config or TransportConfig.from_thresholds(self.thresholds)
        self.clock = clock
        if transports is None:
            from netfault.engine.transports import default_transports

            transports = default_transports()
        self.transports: dict[str, Transport] = dict(transports)
        self.events = events or EventBus(clock)
        self.breakers = breakers or BreakerRegistry(
            failure_threshold=self.thresholds.breaker_failure_threshold,
            recovery_timeout=self.thresholds.breaker_recovery_timeout,
            half_open_max_wait=self.thresholds.breaker_half_open_max_wait,
            clock=clock,
        )
        self.breakers.add_listener(self._on_breaker_transition)
        self.routes = RouteMemory(
            cooldown=self.thresholds.route_cooldown, clock=clock, events=self.events
        )
        self._session: aiohttp.ClientSession | None = None

    # -- breaker views ---------------------------------------------------------
    def can_attempt(self, node: str | NodeConfig) -> bool:
        """Whether the node's breaker would admit an operation now."""
        return self.breakers.can_attempt(node if isinstance(node, str) else node.name)

    def get_health_summary(self) -> dict[str, dict[str, Any]]:
        """{node: {state, failures, opened_at, retry_in[, demoted_routes]}} for every node seen."""
        summary = self.breakers.health_summary()
        for node, routes in self.routes.summary().items():
            summary.setdefault(node, {})["demoted_routes"] = {
                r: asdict(s) for r, s in routes.items()
            }
        return summary

    def reset_circuit_breakers(self, node: str | None = None) -> None:
        """Close the breakers and forget demoted routes (of one node, or of every node)."""
        self.breakers.reset(node)
        self.routes.reset(node)

    def _on_breaker_transition(
        self, node: str, old: BreakerState, new: BreakerState, reason: str
    ) -> None:
        self.events.emit(
            EventType.BREAKER_TRANSITION,
            node=node,
            outcome=str(new),
            data={"from": str(old), "to": str(new), "reason": reason},
        )

    # -- files -----------------------------------------------------------------
    async def transfer_file(
        self,
        local_path: str | Path,
        remote_path: str,
        node: NodeConfig,
        direction: str = "push",
        config: TransportConfig | None = None,
        *,
        transports: Sequence[str] | None = None,
        attempts_per_transport: int = 1,
        progress: Progress | None = None,
        escalation: Escalation | None = None,
    ) -> TransferResult:
        """Push or pull one file over ``transports`` (default: the node's order) in turn.

        Without ``escalation``, ``transports`` are tried in turn, those on a demoted route
        last. With ``escalation``, ``transports`` is its order as it arranged it (see
        ``route_order``): the first runs first and, after each failed attempt (its events
        already emitted), ``escalation.next_transport(attempt)`` names the next (None:
        stop). Either way, a transport's connection may be raced against the next one's on
        the other route (``TransportConfig.race_delay``); the escalation hears a raced
        connection's failure as it happens and never hears of a cancelled loser. A request
        error (a missing file, a remote path outside ``base_path``, ...) fails the
        operation at once, uncounted.
        """
        way, local, cfg = Direction(direction), Path(local_path), config or self.config
        op: FailoverOperation[int] = FailoverOperation(
            node,
            str(way),
            breakers=self.breakers,
            events=self.events,
            size=int,
            routes=self.routes,
            race_delay=cfg.race_delay,
        )
        try:
            remote = confine_remote_path(node, remote_path)
            await asyncio.to_thread(check_local_path, way, local)
        except RequestError as exc:
            return _transfer_result(op.reject(exc), way)

        def build(name: str) -> Candidate[int]:
            return self._candidate(name, way, node, local, remote, cfg, progress)

        order = list(transports) if transports is not None else node.transport_order()
        source: CandidateSource[int]
        if escalation is not None:
            source = Escalated(order, build, escalation)  # it arranged its order itself
        else:
            tries, retries = attempts_per_transport, cfg.integrity_retries
            candidates = op.ordered([build(n) for n in order])  # demoted routes last
            source = Chain(candidates, tries=tries, integrity_retries=retries)
        return _transfer_result(await op.run(source), way)

    def _candidate(
        self,
        name: str,
        way: Direction,
        node: NodeConfig,
        local: Path,
        remote: str,
        cfg: TransportConfig,
        progress: Progress | None,
    ) -> Candidate[int]:
        transport = self.transports.get(name)
        if transport is None or not transport.available(node):
            return Candidate(name, _unavailable, available=False)
        impl = transport

        def run() -> Awaitable[int]:
            return impl.transfer(way, node, local, remote, cfg, progress)

        async def connect() -> Connection[int]:
            connection = await impl.connect(node, cfg, progress)
            return _OnConnection(connection, way, local, remote, cfg)

        return Candidate(
            name,
            run,
            timeout=cfg.operation_timeout,
            route=route_of(name),
            connect=connect if impl.connects_first else None,
        )

    def route_order(self, node: NodeConfig, transports: Sequence[str]) -> list[str]:
        """``transports`` with those on a route demoted for ``node`` moved last, order kept."""
        return self.routes.order(node.name, transports, route_of)

    # -- probes ----------------------------------------------------------------
    async def probe_transport(
        self, node: NodeConfig, transport: str, config: TransportConfig | None = None
    ) -> ProbeResult:
        """Test one transport end to end; never touches the breaker, teaches route memory."""
        cfg = config or TransportConfig.for_quick_requests()
        impl = self.transports.get(transport)
        started = time.perf_counter()
        if impl is None or not impl.available(node):
            return ProbeResult(
                node.name, transport, False, "not configured for this node", 0.0, "unavailable"
            )
        try:
            async with asyncio.timeout(cfg.operation_timeout):
                message = await impl.probe(node, cfg)
        except Exception as exc:
            ms = (time.perf_counter() - started) * 1000
            err = classify(exc, Tracker(node, transport))
            if err.fails_over:  # a request error says nothing about the route
                self.routes.record_attempt(node.name, route_of(transport), err)
            return ProbeResult(node.name, transport, False, err.message, ms, err.kind)
        self.routes.record_attempt(node.name, route_of(transport), None)
        return ProbeResult(
            node.name, transport, True, message, (time.perf_counter() - started) * 1000
        )

    # -- HTTP ------------------------------------------------------------------
    async def http_request_with_failover(
        self,
        node: NodeConfig,
        endpoint: str,
        method: str = "GET",
        *,
        config: TransportConfig | None = None,
        port: int | None = None,
        **kwargs: Any,
    ) -> HttpResult:
        """One API call: tailscale address first, then hostname; 5xx and network errors fail over.

        Extra keyword arguments (``json=``, ``data=``, ``headers=``, ``params=``) go to aiohttp.
        """
        request, cfg = HttpRequest(method, endpoint, port, dict(kwargs)), config or self.config
        op: FailoverOperation[HttpResponse] = FailoverOperation(
            node,
            request.label,
            breakers=self.breakers,
            events=self.events,
            size=lambda response: len(response.body),
            routes=self.routes,
            race_delay=cfg.race_delay,
        )
        return await request_with_failover(op, self.session(), request, cfg)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=RacingConnector())
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        for transport in self.transports.values():
            await transport.close()

    async def __aenter__(self) -> ClusterTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _OnConnection:
    """One transfer on a transport's connection set up beforehand (the race's winner)."""

    def __init__(
        self,
        connection: TransportConnection,
        way: Direction,
        local: Path,
        remote: str,
        cfg: TransportConfig,
    ) -> None:
        self._connection, self._args = connection, (way, local, remote, cfg)

    async def run(self) -> int:
        try:
            return await self._connection.transfer(*self._args)
        finally:
            await self._connection.close()

    def close(self) -> Awaitable[None]:
        return self._connection.close()


async def _unavailable() -> int:
    raise TransportUnavailable("transport not configured for this node")


def _transfer_result(outcome: FailoverOutcome[int], way: Direction) -> TransferResult:
    return TransferResult(
        success=outcome.success,
        node=outcome.node,
        direction=str(way),
        transport_used=outcome.transport_used,
        latency_ms=outcome.latency_ms,
        bytes_transferred=outcome.value or 0,
        error=outcome.error,
        error_kind=outcome.error_kind,
        attempts=outcome.attempts,
    )


def check_local_path(direction: Direction, local: Path) -> None:
    """Refuse, as a request error, a local side that cannot work on any transport."""
    if direction is Direction.PUSH:
        if local.is_dir():
            raise IsDirectoryError(f"cannot push {local}: it is a directory; name a file")
        if not local.is_file():
            raise NotFoundError(f"cannot push {local}: no such file")
        return
    if local.is_dir():
        raise IsDirectoryError(f"cannot pull into {local}: it is a directory; name the file")
    if not local.parent.is_dir():
        raise NotFoundError(
            f"cannot pull into {local}: directory {local.parent} does not exist; create it first"
        )


__all__ = ["ClusterTransport", "Escalation", "check_local_path"]
