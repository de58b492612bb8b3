"""Errors raised by the netfault engine.

Every error carries the node and transport it concerns (when known) and a ``kind``
string that the event log records, so a failure can be classified without parsing
its message::

    NetfaultError                     kind
    ├── ConfigError                   config        bad hosts file or settings (file, line, key)
    ├── TransportError                transport     one attempt on one transport failed
    │   ├── ConnectError              connect       refused, unreachable, DNS
    │   ├── TransportTimeout          timeout       connect or operation took too long
    │   ├── ConnectionReset           reset         peer reset or closed mid-stream
    │   ├── IntegrityError            integrity     bytes arrived but their sha256 differs
    │   ├── AuthenticationError       auth          key refused or host key changed
    │   ├── RemoteStorageError        storage       disk full or permission denied
    │   └── TransportUnavailable      unavailable   transport not configured for this node
    ├── CircuitOpenError              breaker_open  node's breaker refuses the call
    ├── NodeDisabledError             node_disabled router disabled the node
    └── AllTransportsFailed           exhausted     every transport of one operation failed
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class NetfaultError(Exception):
    """Base class of every error netfault raises on purpose."""

    kind = "error"

    def __init__(
        self, message: str, *, node: str | None = None, transport: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.node = node
        self.transport = transport


class ConfigError(NetfaultError):
    """A configuration or hosts file is invalid; names the file, line and key."""

    kind = "config"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        if key is not None:
            where += f"{key}: "
        super().__init__(where + message)
        self.file = file
        self.line = line
        self.key = key


class TransportError(NetfaultError):
    """One attempt on one transport failed."""

    kind = "transport"

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        transport: str | None = None,
        bytes_done: int = 0,
    ) -> None:
        super().__init__(message, node=node, transport=transport)
        self.bytes_done = bytes_done


class ConnectError(TransportError):
    kind = "connect"


class TransportTimeout(TransportError):
    kind = "timeout"


class ConnectionReset(TransportError):
    kind = "reset"


class IntegrityError(TransportError):
    kind = "integrity"


class AuthenticationError(TransportError):
    kind = "auth"


class RemoteStorageError(TransportError):
    kind = "storage"


class TransportUnavailable(TransportError):
    """The transport cannot serve this node (not configured); not counted as a failure."""

    kind = "unavailable"


class CircuitOpenError(NetfaultError):
    kind = "breaker_open"

    def __init__(self, node: str, retry_in: float) -> None:
        super().__init__(
            f"circuit breaker for {node} is open; retry in {retry_in:.1f}s "
            "or call reset_circuit_breakers()",
            node=node,
        )
        self.retry_in = retry_in


class NodeDisabledError(NetfaultError):
    kind = "node_disabled"

    def __init__(self, node: str, reason: str) -> None:
        super().__init__(
            f"sync to {node} is disabled ({reason}); call reenable_node({node!r}) after fixing it",
            node=node,
        )
        self.reason = reason


class AllTransportsFailed(NetfaultError):
    kind = "exhausted"

    def __init__(self, node: str, attempts: Sequence[Any]) -> None:
        tried = ", ".join(f"{a.transport}: {a.error_kind}" for a in attempts) or "none"
        super().__init__(f"every transport to {node} failed ({tried})", node=node)
        self.attempts = list(attempts)


def error_kind(exc: BaseException) -> str:
    """Classify any exception into an event-log kind."""
    if isinstance(exc, NetfaultError):
        return exc.kind
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "reset"
    if isinstance(exc, ConnectionRefusedError):
        return "connect"
    if isinstance(exc, OSError):
        return "os"
    return "error"
