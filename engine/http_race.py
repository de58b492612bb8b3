"""An HTTP request split at its connection: held once connected, sent only if it wins the race.

``hold_request`` starts one request on one route and returns as soon as aiohttp has a
connection for it (new or pooled) but before a byte of the request is written; the caller
then ``send()``s the winner and ``abandon()``s the others, whose connections are closed.
The hold lives in ``RacingConnector.connect``; a request made outside ``hold_request`` passes
straight through, so one session serves raced and ordinary requests alike.
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import aiohttp

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.http_client import HttpResponse, Route, request_once

if TYPE_CHECKING:
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.connector import Connection
    from aiohttp.tracing import Trace


class _Hold:
    """Where a request waits between its connection being ready and being sent."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.connected: asyncio.Future[None] = loop.create_future()
        self.go: asyncio.Future[None] = loop.create_future()

    async def wait(self) -> None:
        if not self.connected.done():
            self.connected.set_result(None)
        await self.go


_HOLD: ContextVar[_Hold | None] = ContextVar("netfault_http_hold", default=None)


class RacingConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` whose raced requests hold their connection until told to send."""

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> Connection:
        conn = await super().connect(req, traces, timeout)
        hold = _HOLD.get()
        if hold is not None:
            try:
                await hold.wait()
            except BaseException:
                conn.close()  # lost the race or cancelled: never reuse a half-claimed socket
                raise
        return conn


class HeldRequest:
    """A request on one route whose connection is established and which has sent nothing."""

    def __init__(self, route: Route, hold: _Hold, task: asyncio.Task[HttpResponse]) -> None:
        self.route = route
        self.started = time.perf_counter()  # when its connection attempt began
        self._hold = hold
        self._task = task

    async def send(self) -> HttpResponse:
        """Send the request on its connection and return the response (any status)."""
        self._hold.go.set_result(None)
        return await self._task

    async def abandon(self) -> None:
        """Close the connection without sending anything."""
        self._task.cancel()
        await asyncio.wait([self._task])


async def hold_request(
    session: aiohttp.ClientSession,
    node: NodeConfig,
    route: Route,
    method: str,
    endpoint: str,
    config: TransportConfig,
    kwargs: dict[str, Any],
) -> HeldRequest:
    """Connect a request on ``route``; raise its ``TransportError`` if it cannot connect."""
    hold = _Hold()
    started = time.perf_counter()

    async def request() -> HttpResponse:
        _HOLD.set(hold)  # this task's own context: other requests are not held
        return await request_once(
            session,
            node,
            route,
            method,
            endpoint,
            total_timeout=config.http_timeout,
            connect_timeout=config.connect_timeout,
            **dict(kwargs),
        )

    task = asyncio.get_running_loop().create_task(request())
    try:
        waits: list[asyncio.Future[Any]] = [task, hold.connected]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.wait([task])
        raise
    if hold.connected.done():
        held = HeldRequest(route, hold, task)
        held.started = started
        return held
    task.result()  # raises the request's error
    raise AssertionError(f"a request to {route.name} finished without connecting")


__all__ = ["HeldRequest", "RacingConnector", "hold_request"]
