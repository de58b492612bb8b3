"""Node-level faults that a TCP proxy cannot express, switchable at run time.

``binary_mangling`` models a 7-bit text path (a forced TTY in raw-ish mode, a text-only
middlebox). While it is on, every byte of SSH channel data (exec stdin/stdout/stderr, SFTP and
SCP, both directions) is rewritten by :func:`mangle`:

* a byte >= 0x80 loses its high bit (``b & 0x7F``);
* a CR (0x0D) becomes LF (0x0A), as a TTY's ICRNL does.

The rule keeps lengths (so SSH window accounting holds) and never touches printable ASCII or
LF, so base64 text passes intact and ``base64 -d`` on the node decodes it (GNU ``base64 -d``
ignores LF but rejects CR, which is why LF is not expanded to CRLF). Binary data -- a file sent
through ``cat``, SFTP or rsync -- is corrupted or breaks the protocol.

``binary_reset_after`` (bytes, ``None`` = off) resets the TCP connection once an SSH channel
has carried more than that many bytes, some of them >= 0x80: rsync, SFTP and ``cat`` die with
"connection reset by peer" while base64 text passes, the seed's classic incident.

``channel_mangling`` and ``channel_reset`` act on the exec channels of one transport (told
apart by the command, see :func:`channel_transport`) or of every transport: mangling in a
chosen mode (``strip_high_bit``, ``lf_to_crlf``, ``pty``) with a per-byte probability, and a
reset after N bytes whether or not they are binary. ``exec_session`` applies them.

``disk_quota`` (bytes, ``None`` = unlimited) caps the total size of the node's home -- every
regular file under it counts, ``.ssh`` and earlier uploads included: HTTP PUT answers 507
"No space left on device", SFTP writes fail with ENOSPC, and an exec request that writes its
stdin to a file (``cat > F``, ``base64 -d > F``) gets what still fits, then stops with
"write error: No space left on device" (exit 1), as a writer on a full disk does. Other exec
requests run under ``RLIMIT_FSIZE`` set to the remaining quota (``prlimit --fsize``) as a
backstop: a process writing a file past it gets SIGXFSZ (exit 153) or EFBIG.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netfault.simulator.node.fault_scope import ConnectionScope

HTTP_MODES = ("up", "down", "5xx", "hang")
# The SSH servers a node can run (FakeNode's ssh_server); here so the command line and
# config loaders can check a name without importing either server.
SSH_SERVERS = ("asyncssh", "openssh")

_MANGLE_TABLE = bytes((b & 0x7F) if b != 0x0D else 0x0A for b in range(256))


def mangle(data: bytes) -> bytes:
    """Rewrite ``data`` the way the 7-bit text path does (see module docstring)."""
    return data.translate(_MANGLE_TABLE)


# -- faults aimed at the exec channels of one transport ----------------------------------
# The transports are told apart by what their exec request runs: base64 pipes through
# ``base64``, rsync runs ``rsync --server``, scp runs ``scp -t``/``scp -f``, and the plain
# ssh transport moves data with ``cat``/``tail -c``. Helper commands (mkdir, wc, sha256sum,
# mv) carry no file data and are never targeted.
CHANNEL_TRANSPORTS = ("ssh", "rsync", "base64", "scp")
MANGLING_MODES = ("strip_high_bit", "lf_to_crlf", "pty")
_CLASSES = (
    ("base64", re.compile(r"\bbase64\b")),
    ("rsync", re.compile(r"\brsync\b")),
    ("scp", re.compile(r"^\s*scp\s")),
    ("ssh", re.compile(r"\bcat\b|\btail\s+-c\b")),
)
_STRIP_TABLE = bytes(b & 0x7F for b in range(256))
# what a terminal's line discipline consumes instead of passing on: ^C ^D ^Q ^S ^Z ^\
PTY_CONSUMED = frozenset(b"\x03\x04\x11\x13\x1a\x1c")


def channel_transport(command: str | None) -> str | None:
    """The transport an exec request belongs to, by what it runs (None: a helper command)."""
    if not command:
        return None
    return next((name for name, pattern in _CLASSES if pattern.search(command)), None)


def quota_report(action: str, channel: str | None, offset: int | None = None) -> dict[str, object]:
    """What a node reports when its disk quota stopped a write (``no_space``: ENOSPC to the
    writer; ``file_too_large``: killed or refused by the file-size limit)."""
    record: dict[str, object] = {"fault": "disk_full", "action": action, "channel": channel}
    if offset is not None:
        record |= {"offset": offset, "offset_exact": True}
    return record


@dataclass
class ChannelMangling:
    """Bytes of the targeted exec channels rewritten, each with ``probability``.

    ``strip_high_bit``: a byte >= 0x80 loses its high bit (both directions).
    ``lf_to_crlf``: each LF the node sends becomes CRLF (a terminal's ONLCR).
    ``pty``: a forced terminal: LF -> CRLF on output, and on input CR -> LF (ICRNL) while
    the control characters a line discipline acts on (``PTY_CONSUMED``) are consumed.
    """

    mode: str = "strip_high_bit"
    probability: float = 1.0
    transport: str | None = None
    seed: int = 0
    rng: random.Random = field(init=False, repr=False)
    hits: int = field(init=False, default=0)  # bytes rewritten, dropped or inserted so far

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.seed}:mangle:{self.mode}:{self.transport}")

    def describe(self) -> str:
        return f"{self.mode} p={self.probability:g} on {self.transport or 'every'} channel"

    def _hit(self) -> bool:
        hit = self.probability >= 1.0 or self.rng.random() < self.probability
        self.hits += hit
        return hit

    def inbound(self, data: bytes) -> bytes:
        """Client -> node."""
        if self.mode == "strip_high_bit":
            if self.probability >= 1.0:
                self.hits += sum(1 for b in data if b >= 0x80)
                return data.translate(_STRIP_TABLE)
            return bytes(b & 0x7F if b >= 0x80 and self._hit() else b for b in data)
        if self.mode == "pty":
            out = bytearray()
            for b in data:
                if b in PTY_CONSUMED and self._hit():
                    continue
                out.append(0x0A if b == 0x0D and self._hit() else b)
            return bytes(out)
        return data

    def outbound(self, data: bytes) -> bytes:
        """Node -> client."""
        if self.mode == "strip_high_bit":
            return self.inbound(data)
        out = bytearray()
        for b in data:
            if b == 0x0A and self._hit():
                out.append(0x0D)
            out.append(b)
        return bytes(out)


@dataclass(frozen=True)
class ChannelReset:
    """The connection reset once a targeted exec channel carried ``after_bytes`` bytes."""

    after_bytes: int = 0
    transport: str | None = None

    def describe(self) -> str:
        return f"reset after {self.after_bytes} bytes on {self.transport or 'every'} channel"


class NodeFaults:
    """The faults active on one node; setting an attribute takes effect at once."""

    def __init__(self) -> None:
        self._listener: Callable[[str], None] | None = None
        self.binary_mangling = False
        self.binary_reset_after: int | None = None
        self.auth_refused = False
        self._host_key_changed = False
        self.disk_quota: int | None = None
        self._http_mode = "up"
        self.channel_mangling: ChannelMangling | None = None
        self.channel_reset: ChannelReset | None = None
        # told what the channel faults did, as they do it (the scenario's fault trace)
        self._fired: tuple[Callable[[dict[str, object]], None], ...] = ()
        self._scopes: list[ConnectionScope] = []  # faults living for N connections
        self._admitted = {"ssh": 0, "http": 0}  # connections / requests seen, per service

    def targets(self, command: str | None) -> tuple[ChannelMangling | None, ChannelReset | None]:
        """The channel faults that apply to an exec request running ``command``."""
        kind = channel_transport(command)
        if kind is None:
            return None, None
        mangling, reset = self.channel_mangling, self.channel_reset
        return (
            mangling if mangling and mangling.transport in (None, kind) else None,
            reset if reset and reset.transport in (None, kind) else None,
        )

    def on_fired(self, listener: Callable[[dict[str, object]], None]) -> Callable[[], None]:
        """Call ``listener`` (on the node's loop) each time a channel fault acts; returns
        the function that stops it. The record has ``fault`` and what it did."""
        self._fired = (*self._fired, listener)

        def stop() -> None:
            self._fired = tuple(x for x in self._fired if x is not listener)

        return stop

    def report(self, record: dict[str, object]) -> None:
        """A channel fault acted: tell the listeners."""
        for listener in self._fired:
            listener(record)

    def scope(
        self, attr: str, connections: int, restore: Callable[[], None], record: dict[str, object]
    ) -> Callable[[], None]:
        """End the switch ``attr`` (just set) by itself after the next ``connections``
        connections to its service (see :mod:`fault_scope`): ``restore`` sets it back and
        the expiry is reported with ``record``. Returns the function that drops the scope."""
        scope = ConnectionScope(attr, getattr(self, attr), connections, restore, record)
        self._scopes.append(scope)
        return lambda: self._scopes.remove(scope) if scope in self._scopes else None

    def admit(self, service: str) -> NodeFaults:
        """A connection (SSH) or request (HTTP) arrived: count it against the scoped faults
        of ``service``; returns the faults it meets (its own view when it used a scope up)."""
        number = self._admitted[service]  # this one's number, from 0 (like a proxy's)
        self._admitted[service] += 1
        pinned: dict[str, object] = {}
        for scope in [s for s in self._scopes if s.service == service]:
            scope.left -= 1
            if scope.left > 0:
                continue
            self._scopes.remove(scope)
            pinned[scope.attr] = scope.value
            scope.restore()
            connection = {"service": service, "connection": number}
            self.report({**scope.record, "expired": True, **connection})
        return ConnectionFaults(self, pinned) if pinned else self

    @property
    def host_key_changed(self) -> bool:
        return self._host_key_changed

    @host_key_changed.setter
    def host_key_changed(self, value: bool) -> None:
        changed = value != self._host_key_changed
        self._host_key_changed = value
        if changed:
            self._notify("host_key_changed")

    @property
    def http_mode(self) -> str:
        return self._http_mode

    @http_mode.setter
    def http_mode(self, value: str) -> None:
        if value not in HTTP_MODES:
            raise ValueError(f"http_mode must be one of {HTTP_MODES}, not {value!r}")
        changed = value != self._http_mode
        self._http_mode = value
        if changed:
            self._notify("http_mode")

    def set_disk_full(self, quota: int = 0) -> None:
        """Make writes past ``quota`` bytes of home usage fail (0: every write fails)."""
        self.disk_quota = quota

    def clear(self) -> None:
        """Switch every fault off."""
        self.binary_mangling = False
        self.binary_reset_after = None
        self.auth_refused = False
        self.host_key_changed = False
        self.disk_quota = None
        self.http_mode = "up"
        self.channel_mangling = None
        self.channel_reset = None
        self._scopes = []

    def active(self) -> dict[str, object]:
        """The faults that are on, by name (for /status and logs)."""
        faults: dict[str, object] = {
            "binary_mangling": self.binary_mangling,
            "binary_reset_after": self.binary_reset_after,
            "auth_refused": self.auth_refused,
            "host_key_changed": self.host_key_changed,
            "disk_quota": self.disk_quota,
            "http_mode": self.http_mode if self.http_mode != "up" else None,
            "channel_mangling": self.channel_mangling and self.channel_mangling.describe(),
            "channel_reset": self.channel_reset and self.channel_reset.describe(),
        }
        return {k: v for k, v in faults.items() if v is not None and v is not False}

    def on_change(self, listener: Callable[[str], None] | None) -> None:
        """Register the node's callback for faults that need action (host key, HTTP mode)."""
        self._listener = listener

    def _notify(self, name: str) -> None:
        if self._listener is not None:
            self._listener(name)


class ConnectionFaults(NodeFaults):
    """The faults of the connection that used a scoped fault up: the scoped switches as they
    were for it, every other switch read live from the node."""

    def __init__(self, node: NodeFaults, pinned: dict[str, object]) -> None:
        # a property's value lives under its private name, which the property reads
        props = {k for k, v in vars(NodeFaults).items() if isinstance(v, property)}
        self.__dict__.update({f"_{k}" if k in props else k: v for k, v in pinned.items()})
        self.__dict__["_netfault_node"] = node

    def __getattr__(self, name: str) -> Any:  # only for what is not pinned
        return getattr(self.__dict__["_netfault_node"], name)
