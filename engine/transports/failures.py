"""The engine's one exception map: library, OS, exit-status and HTTP-status failures become
typed errors (``netfault.engine.errors``) here, and nowhere else.

``Tracker`` follows one attempt (node, transport, bytes moved, progress callback); the
``boundary`` context manager turns whatever escapes into an ``AttemptError`` with
``raise ... from exc``; the failover loop calls ``classify`` on anything a candidate raises.
The kind decides failover: a request error (no such file, a directory, the caller's own
permissions, a missing key) stops the operation; a path error fails over. Bytes damaged in
flight are ``integrity`` however they surface (a MAC or packet error, an undecodable
stream, a garbled HTTP message), not ``reset`` or ``transport``. ``CancelledError`` is
never caught.
"""

from __future__ import annotations

import binascii
import errno
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
import asyncssh

from netfault.engine.config import NodeConfig
from netfault.engine.errors import (
    AttemptError,
    AuthenticationError,
    ConnectError,
    ConnectionReset,
    IntegrityError,
    IsDirectoryError,
    LocalPermissionError,
    MissingKeyError,
    NotFoundError,
    RemoteStorageError,
    ServerError,
    TransportError,
    TransportTimeout,
)
from netfault.engine.transports import remote as rc
from netfault.engine.transports.base import Progress

E = TypeVar("E", bound=AttemptError)

TERMINAL_KILL = (
    "the remote writer was killed by {signal}: a terminal on the channel read a byte of the "
    "stream as {key}, so binary data cannot cross it (base64 can)"
)
RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
STORAGE_MARKERS = (
    "No space left on device",
    "Disk quota exceeded",
    "File too large",
    "Permission denied",
    "Read-only file system",
    "Operation not permitted",
)
KEY_REFUSED_MARKERS = ("Permission denied (", "Too many authentication failures")
AUTH_MARKERS = (
    *KEY_REFUSED_MARKERS,
    "Host key verification failed",
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "No ED25519 host key is known",
)
# OpenSSH's words for a packet that arrived damaged (the MAC check or the framing caught it)
CORRUPTION_MARKERS = (
    "Corrupted MAC",
    "message authentication code incorrect",
    "Bad packet length",
    "padding error",
    "Packet corrupt",
    "Packet integrity error",
    "invalid packet",
)
# (marker, error) for remote commands' own words about the request
REQUEST_MARKERS: tuple[tuple[str, type[AttemptError]], ...] = (
    ("netfault: no such file", NotFoundError),
    ("netfault: is a directory", IsDirectoryError),
    ("cannot overwrite directory", IsDirectoryError),
    ("Is a directory", IsDirectoryError),
    ("No such file or directory", NotFoundError),
)
HTTP_STATUS_ERRORS: dict[int, type[AttemptError]] = {
    400: IntegrityError,  # the agent could not parse what arrived: damaged in flight
    401: AuthenticationError,
    403: RemoteStorageError,
    404: NotFoundError,
    409: IsDirectoryError,
    413: RemoteStorageError,
    422: IntegrityError,
    423: TransportError,  # an earlier upload still holds the agent's partial: a path error
    507: RemoteStorageError,
}
# rsync's words for a protocol stream it could not parse: bytes damaged in flight (a forced
# terminal's echo and line editing, a rewriting middlebox). Exit 12 comes with these as well
# as with "connection unexpectedly closed", so the words decide, not the code.
RSYNC_DAMAGE_MARKERS = (
    "is your shell clean",
    "unexpected tag",
    "multiplexing overflow",
    "invalid multi-message",
    "invalid message",
    "Invalid packet at end of run",
    "overflow: flags=",
    "Invalid file index",
    "Invalid dir index",
)
# rsync exit codes whose stderr named no cause: what they mean on this path
RSYNC_EXITS: dict[int, type[TransportError]] = {
    1: IntegrityError,  # "syntax or usage error": our argv is fixed, so the stream was damaged
    2: IntegrityError,  # "protocol incompatibility": the same
    11: RemoteStorageError,  # "error in file IO": the receiver could not write
    12: ConnectionReset,
    20: ConnectionReset,
    30: TransportTimeout,
    35: ConnectionReset,
    255: ConnectionReset,
}

# exit statuses of the fenced remote writer and commit (``remote``) that fail the attempt,
# with what they mean when the writer's own words are lost (a terminal merges its stderr
# into the stdout the client discards)
WRITER_EXITS: dict[int, tuple[type[TransportError], str]] = {
    rc.SHORT_EXIT: (
        IntegrityError,
        "the node received fewer bytes than were sent: the stream was cut or damaged",
    ),
    rc.TAKEN_EXIT: (TransportError, rc.TAKEN_MARK),
    rc.ABANDONED_EXIT: (
        IntegrityError,
        "the node did not receive the sha256 to check the copy against intact",
    ),
    # 128 + the signal a terminal's line discipline raises when the stream holds its byte:
    # only a terminal on the channel (a forced TTY) turns data into a signal for the writer
    128 + signal.SIGINT: (IntegrityError, TERMINAL_KILL.format(signal="SIGINT", key="^C")),
    128 + signal.SIGQUIT: (IntegrityError, TERMINAL_KILL.format(signal="SIGQUIT", key="^\\")),
}


@dataclass
class AttemptNote:
    """What the attempt running in this context moved, as its Tracker saw it: where it
    started (``resumed_from``, 0 from scratch) and the bytes it sent or received itself.
    The failover loop opens one per attempt (``noting``); a Tracker writes to the one of
    the context it runs in, whichever task created it (a raced connection's, say)."""

    resumed_from: int = 0
    sent: int = 0
    tracked: bool = False


_NOTE: ContextVar[AttemptNote | None] = ContextVar("netfault_attempt_note", default=None)


@contextmanager
def noting() -> Iterator[AttemptNote]:
    """The note of the attempt run inside this block."""
    note = AttemptNote()
    token = _NOTE.set(note)
    try:
        yield note
    finally:
        _NOTE.reset(token)


class Tracker:
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
        note = _NOTE.get()
        if note is not None:
            note.sent += count
            note.tracked = True
        if self.progress is not None:
            self.progress(self.done, self.total)

    def start_at(self, offset: int) -> None:
        """The data starts moving at ``offset``: what a partial already held (0: all of it)."""
        self.done = offset
        note = _NOTE.get()
        if note is not None:
            note.resumed_from = offset
            note.tracked = True

    def set_done(self, done: int) -> None:
        self.advance(done - self.done)

    def fail(self, cls: type[E], message: str) -> E:
        where = f"{self.transport}@{self.node.name}"
        return cls(
            f"{where}: {message}",
            node=self.node.name,
            transport=self.transport,
            bytes_done=self.done,
        )


def timed_out(attempt: Tracker, limit: float | None = None) -> TransportTimeout:
    """A timeout whose hint fits what moved: a silent node first, a longer timeout last."""
    head = f"timed out after {limit:g} s" if limit is not None else "timed out"
    if attempt.done:
        return attempt.fail(
            TransportTimeout,
            f"{head}, {attempt.done:,} bytes in: the connection stopped carrying data; "
            "run again to resume, or use a longer timeout if the link is only slow",
        )
    return attempt.fail(
        TransportTimeout,
        f"{head} with no answer: the node may be down or its route dropping packets "
        f"(netfault probe {attempt.node.name} shows which routes answer); a longer timeout "
        "helps only if the node is merely slow",
    )


def classify(exc: BaseException, attempt: Tracker, *, connecting: bool = False) -> AttemptError:
    """The typed error for a library/OS exception raised during ``attempt``; with
    ``connecting``, raised while its connection was being set up."""
    error = _classify(exc, attempt, connecting)
    if connecting:
        error.connecting = True
    return error


def _classify(exc: BaseException, attempt: Tracker, connecting: bool) -> AttemptError:
    if isinstance(exc, AttemptError):
        return exc
    after = f" after {attempt.done:,} bytes" if attempt.done else ""
    found = _ssh_error(exc, attempt, after) or _http_error(exc, attempt, after)
    if found is not None:
        return found
    if isinstance(exc, TimeoutError):
        return timed_out(attempt)
    if isinstance(exc, rc.FenceRefused):  # refused again after the one retry it gets
        return attempt.fail(TransportError, f"{exc} on the node: another push is writing; retry")
    if isinstance(exc, UnicodeDecodeError | binascii.Error):
        return attempt.fail(IntegrityError, f"undecodable data{after} ({exc}); damaged in flight")
    if connecting and isinstance(exc, FileNotFoundError):
        return attempt.fail(MissingKeyError, f"a key or known_hosts file is missing: {exc}")
    if isinstance(exc, ConnectionRefusedError) or (connecting and isinstance(exc, OSError)):
        return attempt.fail(ConnectError, f"cannot connect ({exc}); is the server running?")
    local = _local_error(exc, attempt)
    if local is not None:
        return local
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS and not _is_reset(exc):
        return attempt.fail(RemoteStorageError, f"storage error{after}: {exc}")
    if _is_reset(exc):
        return attempt.fail(ConnectionReset, f"connection lost{after} ({exc}); resume may help")
    return attempt.fail(TransportError, f"failed{after}: {type(exc).__name__}: {exc}")


def _ssh_error(exc: BaseException, attempt: Tracker, after: str) -> AttemptError | None:
    if isinstance(exc, asyncssh.PermissionDenied):
        return attempt.fail(AuthenticationError, f"ssh key refused ({exc.reason}); check ssh_key")
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return attempt.fail(
            AuthenticationError,
            f"host key not verified ({exc.reason}); check known_hosts before trusting it",
        )
    if isinstance(exc, asyncssh.MACError | asyncssh.ProtocolError):
        return attempt.fail(IntegrityError, f"ssh packet damaged in flight{after} ({exc.reason})")
    if isinstance(exc, asyncssh.ChannelOpenError):
        return attempt.fail(ConnectError, f"ssh channel refused ({exc.reason})")
    return None


def _http_error(exc: BaseException, attempt: Tracker, after: str) -> AttemptError | None:
    if isinstance(exc, aiohttp.ClientSSLError):
        return attempt.fail(AuthenticationError, f"TLS failed ({exc}); check the certificate")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return attempt.fail(ConnectError, f"cannot connect ({exc}); is the agent running?")
    if isinstance(exc, aiohttp.ClientResponseError):  # unparsable status line or headers
        return attempt.fail(IntegrityError, f"garbled HTTP response{after} ({exc.message})")
    return None


def _local_error(exc: BaseException, attempt: Tracker) -> AttemptError | None:
    """An OSError about a local file: the caller's request, not the path to the node."""
    if isinstance(exc, FileNotFoundError):
        return attempt.fail(NotFoundError, f"local file or directory missing: {exc}")
    if isinstance(exc, IsADirectoryError):
        return attempt.fail(IsDirectoryError, f"local path is a directory: {exc}")
    if isinstance(exc, PermissionError):
        return attempt.fail(LocalPermissionError, f"local permission denied: {exc}")
    return None


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


def exit_error(stderr: str, exit_status: int | None, attempt: Tracker, what: str) -> AttemptError:
    """The typed error for a remote command that ended badly (no status: the link died)."""
    if exit_status is None and not stderr:
        after = f" after {attempt.done:,} bytes" if attempt.done else ""
        return attempt.fail(
            ConnectionReset,
            f"{what}: channel closed without an exit status{after} "
            "(connection lost); resume may help",
        )
    return classify_stderr(stderr or f"exit status {exit_status}", attempt, what)


def classify_stderr(stderr: str, attempt: Tracker, what: str) -> AttemptError:
    """The typed error for a remote command or local client that failed with ``stderr``."""
    error = _classify_stderr(stderr, attempt, what)
    if any(marker in stderr for marker in SETUP_MARKERS):
        error.connecting = True
    return error


def _classify_stderr(stderr: str, attempt: Tracker, what: str) -> AttemptError:
    text = " ".join(stderr.split())[-400:]
    if any(marker in stderr for marker in CORRUPTION_MARKERS):
        return attempt.fail(IntegrityError, f"{what}: {text} (damaged in flight)")
    if any(marker in stderr for marker in KEY_REFUSED_MARKERS):  # the words asyncssh's get
        return attempt.fail(AuthenticationError, f"{what}: ssh key refused ({text}); check ssh_key")
    if any(marker in stderr for marker in AUTH_MARKERS):
        return attempt.fail(
            AuthenticationError,
            f"{what}: host key not verified ({text}); check known_hosts before trusting it",
        )
    if "Connection refused" in stderr or "Could not resolve" in stderr or "No route" in stderr:
        return attempt.fail(ConnectError, f"{what}: {text}")
    if "timed out" in stderr or "timeout" in stderr:
        return attempt.fail(TransportTimeout, f"{what}: {text}")
    for marker, cls in REQUEST_MARKERS:
        if marker in stderr:
            return attempt.fail(cls, f"{what}: {text}")
    if any(marker in stderr for marker in STORAGE_MARKERS) or "exit status 153" in stderr:
        return attempt.fail(RemoteStorageError, f"{what}: {text}")
    if "reset by peer" in stderr or "Broken pipe" in stderr or "closed by remote" in stderr:
        return attempt.fail(ConnectionReset, f"{what}: {text}")
    return attempt.fail(TransportError, f"{what}: {text or 'no error output'}")


def ssh_client_error(
    stderr: str, attempt: Tracker, what: str, *, connecting: bool = False
) -> AttemptError:
    """The typed error of OpenSSH's ``ssh`` failing on its own (exit 255) with ``stderr``;
    ``connecting``: before its connection was up, where a reset or close is a connect error
    (as asyncssh's OSError there is)."""
    error = classify_stderr(stderr or "ssh exit status 255", attempt, what)
    if type(error) is TransportError:  # ssh lost the connection without saying why
        error = classify_stderr("connection closed by remote: " + stderr, attempt, what)
    if connecting and type(error) is ConnectionReset:
        said = " ".join(stderr.split())[-400:]
        error = attempt.fail(ConnectError, f"{what}: cannot connect ({said})")
    if connecting:
        error.connecting = True
    return error


# OpenSSH's words for a connection that failed before its session started
SETUP_MARKERS = (
    "ssh: connect to host",
    "kex_exchange_identification",
    "ssh_exchange_identification",
    "during banner exchange",
)


def rsync_error(code: int, stderr: str, attempt: Tracker) -> AttemptError:
    """The typed error for an rsync run that exited with ``code``."""
    error = classify_stderr(stderr or f"rsync exit status {code}", attempt, f"rsync exit {code}")
    if type(error) is not TransportError:
        return error
    said = " ".join(stderr.split())[-400:]
    if any(marker in stderr for marker in RSYNC_DAMAGE_MARKERS):
        return attempt.fail(IntegrityError, f"rsync exit {code}: {said} (damaged in flight)")
    if code not in RSYNC_EXITS:
        return error
    return attempt.fail(RSYNC_EXITS[code], f"rsync exit {code}: {said}")


def writer_error(status: int | None, stderr: str, attempt: Tracker, what: str) -> AttemptError:
    """The typed error for a fenced remote writer or commit that ended with ``status``."""
    known = WRITER_EXITS.get(status) if status is not None else None
    if known is None:
        return exit_error(stderr, status, attempt, what)
    cls, meaning = known
    said = " ".join(stderr.split())[-400:]
    return attempt.fail(cls, f"{what}: {said or meaning} (exit status {status})")


def is_writer_exit(status: int | None) -> bool:
    """Whether a remote writer's exit ``status`` says why it failed without its stderr."""
    return status is not None and status in WRITER_EXITS


def http_status_error(status: int, attempt: Tracker, what: str, text: str = "") -> AttemptError:
    """The typed error for an HTTP error status from the node's agent."""
    cls = HTTP_STATUS_ERRORS.get(status) or (ServerError if status >= 500 else TransportError)
    return attempt.fail(cls, f"{what}: HTTP {status} {text}".rstrip())


def mismatch(attempt: Tracker, expected: str, got: str) -> AttemptError:
    return attempt.fail(
        IntegrityError,
        f"sha256 mismatch (expected {expected[:16]}…, got {got[:16]}…); the copy was discarded",
    )


@contextmanager
def boundary(attempt: Tracker, *, connecting: bool = False) -> Iterator[None]:
    """Re-raise anything but a typed error or a cancellation as its typed error."""
    try:
        yield
    except AttemptError:
        raise
    except Exception as exc:
        raise classify(exc, attempt, connecting=connecting) from exc


# scp's words (and a master session's, ``sshmux.GONE``) when its connection went away
SCP_LINK_MARKERS = (
    "lost connection",
    "Connection closed",
    "connection to the node is closed",
    "reset by peer",
    "Broken pipe",
)


def scp_lost_link(code: int | None, stderr: str) -> bool:
    """Whether an ``scp`` run that exited with ``code`` lost its connection (ssh's own exit
    255, its words, or none): then its master's last words say why."""
    if code == 255 or not stderr.strip():
        return True
    return any(marker in stderr for marker in SCP_LINK_MARKERS)


def scp_error(code: int | None, stderr: str, attempt: Tracker) -> AttemptError:
    """The typed error of an ``scp`` run that exited with ``code`` (``stderr`` with its
    master's last words added when it lost its connection)."""
    if scp_lost_link(code, stderr):
        return ssh_client_error(stderr, attempt, "scp")
    return classify_stderr(stderr, attempt, "scp")
