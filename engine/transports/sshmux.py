"""One OpenSSH connection per attempt: a ControlMaster carrying every remote command and the data.

An OpenSSH handshake costs far more than a session on an open connection (a new key exchange,
authentication, and on ``sshd`` a privilege-separated child), so an attempt opens one
``ssh -M -N`` master in a private temporary directory and runs each step (prepare, resume check,
the data stream, sha256 and rename) as a session multiplexed over it: the ``ssh`` binary with
``-o ControlPath=<control socket>``, rsync with that ``ssh`` as its ``-e``, or ``scp`` with
those options. Every byte of the attempt
crosses that one TCP connection, so a fault on the route hits all of it.

The master runs in the foreground as a child process (``ControlPersist=no``) and is killed with
the attempt. A session client never opens a connection of its own: a ``ProxyCommand`` that
refuses makes it fail instead of silently dialling the node again when the master is gone.
When a session fails with ssh's own exit status (255), the master's stderr says why (a reset,
a damaged packet): both are classified together.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import time
from asyncio.subprocess import Process
from collections.abc import Awaitable, Sequence
from pathlib import Path

import asyncssh

from netfault.engine.config import TransportConfig
from netfault.engine.errors import AttemptError
from netfault.engine.transports import children
from netfault.engine.transports.failures import Tracker, exit_error, ssh_client_error, timed_out
from netfault.engine.transports.sshconn import SshEndpoint, check_key_files, ssh_command

SSH_ERROR_EXIT = 255  # ssh's own failure (connection, authentication), not the command's
READY = b"netfault: master ready"
# How long a failed session waits for the master to exit and say why (it exits right after
# the connection it carries broke, so this is only the time to read its last words).
MASTER_EXIT_WAIT = 1.0
DIR_PREFIX = "nf-ssh-"
STALE_WITHOUT_SOCKET = 3600.0
GONE = "echo 'netfault: the connection to the node is closed' >&2; exit 1"


class OpenSshMaster:
    """An authenticated OpenSSH connection to one endpoint, shared by one attempt's sessions."""

    def __init__(
        self,
        endpoint: SshEndpoint,
        attempt: Tracker,
        proc: asyncio.subprocess.Process,
        directory: Path,
    ) -> None:
        self.endpoint, self._attempt, self._proc, self._dir = endpoint, attempt, proc, directory
        assert proc.stderr is not None
        self._stderr = asyncio.ensure_future(proc.stderr.read())

    @classmethod
    async def open(
        cls, endpoint: SshEndpoint, config: TransportConfig, attempt: Tracker
    ) -> OpenSshMaster:
        """Connect and authenticate; raise the typed error (marked ``connecting``) if not."""
        await check_key_files(endpoint, attempt)
        directory = Path(await asyncio.to_thread(_fresh_directory))
        argv = [
            *ssh_command(endpoint, config),
            *("-N", "-M", "-S", str(directory / "c"), "-o", "ControlPersist=no"),
            *("-o", "PermitLocalCommand=yes", "-o", f"LocalCommand=echo '{READY.decode()}'"),
            *("-o", "LogLevel=ERROR", endpoint.host),
        ]
        master: OpenSshMaster | None = None
        ready = False
        try:
            proc = await children.spawn(
                argv, stdin=children.DEVNULL, stdout=children.PIPE, stderr=children.PIPE
            )
            master = cls(endpoint, attempt, proc, directory)
            await master._ready(config.connect_timeout)
            ready = True
            return master
        finally:
            if not ready and master is not None:
                await master.close()
            elif not ready:
                await asyncio.to_thread(shutil.rmtree, directory, True)

    @property
    def pid(self) -> int:
        """The master ``ssh`` process."""
        return self._proc.pid

    @property
    def control_dir(self) -> Path:
        """The private directory of the control socket (removed by ``close``)."""
        return self._dir

    async def _ready(self, limit: float) -> None:
        """Wait for the master's LocalCommand line (run once the control socket listens)."""
        assert self._proc.stdout is not None
        try:
            async with asyncio.timeout(limit):
                line = await self._proc.stdout.readline()
                if line.rstrip() == READY:
                    return
                await self._proc.wait()
                stderr = (await self._stderr).decode("utf-8", "replace")
        except TimeoutError:
            error: AttemptError = timed_out(self._attempt, limit)
        else:
            said = stderr or "ssh exited during the handshake"
            error = ssh_client_error(said, self._attempt, "connect", connecting=True)
        error.connecting = True
        raise error

    def argv(self, command: str) -> list[str]:
        """A session on this connection running ``command`` (no terminal)."""
        return [*self.ssh_argv(), "-T", self.endpoint.host, command]

    def ssh_argv(self) -> list[str]:
        """The ``ssh`` argv of a session, without host and command (rsync's ``-e``)."""
        return ["ssh", *self.session_options()]

    def session_options(self) -> list[str]:
        """The ``-o`` options that make an ssh client a session of this master (also what
        ``scp`` passes on to its ``ssh``: its ``-S`` names a program, not a socket)."""
        control = ("-o", f"ControlPath={self._dir / 'c'}", "-o", "ControlMaster=no")
        return [*control, "-o", f"ProxyCommand={GONE}", "-o", "LogLevel=ERROR"]

    async def spawn(self, argv: Sequence[str], stdin: int, stdout: int) -> Process:
        """Start a local process that ends with this connection: a session, or a local step
        of a pipeline feeding one (stderr is a pipe)."""
        pipe = children.PIPE
        return await children.spawn(
            argv, stdin=stdin, stdout=stdout, stderr=pipe, death_signal=False
        )

    async def run(
        self, command: str, *, check: bool = False, line: Awaitable[str] | None = None
    ) -> asyncssh.SSHCompletedProcess:
        """Run a short remote command (as ``SSHClientConnection.run`` does, never checked);
        a session that ssh itself failed raises its typed error. ``line``: the command's
        stdin, one line sent once it resolves (the session starts before)."""
        stdin = children.DEVNULL if line is None else children.PIPE
        proc = await self.spawn(self.argv(command), stdin, children.PIPE)
        try:
            sent = None if line is None else f"{await line}\n".encode()
            out, err = await proc.communicate(sent)
        finally:
            if proc.stdin is not None:  # cancelled before it was sent: close it here
                proc.stdin.close()
            await children.reap(proc)
        stderr = err.decode("utf-8", "replace")
        if proc.returncode == SSH_ERROR_EXIT:
            raise await self.failure(SSH_ERROR_EXIT, stderr, "remote command")
        return asyncssh.SSHCompletedProcess(
            command=command,
            exit_status=proc.returncode,
            returncode=proc.returncode,
            stdout=out.decode("utf-8", "replace"),
            stderr=stderr,
        )

    async def failure(self, status: int, stderr: str, what: str) -> AttemptError:
        """The typed error of a session ssh failed with ``status`` (255: what the master said
        about its connection, once it exited, replaces the session's own words)."""
        if status != SSH_ERROR_EXIT:
            return exit_error(stderr.strip(), status, self._attempt, what)
        said = await self.last_words()
        if self._proc.returncode is not None:
            stderr = said if said.strip() else "connection closed by remote"
        return ssh_client_error(stderr, self._attempt, f"ssh {what}")

    async def last_words(self) -> str:
        """The master's stderr if it exits within ``MASTER_EXIT_WAIT`` (its connection broke),
        else nothing: a session that failed while the master lives failed on its own."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(MASTER_EXIT_WAIT):
                await self._proc.wait()
        if self._proc.returncode is None:
            return ""
        return (await self._stderr).decode("utf-8", "replace")

    async def close(self) -> None:
        """Kill the master (its sessions are over) and remove its control directory (before
        any await: a close cancelled half way still leaves no directory behind)."""
        children.kill_group(self._proc)
        shutil.rmtree(self._dir, ignore_errors=True)  # one socket in a private directory
        self._stderr.cancel()
        await children.reap(self._proc)


def _fresh_directory() -> str:
    """A private directory for a control socket, after sweeping the ones dead engines left."""
    for stale in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        if _abandoned(stale):
            shutil.rmtree(stale, ignore_errors=True)
    return tempfile.mkdtemp(prefix=DIR_PREFIX)


def _abandoned(directory: Path) -> bool:
    """Whether a control directory outlived its master: an engine killed before it closed
    it (the master died with it, by its parent-death signal), so nothing listens on the
    socket; one with no socket yet counts only once it is an hour old."""
    socket_path = directory / "c"
    try:
        if directory.stat().st_uid != os.getuid():
            return False
        if not socket_path.exists():
            return time.time() - directory.stat().st_mtime > STALE_WITHOUT_SOCKET
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            probe.connect(str(socket_path))
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


__all__ = ["OpenSshMaster", "SSH_ERROR_EXIT"]
