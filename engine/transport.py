"""ClusterTransport: one operation on one node, failing over across its transports.

How an operation counts against the node's breaker: the breaker admits the *operation*
once and hears one outcome for it. It is a success if any transport succeeded, a failure
if every transport tried failed, and neither if the operation was cancelled or no
transport could even be attempted (none configured). So three transports failing in a row
inside one failover are one failure, not three, and a breaker never opens in the middle
of a failover; it opens after ``failure_threshold`` whole operations have failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp

from netfault.engine.breaker import REFUSED, BreakerRegistry, BreakerState
from netfault.engine.clock import SYSTEM_CLOCK, Clock
from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import (
    CircuitOpenError,
    IntegrityError,
    TransportError,
    TransportTimeout,
    TransportUnavailable,
    error_kind,
)
from netfault.engine.events import EventBus, EventType
from netfault.engine.http_race import RacingConnector
from netfault.engine.results import Attempt, HttpResult, ProbeResult, TransferResult
from netfault.engine.route_memory import RouteMemory, route_of
from netfault.engine.thresholds import Thresholds, load_thresholds
from netfault.engine.transports.base import Direction, Progress, Transport


class _Outcome:
    """Per-operation bookkeeping: attempts so far and whether any transport was tried."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self.tried = False
        self.last_error: BaseException | None = None


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
    ) -> TransferResult:
        """Push or pull one file, trying ``transports`` (default: the node's order) in turn."""
        way = Direction(direction)
        local = Path(local_path)
        if way is Direction.PUSH and not await asyncio.to_thread(local.is_file):
            raise FileNotFoundError(f"cannot push {local}: no such file")
        cfg = config or self.config
        order = list(transports) if transports is not None else node.transport_order()
        order = self.routes.order(node.name, order, route_of)  # demoted routes last
        started = time.perf_counter()
        result = TransferResult(success=False, node=node.name, direction=str(way))
        permit = self.breakers.get(node.name).allow()
        if permit == REFUSED:
            return self._refused(result, node)
        outcome = _Outcome()
        try:
            for name in order:
                sent = await self._try_transport(
                    name,
                    way,
                    node,
                    local,
                    remote_path,
                    cfg,
                    attempts_per_transport,
                    progress,
                    outcome,
                )
                if sent is not None:
                    result.success, result.transport_used = True, name
                    result.bytes_transferred = sent
                    break
        except BaseException as exc:
            self.breakers.get(node.name).record(permit, exc)
            raise
        return self._finish(result, node, permit, outcome, started)

    def _refused(self, result: TransferResult, node: NodeConfig) -> TransferResult:
        err = CircuitOpenError(node.name, self.breakers.get(node.name).retry_in())
        result.error, result.error_kind = err.message, err.kind
        self.events.emit(
            EventType.OPERATION_FAILED,
            node=node.name,
            operation=result.direction,
            outcome="refused",
            error_kind=err.kind,
            error=err.message,
        )
        return result

    def _finish(
        self,
        result: TransferResult,
        node: NodeConfig,
        permit: int,
        outcome: _Outcome,
        started: float,
    ) -> TransferResult:
        breaker = self.breakers.get(node.name)
        result.attempts = outcome.attempts
        result.latency_ms = (time.perf_counter() - started) * 1000
        if result.success:
            breaker.record_success(permit)
            self.events.emit(
                EventType.OPERATION_SUCCEEDED,
                node=node.name,
                operation=result.direction,
                transport=result.transport_used,
                outcome="success",
                bytes=result.bytes_transferred,
                duration_ms=result.latency_ms,
            )
            return result
        if outcome.tried:
            breaker.record_failure(permit)
        else:
            breaker.release(permit)
        exc = outcome.last_error
        result.error_kind = error_kind(exc) if exc else "unavailable"
        tried = "; ".join(f"{a.transport}: {a.message}" for a in outcome.attempts)
        result.error = f"every transport to {node.name} failed: {tried or 'none available'}"
        self.events.emit(
            EventType.OPERATION_FAILED,
            node=node.name,
            operation=result.direction,
            outcome="failure",
            error_kind=result.error_kind,
            error=result.error,
            duration_ms=result.latency_ms,
        )
        return result

    async def _try_transport(
        self,
        name: str,
        way: Direction,
        node: NodeConfig,
        local: Path,
        remote_path: str,
        cfg: TransportConfig,
        tries: int,
        progress: Progress | None,
        outcome: _Outcome,
    ) -> int | None:
        """Run one transport (with integrity retries); return bytes moved or None."""
        transport = self.transports.get(name)
        if transport is None or not transport.available(node):
            self.events.emit(
                EventType.ATTEMPT_SKIPPED,
                node=node.name,
                transport=name,
                operation=str(way),
                outcome="unavailable",
            )
            return None
        budget = max(1, tries) + max(0, cfg.integrity_retries)
        integrity_left = max(0, cfg.integrity_retries)
        for _ in range(budget):
            try:
                return await self._attempt(
                    transport, way, node, local, remote_path, cfg, progress, outcome
                )
            except IntegrityError:
                if integrity_left == 0:
                    return None
                integrity_left -= 1
            except TransportUnavailable:
                return None
            except TransportError:
                tries -= 1
                if tries <= 0:
                    return None
        return None

    async def _attempt(
        self,
        transport: Transport,
        way: Direction,
        node: NodeConfig,
        local: Path,
        remote_path: str,
        cfg: TransportConfig,
        progress: Progress | None,
        outcome: _Outcome,
    ) -> int:
        name = transport.name
        self.events.emit(
            EventType.ATTEMPT_STARTED, node=node.name, transport=name, operation=str(way)
        )
        started = time.perf_counter()
        try:
            async with asyncio.timeout(cfg.operation_timeout):
                sent = await transport.transfer(way, node, local, remote_path, cfg, progress)
        except TransportError as exc:
            self._record_attempt(outcome, name, node, way, started, exc)
            raise
        except TimeoutError as exc:
            err = TransportTimeout(
                f"{name}@{node.name}: operation exceeded {cfg.operation_timeout}s",
                node=node.name,
                transport=name,
            )
            self._record_attempt(outcome, name, node, way, started, err)
            raise err from exc
        except OSError as exc:
            os_err = TransportError(f"{name}@{node.name}: {exc}", node=node.name, transport=name)
            self._record_attempt(outcome, name, node, way, started, os_err)
            raise os_err from exc
        self._record_attempt(outcome, name, node, way, started, None, sent)
        return sent

    def _record_attempt(
        self,
        outcome: _Outcome,
        name: str,
        node: NodeConfig,
        way: Direction,
        started: float,
        exc: TransportError | None,
        sent: int = 0,
    ) -> None:
        duration = (time.perf_counter() - started) * 1000
        if exc is None:
            outcome.tried = True
            outcome.attempts.append(Attempt(name, True, duration, bytes=sent))
            self.events.emit(
                EventType.ATTEMPT_SUCCEEDED,
                node=node.name,
                transport=name,
                operation=str(way),
                outcome="success",
                bytes=sent,
                duration_ms=duration,
            )
            self.routes.record_attempt(node.name, route_of(name), None)
            return
        if not isinstance(exc, TransportUnavailable):
            outcome.tried = True
            outcome.last_error = exc
        outcome.attempts.append(
            Attempt(name, False, duration, exc.kind, exc.message, exc.bytes_done)
        )
        self.events.emit(
            EventType.ATTEMPT_FAILED,
            node=node.name,
            transport=name,
            operation=str(way),
            outcome="failure",
            error_kind=exc.kind,
            error=exc.message,
            bytes=exc.bytes_done,
            duration_ms=duration,
        )
        self.routes.record_attempt(node.name, route_of(name), exc)

    # -- probes ----------------------------------------------------------------
    async def probe_transport(
        self, node: NodeConfig, transport: str, config: TransportConfig | None = None
    ) -> ProbeResult:
        """Test one transport end to end; never touches the breaker."""
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
        except (TransportError, TimeoutError, OSError) as exc:
            ms = (time.perf_counter() - started) * 1000
            return ProbeResult(
                node.name, transport, False, str(exc) or repr(exc), ms, error_kind(exc)
            )
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
        from netfault.engine.http_failover import request_with_failover

        return await request_with_failover(self, node, endpoint, method, config, port, kwargs)

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


__all__ = ["ClusterTransport"]
