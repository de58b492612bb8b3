"""Errors raised by the netfault engine.

Every error carries the node and transport it concerns (when known) and a ``kind``
string that the event log records, so a failure can be classified without parsing
its message. The tree decides what the failover loop does with an error::

    NetfaultError                   kind             fails over / counts
    ├── ConfigError                 config           -   -    bad hosts file or settings
    ├── RequestError                request          no  no   the request itself is wrong
    │   ├── NotFoundError           not_found        no  no   no such remote or local file
    │   ├── IsDirectoryError        is_directory     no  no   a directory where a file goes
    │   ├── LocalPermissionError    local_permission no  no   the caller's side refuses access
    │   ├── MissingKeyError         missing_key      no  no   ssh key or known_hosts missing
    │   └── BadRemotePathError      bad_remote_path  no  no   leaves base_path; unrepresentable
    ├── TransportError              transport        yes yes  one attempt on the path failed
    │   ├── ConnectError            connect          yes yes  refused, unreachable, DNS
    │   ├── TransportTimeout        timeout          yes yes  connect or operation too long
    │   ├── ConnectionReset         reset            yes yes  peer reset or closed mid-stream
    │   ├── IntegrityError          integrity        yes yes  bytes damaged in flight
    │   ├── AuthenticationError     auth             yes yes  key refused, host key changed
    │   ├── RemoteStorageError      storage          yes yes  node's disk full or read-only
    │   ├── ServerError             http_5xx         yes yes  the node's agent answered 5xx
    │   └── TransportUnavailable    unavailable      yes no   transport not configured here
    ├── CircuitOpenError            breaker_open     -   -    node's breaker refuses the call
    └── NodeDisabledError           node_disabled    -   -    router disabled the node

"Fails over": the failover loop tries the next candidate. "Counts": the operation's
outcome is reported to the node's breaker and router. A request error stops the
operation at once and counts against neither: retrying it elsewhere cannot help.

An operation whose attempts failed for different reasons reports the most telling kind
(``most_telling``), most telling first::

    integrity > storage > auth > http_5xx > request kinds > reset > connect > timeout
      > transport > unavailable

Damaged bytes come first: they are the one failure that means data went wrong, and the
path that damaged them may well be the one a later attempt timed out on. Then what no
path can fix (a full disk, a refused key or host key), then an agent that answered but
failed, then the request kinds (an operation they stopped reports the kind itself). The
path kinds follow in the order of what they say about the path: a reset shows the peer was
reached, a refused connection that something answered, a timeout only that nothing did.
"""

from __future__ import annotations

from collections.abc import Iterable


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


class AttemptError(NetfaultError):
    """An error one attempt ended with; ``bytes_done`` says how far it got, ``connecting``
    whether it struck while the connection was being set up (before any session ran)."""

    fails_over = True
    counts = True
    connecting = False

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


class RequestError(AttemptError):
    """The request itself cannot be served; another transport would fail the same way."""

    kind = "request"
    fails_over = False
    counts = False


class NotFoundError(RequestError):
    kind = "not_found"


class IsDirectoryError(RequestError):
    kind = "is_directory"


class LocalPermissionError(RequestError):
    kind = "local_permission"


class MissingKeyError(RequestError):
    kind = "missing_key"


class BadRemotePathError(RequestError):
    kind = "bad_remote_path"


class TransportError(AttemptError):
    """One attempt on one transport failed on the path to the node."""

    kind = "transport"


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


class ServerError(TransportError):
    """The node's HTTP agent answered with a 5xx status."""

    kind = "http_5xx"


class TransportUnavailable(TransportError):
    """The transport cannot serve this node (not configured); not counted as a failure."""

    kind = "unavailable"
    counts = False


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


REQUEST_KINDS = frozenset(
    cls.kind
    for cls in (
        NotFoundError,
        IsDirectoryError,
        LocalPermissionError,
        MissingKeyError,
        BadRemotePathError,
    )
)
"""Error kinds of the request itself: never failed over, never counted."""


def _kinds(cls: type[NetfaultError]) -> frozenset[str]:
    return frozenset({cls.kind}).union(*(_kinds(sub) for sub in cls.__subclasses__()))


CANCELLED_KIND = "cancelled"
"""An attempt whose connection lost a race (or whose operation was cancelled): no failure."""

TELLING_ORDER: tuple[str, ...] = (
    IntegrityError.kind,
    RemoteStorageError.kind,
    AuthenticationError.kind,
    ServerError.kind,
    *sorted(REQUEST_KINDS),
    RequestError.kind,
    ConnectionReset.kind,
    ConnectError.kind,
    TransportTimeout.kind,
    TransportError.kind,
    TransportUnavailable.kind,
)
"""Attempt error kinds, most telling first (see the module docstring)."""


def most_telling(kinds: Iterable[str]) -> str | None:
    """The kind an operation reports for attempts that failed with ``kinds`` (None: none);
    a kind outside ``TELLING_ORDER`` ranks last, ties go to the earliest attempt."""
    rank = {kind: i for i, kind in enumerate(TELLING_ORDER)}
    ordered = list(kinds)
    if not ordered:
        return None
    return min(ordered, key=lambda kind: rank.get(kind, len(rank)))


ERROR_KINDS = _kinds(NetfaultError) - {NetfaultError.kind, AttemptError.kind} | {CANCELLED_KIND}
"""Every kind an event or result may carry: the closed vocabulary for scenario files."""
