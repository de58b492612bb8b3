"""One HTTP request to one node address, with library errors mapped to the engine's."""

from __future__ import annotations

import asyncio
import errno
from dataclasses import dataclass
from typing import Any

import aiohttp

from netfault.engine.config import NodeConfig
from netfault.engine.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionReset,
    TransportError,
    TransportTimeout,
)

RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})


@dataclass(frozen=True)
class Route:
    """An address a node answers HTTP on: ``tailscale`` or ``hostname``."""

    name: str
    host: str
    port: int

    def url(self, node: NodeConfig, endpoint: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{node.http_scheme}://{host}:{self.port}/{endpoint.lstrip('/')}"


def http_routes(node: NodeConfig, port: int | None = None) -> list[Route]:
    """Tailscale address first when the node has one, then the hostname."""
    routes = []
    if node.tailscale_ip:
        ts_port = port if port is not None else (node.tailscale_http_port or node.http_port)
        routes.append(Route("tailscale", node.tailscale_ip, ts_port))
    routes.append(Route("hostname", node.hostname, port if port is not None else node.http_port))
    return routes


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
) -> tuple[int, bytes, dict[str, str]]:
    """Send one request; return (status, body, headers) or raise a TransportError."""
    headers = dict(kwargs.pop("headers", None) or {})
    if node.http_token and "Authorization" not in headers:
        headers["Authorization"] = f"Bearer {node.http_token}"
    where: dict[str, Any] = {"node": node.name, "transport": f"http:{route.name}"}
    client_timeout = aiohttp.ClientTimeout(total=total_timeout, connect=connect_timeout)
    try:
        async with session.request(
            method, route.url(node, endpoint), headers=headers, timeout=client_timeout, **kwargs
        ) as response:
            body = await response.read()
            return response.status, body, dict(response.headers)
    except TimeoutError as exc:
        msg = f"{route.name}@{node.name}: no answer in {total_timeout}s"
        raise TransportTimeout(msg, **where) from exc
    except aiohttp.ClientConnectorError as exc:
        raise ConnectError(f"{route.name}@{node.name}: cannot connect: {exc}", **where) from exc
    except aiohttp.ClientSSLError as exc:
        raise AuthenticationError(f"{route.name}@{node.name}: TLS failed: {exc}", **where) from exc
    except (
        aiohttp.ServerDisconnectedError,
        aiohttp.ClientPayloadError,
        ConnectionResetError,
    ) as exc:
        raise ConnectionReset(f"{route.name}@{node.name}: connection lost: {exc}", **where) from exc
    except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
        reset = isinstance(exc, OSError) and exc.errno in RESET_ERRNOS
        cls = ConnectionReset if reset else TransportError
        raise cls(f"{route.name}@{node.name}: {exc}", **where) from exc
