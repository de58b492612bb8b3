"""Node-level faults switched over HTTP, for nodes running in another process or container.

:class:`HttpSwitchboard` is the ``switchboard(node, fn)`` that FaultController calls: ``fn``
gets a :class:`RemoteFaults`, which reads and sets NodeFaults attributes through the node's
admin API (``GET``/``PUT``/``DELETE /faults``). Blocking, like the rest of FaultController.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REQUEST_TIMEOUT = 10.0


class RemoteFaultError(RuntimeError):
    """The node's admin API refused a change or could not be reached."""


@dataclass(frozen=True)
class AdminEndpoint:
    """Where a node's admin API answers, and its bearer token."""

    url: str  # e.g. http://127.0.0.1:19000
    token: str


def admin_request(
    node: str,
    endpoint: AdminEndpoint,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    timeout: float = REQUEST_TIMEOUT,
) -> dict[str, Any]:
    """One call to a node's admin API; its JSON answer, or RemoteFaultError saying why not."""
    request = urllib.request.Request(
        f"{endpoint.url}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {endpoint.token}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise RemoteFaultError(
            f"{node}: {method} {endpoint.url}{path} answered {exc.code}: {detail}"
        ) from exc
    except OSError as exc:
        raise RemoteFaultError(
            f"{node}: admin API at {endpoint.url} unreachable ({exc}); is the node running?"
        ) from exc
    return answer


class RemoteFaults:
    """NodeFaults look-alike: attribute reads GET /faults, writes PUT /faults."""

    __slots__ = ("_endpoint", "_node")

    def __init__(self, node: str, endpoint: AdminEndpoint) -> None:
        object.__setattr__(self, "_node", node)
        object.__setattr__(self, "_endpoint", endpoint)

    def _call(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        endpoint: AdminEndpoint = object.__getattribute__(self, "_endpoint")
        node: str = object.__getattribute__(self, "_node")
        return admin_request(node, endpoint, method, "/faults", body)

    def state(self) -> dict[str, Any]:
        """Every fault switch with its value."""
        state: dict[str, Any] = self._call("GET")["state"]
        return state

    def active(self) -> dict[str, Any]:
        active: dict[str, Any] = self._call("GET")["active"]
        return active

    def clear(self) -> None:
        self._call("DELETE")

    def set_disk_full(self, quota: int = 0) -> None:
        self._call("PUT", {"disk_quota": quota})

    def __getattr__(self, attr: str) -> Any:
        state = self.state()
        if attr not in state:
            raise AttributeError(attr)
        return state[attr]

    def __setattr__(self, attr: str, value: Any) -> None:
        self._call("PUT", {attr: value})


class HttpSwitchboard:
    """``switchboard(node, fn)`` running ``fn`` against the node's faults over HTTP."""

    def __init__(self, endpoints: dict[str, AdminEndpoint]) -> None:
        self.endpoints = endpoints

    def faults(self, node: str) -> RemoteFaults:
        try:
            return RemoteFaults(node, self.endpoints[node])
        except KeyError:
            raise KeyError(f"no admin endpoint for node {node!r}") from None

    def __call__(self, node: str, fn: Callable[[Any], Any]) -> Any:
        return fn(self.faults(node))
