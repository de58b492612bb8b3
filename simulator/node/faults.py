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

``disk_quota`` (bytes, ``None`` = unlimited) caps the total size of the node's home: HTTP PUT
answers 507, SFTP writes fail with "No space left on device", and exec requests run under
``RLIMIT_FSIZE`` set to the remaining quota (``prlimit --fsize``), so a process writing a file
past it gets SIGXFSZ (exit 153) or EFBIG. The exec limit is per file, not cumulative.
"""

from __future__ import annotations

from collections.abc import Callable

HTTP_MODES = ("up", "down", "5xx", "hang")
# The SSH servers a node can run (FakeNode's ssh_server); here so the command line and
# config loaders can check a name without importing either server.
SSH_SERVERS = ("asyncssh", "openssh")

_MANGLE_TABLE = bytes((b & 0x7F) if b != 0x0D else 0x0A for b in range(256))


def mangle(data: bytes) -> bytes:
    """Rewrite ``data`` the way the 7-bit text path does (see module docstring)."""
    return data.translate(_MANGLE_TABLE)


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

    def active(self) -> dict[str, object]:
        """The faults that are on, by name (for /status and logs)."""
        faults: dict[str, object] = {
            "binary_mangling": self.binary_mangling,
            "binary_reset_after": self.binary_reset_after,
            "auth_refused": self.auth_refused,
            "host_key_changed": self.host_key_changed,
            "disk_quota": self.disk_quota,
            "http_mode": self.http_mode if self.http_mode != "up" else None,
        }
        return {k: v for k, v in faults.items() if v is not None and v is not False}

    def on_change(self, listener: Callable[[str], None] | None) -> None:
        """Register the node's callback for faults that need action (host key, HTTP mode)."""
        self._listener = listener

    def _notify(self, name: str) -> None:
        if self._listener is not None:
            self._listener(name)
