"""Translation of library and OS exceptions into the engine's typed errors, at the boundary.

``Attempt`` tracks one transfer (node, transport, bytes moved, progress callback); the
``boundary`` context manager turns whatever escapes into a ``TransportError`` subclass with
``raise ... from exc``. ``CancelledError`` is never caught.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import asyncssh

from netfault.engine.config import NodeConfig
from netfault.engine.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionReset,
    IntegrityError,
    RemoteStorageError,
    TransportError,
    TransportTimeout,
)
from netfault.engine.http_client import RESET_ERRNOS
from netfault.engine.transports.base import Progress

STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EFBIG, errno.EROFS, errno.EPERM}
STORAGE_MARKERS = (
    "No space left on device",
    "Disk quota exceeded",
    "File too large",
    "Permission denied",
    "Read-only file system",
    "Operation not permitted",
)
AUTH_MARKERS = (
    "Permission denied (",
    "Host key verification failed",
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "No ED25519 host key is known",
    "Too many authentication failures",
)


class Attempt:
    """One push or pull on one transport: where it goes and how far it got."""

    def __init__(self, node: NodeConfig, transport: str, progress: Progress | None = None) -> None:
        self.node = node
        self.transport = transport
        self.progress = progress
        self.total: int | None = None
        self.done = 0
        self.sent = 0  # bytes moved over the wire by this attempt (a resume skips the rest)

    def advance(self, count: int) -> None:
        self.done += count
        self.sent += count
        if self.progress is not None:
            self.progress(self.done, self.total)

    def set_done(self, done: int) -> None:
        self.advance(done - self.done)

    def fail(self, cls: type[TransportError], message: str) -> TransportError:
        where = f"{self.transport}@{self.node.name}"
        return cls(
            f"{where}: {message}",
            node=self.node.name,
            transport=self.transport,
            bytes_done=self.done,
        )


def classify(exc: BaseException, attempt: Attempt, *, connecting: bool = False) -> TransportError:
    """The typed error for a library/OS exception raised during ``attempt``."""
    if isinstance(exc, TransportError):
        return exc
    after = f" after {attempt.done:,} bytes" if attempt.done else ""
    if isinstance(exc, asyncssh.PermissionDenied):
        return attempt.fail(AuthenticationError, f"ssh key refused ({exc.reason}); check ssh_key")
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return attempt.fail(
            AuthenticationError,
            f"host key not verified ({exc.reason}); check known_hosts before trusting it",
        )
    if isinstance(exc, TimeoutError):
        return attempt.fail(TransportTimeout, f"timed out{after}; retry with a longer timeout")
    if isinstance(exc, ConnectionRefusedError) or (connecting and isinstance(exc, OSError)):
        return attempt.fail(ConnectError, f"cannot connect ({exc}); is the server running?")
    if isinstance(exc, asyncssh.ChannelOpenError):
        return attempt.fail(ConnectError, f"ssh channel refused ({exc.reason})")
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS and not _is_reset(exc):
        return attempt.fail(RemoteStorageError, f"storage error{after}: {exc}")
    if _is_reset(exc):
        return attempt.fail(ConnectionReset, f"connection lost{after} ({exc}); resume may help")
    return attempt.fail(TransportError, f"failed{after}: {type(exc).__name__}: {exc}")


def _is_reset(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in RESET_ERRNOS:
        return True  # e.g. aiohttp's ClientOSError wraps ECONNRESET without being one
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return True
    return isinstance(
        exc,
        asyncssh.DisconnectError
        | asyncssh.ConnectionLost
        | ConnectionError
        | EOFError
        | asyncssh.BreakReceived,
    )


def exit_error(stderr: str, exit_status: int | None, attempt: Attempt, what: str) -> TransportError:
    """The typed error for a remote command that ended badly (no status: the link died)."""
    if exit_status is None and not stderr:
        after = f" after {attempt.done:,} bytes" if attempt.done else ""
        return attempt.fail(
            ConnectionReset,
            f"{what}: channel closed without an exit status{after} "
            "(connection lost); resume may help",
        )
    return classify_stderr(stderr or f"exit status {exit_status}", attempt, what)


def classify_stderr(stderr: str, attempt: Attempt, what: str) -> TransportError:
    """The typed error for a remote command or local client that failed with ``stderr``."""
    text = " ".join(stderr.split())[-400:]
    if any(marker in stderr for marker in AUTH_MARKERS):
        return attempt.fail(AuthenticationError, f"{what}: {text}")
    if "Connection refused" in stderr or "Could not resolve" in stderr or "No route" in stderr:
        return attempt.fail(ConnectError, f"{what}: {text}")
    if "timed out" in stderr or "timeout" in stderr:
        return attempt.fail(TransportTimeout, f"{what}: {text}")
    if any(marker in stderr for marker in STORAGE_MARKERS) or "exit status 153" in stderr:
        return attempt.fail(RemoteStorageError, f"{what}: {text}")
    if "reset by peer" in stderr or "Broken pipe" in stderr or "closed by remote" in stderr:
        return attempt.fail(ConnectionReset, f"{what}: {text}")
    return attempt.fail(TransportError, f"{what}: {text or 'no error output'}")


def mismatch(attempt: Attempt, expected: str, got: str) -> TransportError:
    return attempt.fail(
        IntegrityError,
        f"sha256 mismatch (expected {expected[:16]}…, got {got[:16]}…); the copy was discarded",
    )


@contextmanager
def boundary(attempt: Attempt, *, connecting: bool = False) -> Iterator[None]:
    """Re-raise anything but ``TransportError``/cancellation as its typed error."""
    try:
        yield
    except TransportError:
        raise
    except Exception as exc:
        raise classify(exc, attempt, connecting=connecting) from exc
