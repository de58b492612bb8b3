"""The node's channel faults as one exec request meets them: mangling and resets aimed at
its transport (told apart by its command), and the disk quota as a full disk shows it."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import struct

import asyncssh

from netfault.simulator.node.faults import NodeFaults, channel_transport, quota_report

# A command that writes what it reads on stdin into a file (``cat > F``, ``base64 -d >> F``).
_WRITES_STDIN = re.compile(r"\b(cat|base64\s+(-d|--decode))\s*>>?\s")
ENOSPC_EXIT = 1
# SIGXFSZ, as the shell reports a child it killed (128 + 25) or as a signal number
FILE_TOO_LARGE_EXITS = frozenset({128 + signal.SIGXFSZ, -signal.SIGXFSZ})


class ChannelFaults:
    """The node's channel faults aimed at this exec request's transport (by its command),
    and its disk quota as a full disk shows it to a writer: ENOSPC."""

    def __init__(self, process: asyncssh.SSHServerProcess[bytes], room: int | None = None) -> None:
        faults: NodeFaults | None = getattr(process.channel, "netfault_faults", None)
        targeted = faults.targets(process.command) if faults is not None else (None, None)
        self.mangling, self.reset = targeted
        self.seen = 0
        self._channel = process.channel
        self._node_faults = faults
        self._hits = self.mangling.hits if self.mangling else 0
        self._reported = False
        self._offsets = {"inbound": 0, "outbound": 0}
        command = process.command or ""
        writes = _WRITES_STDIN.search(command)
        self.room = room if writes else None
        self.ratio = 0.75 if writes and writes.group(1) == "base64" else 1.0  # decoded/sent
        self.disk_full = False
        self._transport = channel_transport(command)
        self._accepted = 0  # stdin bytes let through to the writer

    def _fired(self, record: dict[str, object]) -> None:
        if self._node_faults is not None:
            self._node_faults.report(record)

    def _mangled(self, direction: str, data: bytes, offset: int) -> bytes:
        """``data`` through the mangling; the first byte it changes on this channel is
        reported at once, with its offset in that direction's stream."""
        assert self.mangling is not None
        inbound = direction == "inbound"
        out = self.mangling.inbound(data) if inbound else self.mangling.outbound(data)
        if not self._reported and self.mangling.hits > self._hits:
            self._reported = True
            pairs = enumerate(zip(data, out, strict=False))
            first = next((i for i, (a, b) in pairs if a != b), min(len(data), len(out)))
            mode = self.mangling.mode
            record = {"fault": "corrupt_binary", "mode": mode, "direction": direction}
            self._fired({**record, "offset": offset + first})
        return out

    def fit(self, data: bytes) -> bytes:
        """What of ``data`` still fits in the quota; marks the disk full when not all of it."""
        if self.room is None:
            return data
        fits = max(0, int(self.room / self.ratio))
        if len(data) <= fits:
            self.room -= int(len(data) * self.ratio)
            self._accepted += len(data)
            return data
        self.room, self.disk_full = 0, True
        self._accepted += fits
        # The offset is the stdin byte the full disk refused: fixed by the data and the quota.
        self._fired(quota_report("no_space", self._transport, self._accepted))
        return data[:fits]

    def exited(self, code: int, fsize_limit: int | None) -> None:
        """The command ended with ``code``: a kill by the quota's file-size limit is reported."""
        if fsize_limit is not None and code in FILE_TOO_LARGE_EXITS:
            self._fired(quota_report("file_too_large", self._transport))

    def inbound(self, data: bytes) -> bytes | None:
        """Client -> command; None once the connection was reset."""
        return self._pass("inbound", data)

    def outbound(self, data: bytes) -> bytes | None:
        """Command -> client; None once the connection was reset."""
        return self._pass("outbound", data)

    def _pass(self, direction: str, data: bytes) -> bytes | None:
        if self._reset_now(data):
            return None
        offset = self._offsets[direction]
        self._offsets[direction] += len(data)
        return self._mangled(direction, data, offset) if self.mangling else data

    def _reset_now(self, data: bytes) -> bool:
        if self.reset is None:
            return False
        self.seen += len(data)
        if self.seen <= self.reset.after_bytes:
            return False
        self._fired({"fault": "reset", "channel": self.reset.transport, "offset": self.seen})
        conn = self._channel.get_connection()
        sock = conn.get_extra_info("socket")
        if sock is not None:  # RST, not FIN: what a middlebox killing the stream does
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.abort()
        return True
