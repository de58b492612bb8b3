"""A fake node's SSH server as the real OpenSSH ``sshd``, run as a foreground child process.

``sshd -D -e -f <generated config>`` listens on the node's address; it is ready when it logs
"Server listening on" (LogLevel VERBOSE), and everything it logs goes to ``sshd.log`` in the
node's sandbox. Started by an ordinary user it can only log in that user, so such a node's
``user`` is the current one. Stopping kills the listener, every per-connection process and every
session (tracked by session id, so backgrounded commands go too).

Faults: ``auth_refused`` empties ``authorized_keys`` (sshd then asks the node, which decides
per connection: :mod:`~netfault.simulator.node.sshd_auth`), ``host_key_changed`` rewrites
the host key file, ``binary_mangling`` makes every session run under a pseudo-terminal
(:mod:`~netfault.simulator.node.pty_session`), the field failure itself.
``disk_quota`` runs each session under ``prlimit --fsize`` set to what is left of the quota,
as the asyncssh node does. What the terminal changed and a write the quota stopped are
reported by the sessions (:mod:`~netfault.simulator.node.sshd_events`).
``binary_reset_after`` lives inside the asyncssh server and is refused
here (:class:`SshdFaults`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
from collections import deque
from collections.abc import Callable
from pathlib import Path

import asyncssh

from netfault.simulator.node.fault_scope import service_of
from netfault.simulator.node.faults import NodeFaults
from netfault.simulator.node.keys import HostKeys
from netfault.simulator.node.sshd_auth import AuthDecisions, command_available
from netfault.simulator.node.sshd_events import SessionEvents
from netfault.simulator.node.sshd_files import SshdBinaries, SshdFiles, authorized_text

READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
LOG_TAIL = 12
READY_MARK = "Server listening on"
# Faults that live in the asyncssh server's channels; sshd's sessions never see them.
ASYNCSSH_ONLY = ("binary_reset_after", "channel_mangling", "channel_reset")
# Switches that change a file sshd or the session wrapper reads.
FILE_FAULTS = ("auth_refused", "binary_mangling", "disk_quota")


class SshdFaults(NodeFaults):
    """NodeFaults of an OpenSSH node: every SSH fault notifies, asyncssh-only ones are refused."""

    def __setattr__(self, name: str, value: object) -> None:
        problem = self.refusal(name, value)
        if problem is not None:
            raise ValueError(problem)
        super().__setattr__(name, value)
        if name in FILE_FAULTS:
            self._notify(name)

    def scope(
        self, attr: str, connections: int, restore: Callable[[], None], record: dict[str, object]
    ) -> Callable[[], None]:
        """As NodeFaults.scope; refused for the SSH switches sshd cannot count exactly (all but
        ``auth_refused``, which the node decides per connection: see ``sshd_auth``)."""
        problem = scope_refusal(attr, record.get("fault", attr))
        if problem is not None:
            raise ValueError(problem)
        return super().scope(attr, connections, restore, record)

    @staticmethod
    def refusal(name: str, value: object) -> str | None:
        """Why ``name = value`` cannot be set on an OpenSSH node, or None."""
        if name in ASYNCSSH_ONLY and value is not None:
            return (
                f"fault {name} is only available on a node with ssh_server 'asyncssh' "
                "(it lives inside that SSH server); this node runs OpenSSH sshd"
            )
        return None


def scope_refusal(attr: str, fault: object) -> str | None:
    """Why the switch ``attr`` cannot live for N connections on an OpenSSH node, or None."""
    if service_of(attr) == "http" or (attr == "auth_refused" and command_available()):
        return None
    return (
        f"fault {fault} with for_connections is only available on a node with ssh_server "
        "'asyncssh' (it counts SSH connections as it accepts them); this node runs OpenSSH "
        "sshd: use for_operations"
    )


class OpenSSHServer:
    """The node's sshd process: same interface as NodeSSHServer (start, stop, host key)."""

    def __init__(
        self,
        *,
        name: str,
        directory: Path,
        home: Path,
        user: str,
        faults: NodeFaults,
        host_keys: HostKeys,
        authorized: list[asyncssh.SSHKey],
    ) -> None:
        self.name = name
        self.files = SshdFiles(directory, home, user)
        self.log_path = directory.parent / "sshd.log"
        self.faults = faults
        self.host_keys = host_keys
        self.authorized = authorized
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._log_tail: deque[str] = deque(maxlen=LOG_TAIL)
        self.session_events = SessionEvents(self.files.events, faults)
        self.auth = AuthDecisions(self.files.auth_socket, faults, self._authorized_text)

    def _authorized_text(self) -> str:
        return authorized_text(self.authorized)

    async def start(self, host: str, port: int) -> int:
        """Start sshd on ``host:port`` (0: a free port) and return the port once it listens."""
        binaries = SshdBinaries.find(self.name)
        for _ in range(5 if port == 0 else 1):
            chosen = port or _free_port(host)
            try:
                await self._start_on(host, chosen, binaries)
                return chosen
            except OSError as exc:
                if port != 0 or exc.errno != errno.EADDRINUSE:
                    raise
        raise OSError(errno.EADDRINUSE, f"no free port for sshd on {host} after 5 tries")

    async def _start_on(self, host: str, port: int, binaries: SshdBinaries) -> None:
        key = self.host_keys.current(self.faults.host_key_changed)
        await asyncio.to_thread(self.files.write_all, host, port, binaries, key)
        for name in FILE_FAULTS:
            self.apply_fault(name)
        self.session_events.start()
        if command_available():
            await self.auth.start()
        self._log_tail.clear()
        self._proc = await asyncio.create_subprocess_exec(
            str(binaries.sshd), "-D", "-e", "-f", str(self.files.config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        ready = asyncio.get_running_loop().create_future()
        self._pump = asyncio.create_task(self._read_log(self._proc, ready))
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await ready
        except TimeoutError:
            await self.stop()
            raise OSError(
                errno.ETIMEDOUT, f"sshd did not listen within {READY_TIMEOUT} s"
            ) from None
        if not ready.result():
            await self.stop()
            tail = " | ".join(self._log_tail)
            code = errno.EADDRINUSE if "Address already in use" in tail else errno.EIO
            raise OSError(code, f"sshd exited before listening (log {self.log_path}: {tail})")

    async def _read_log(
        self, proc: asyncio.subprocess.Process, ready: asyncio.Future[bool]
    ) -> None:
        """Copy sshd's stderr to the node's log; resolve ``ready`` on listen or exit."""
        assert proc.stderr is not None
        with self.log_path.open("a", encoding="utf-8", errors="replace") as log:
            while line := (await proc.stderr.readline()).decode("utf-8", "replace"):
                log.write(line)
                log.flush()
                self._log_tail.append(line.strip())
                if READY_MARK in line and not ready.done():
                    ready.set_result(True)
        if not ready.done():
            ready.set_result(False)

    def refresh_host_key(self) -> None:
        """Present the key matching ``faults.host_key_changed`` from the next connection on."""
        self.apply_fault("host_key_changed")

    def apply_fault(self, name: str) -> None:
        """Turn a fault switch into the file sshd reads on the next connection or session."""
        if not self.files.dir.is_dir():
            return  # not started: start() writes every file from the switches
        if name == "auth_refused":
            self.files.write_authorized([] if self.faults.auth_refused else self.authorized)
        elif name == "host_key_changed":
            self.files.write_host_key(self.host_keys.current(self.faults.host_key_changed))
        elif name == "binary_mangling":
            self.files.set_pty(self.faults.binary_mangling)
        elif name == "disk_quota":
            self.files.set_quota(self.faults.disk_quota)

    async def stop(self) -> None:
        """Kill sshd, its per-connection processes and every session; close its log."""
        proc, self._proc = self._proc, None
        if proc is not None:
            doomed = kill_tree(proc.pid, self.files.session_ids())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_TIMEOUT):
                    await proc.wait()
                    # A SIGKILLed process takes a moment to die (longer on a loaded machine):
                    # stop() returns once none of them runs any more.
                    await _gone(doomed)
        pump, self._pump = self._pump, None
        if pump is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_TIMEOUT):
                    await asyncio.shield(pump)
            pump.cancel()
        self.files.sessions.unlink(missing_ok=True)
        self.session_events.stop()
        await self.auth.stop()


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) of every process."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[3]))
    return table


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _gone(pids: set[int]) -> None:
    """Return once every one of ``pids`` has died (a process descriptor turns readable)."""
    loop = asyncio.get_running_loop()
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # already gone
            continue
        died: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, _settle, died)
        try:
            await died
        finally:
            loop.remove_reader(fd)
            os.close(fd)


def kill_tree(root: int, sessions: set[int]) -> set[int]:
    """SIGKILL ``root``, its descendants, and every process in their or ``sessions``' sessions.

    sshd puts each connection and each session in a new session (setsid), so a process group
    kill would miss them, and a backgrounded command outlives its shell's parentage.
    Returns the pids it signalled.
    """
    table = _process_table()
    doomed = {root}
    changed = True
    while changed:
        children = {pid for pid, (ppid, _) in table.items() if ppid in doomed} - doomed
        doomed |= children
        changed = bool(children)
    sids = (sessions | {table[p][1] for p in doomed if p in table}) - {os.getsid(0)}
    doomed |= {pid for pid, (_, sid) in table.items() if sid in sids}
    doomed.discard(os.getpid())
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return doomed
