"""What an OpenSSH node's sessions report about the faults they met, read from a FIFO.

sshd runs each session as a child process tree, so the node cannot watch the data the way
the asyncssh server does. The session runner (:mod:`~netfault.simulator.node.pty_session`,
which the session wrapper starts while the terminal or the quota fault is on) writes one
JSON line to the ``events`` FIFO in the node's sshd directory when a session ends; the node
reads it on its event loop (a reader callback, no polling) and turns each line into the
fault reports NodeFaults listeners get (``NodeFaults.report``), as the asyncssh node's
channels do:

* ``{"session": "pty", "command", "exit", "inbound": {...}, "outbound": {...}}``: the forced
  terminal (``corrupt_binary`` at level ssh) changed ``changed`` bytes of a direction, the
  first at offset ``first`` -- one report per direction it changed;
* ``"file_too_large": true`` (either session kind, ``pty`` or ``plain``): a write hit the
  disk quota's file-size limit (SIGXFSZ, exit 153, or EFBIG "File too large").

A line is at most a few hundred bytes, one ``write`` below PIPE_BUF, so lines from sessions
ending at once never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path

from netfault.simulator.node.faults import NodeFaults, channel_transport, quota_report

READ_SIZE = 65536
log = logging.getLogger("netfault.simulator.node.sshd")


def fault_reports(line: dict[str, object], quota: bool) -> list[dict[str, object]]:
    """The NodeFaults reports one session's line stands for (none: nothing fired);
    ``quota``: a disk quota is on, so exit 153 is its limit killing a writer."""
    command = _command(line)
    channel = channel_transport(command)
    reports: list[dict[str, object]] = []
    if line.get("session") == "pty":
        for direction in ("inbound", "outbound"):
            damage = line.get(direction)
            if isinstance(damage, dict) and damage.get("changed"):
                reports.append(
                    {
                        "fault": "corrupt_binary",
                        "mode": "pty",
                        "direction": direction,
                        "channel": channel,
                        "offset": damage.get("first"),
                        "offset_exact": True,  # fixed by the data (see pty_session)
                        "count": damage.get("changed"),
                    }
                )
    if quota and line.get("file_too_large") is True:
        reports.append(quota_report("file_too_large", channel))
    return reports


def _command(line: dict[str, object]) -> str:
    command = line.get("command")
    return command if isinstance(command, str) else ""


class SessionEvents:
    """Reads the node's events FIFO while sshd runs; each line goes to ``faults.report``."""

    def __init__(self, path: Path, faults: NodeFaults) -> None:
        self.path = path
        self.faults = faults
        self._fds: tuple[int, int] | None = None
        self._buffer = b""

    def start(self) -> None:
        if self._fds is not None:
            return
        with contextlib.suppress(FileExistsError):
            os.mkfifo(self.path, 0o600)
        reader = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        # our own writer keeps the FIFO from reading EOF between sessions
        keeper = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        self._fds = (reader, keeper)
        asyncio.get_running_loop().add_reader(reader, self._readable)

    def _readable(self) -> None:
        assert self._fds is not None
        try:
            data = os.read(self._fds[0], READ_SIZE)
        except BlockingIOError:
            return
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for raw in lines:
            self._line(raw)

    def _line(self, raw: bytes) -> None:
        try:
            line = json.loads(raw)
        except ValueError:
            log.warning("sshd session event is not JSON: %r", raw[:200])
            return
        if isinstance(line, dict):
            for report in fault_reports(line, self.faults.disk_quota is not None):
                self.faults.report(report)

    def stop(self) -> None:
        fds, self._fds = self._fds, None
        if fds is None:
            return
        asyncio.get_running_loop().remove_reader(fds[0])
        for fd in fds:
            os.close(fd)
        self._buffer = b""
        self.path.unlink(missing_ok=True)
