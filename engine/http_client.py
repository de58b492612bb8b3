"""One HTTP request to one node address; failures are classified by ``failures.boundary``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from netfault.engine.config import HTTP_ROUTE_ORDER, NodeConfig
from netfault.engine.transports.failures import Tracker, boundary


@dataclass(frozen=True)
class Route:
    """An address a node answers HTTP on: ``tailscale`` or ``hostname``."""

    name: str
    host: str
    port: int

    def url(self, node: NodeConfig, endpoint: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{node.http_scheme}://{host}:{self.port}/{endpoint.lstrip('/')}"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str]


def http_routes(node: NodeConfig, port: int | None = None) -> list[Route]:
    """The node's addresses in ``HTTP_ROUTE_ORDER`` (tailscale only when it has one)."""
    ts_port = port if port is not None else (node.tailscale_http_port or node.http_port)
    candidates = {
        "tailscale": Route("tailscale", node.tailscale_ip, ts_port) if node.tailscale_ip else None,
        "hostname": Route("hostname", node.hostname, port if port is not None else node.http_port),
    }
    return [route for name in HTTP_ROUTE_ORDER if (route := candidates[name]) is not None]


async def request_once(
    session: aiohttp.ClientSession,
    node: NodeConfig,
    route: Route,
    method: str,
    endpoint: str,
    *,
    total_timeout: float,
    connect_timeout: float,
    **kwargs: Any,
) -> HttpResponse:
    """Send one request; return the response (any status) or raise a typed error."""
    headers = dict(kwargs.pop("headers", None) or {})
    if node.http_token and "Authorization" not in headers:
        headers["Authorization"] = f"Bearer {node.http_token}"
    tracker = Tracker(node, f"http:{route.name}")
    client_timeout = aiohttp.ClientTimeout(total=total_timeout, connect=connect_timeout)
    with boundary(tracker):
        async with session.request(
            method, route.url(node, endpoint), headers=headers, timeout=client_timeout, **kwargs
        ) as response:
            body = await response.read()
            return HttpResponse(response.status, body, dict(response.headers))
