"""Exec requests of the fake node's SSH server, run as real processes in the node's home.

stdin is fed from our own loop (read from the channel, write and drain into the pipe), never
through ``process.redirect(stdin=...)``: asyncio's pipe transport can drop the tail of an upload
when asyncssh writes data and EOF right after a resume (see the platform notes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh

from netfault.simulator.node.channel_faults import ENOSPC_EXIT, ChannelFaults

CHUNK = 256 * 1024
# A killed command's pipes close at once; the bound is generous so that a heavily loaded
# machine does not leave the child unreaped (it is waited for only within it) when stop returns.
REAP_TIMEOUT = 10.0
SHELL = "/bin/sh"
_PASSED_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")


class ProcessRegistry:
    """Child processes of exec requests, so the node can kill them all on stop; each is reaped
    by one task, however many callers (its session, the node stopping) wait for that."""

    def __init__(self) -> None:
        self._procs: set[asyncio.subprocess.Process] = set()
        self._reaping: dict[asyncio.subprocess.Process, asyncio.Task[None]] = {}

    def add(self, proc: asyncio.subprocess.Process) -> None:
        self._procs.add(proc)

    def reap(self, proc: asyncio.subprocess.Process) -> asyncio.Task[None]:
        """The one task killing ``proc`` if needed and closing its pipes; forgets it when done."""
        task = self._reaping.get(proc)
        if task is None:
            task = asyncio.ensure_future(_reap(proc))
            self._reaping[proc] = task

            def forget(_: asyncio.Task[None]) -> None:
                self._procs.discard(proc)
                self._reaping.pop(proc, None)

            task.add_done_callback(forget)
        return task

    async def kill_all(self) -> None:
        for proc in list(self._procs):
            kill_group(proc)
        tasks = [self.reap(proc) for proc in list(self._procs)]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._procs.clear()


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Kill a command still running, read its pipes to EOF, then wait for it, so its pipe
    transports close now (not later in a garbage collector, after the loop may be gone).

    The pipes come first: ``wait()`` returns only once they are closed, and a pipe paused
    because the client stopped reading (an interrupted pull) never sees its EOF otherwise.
    """
    if proc.returncode is None:
        kill_group(proc)
    with contextlib.suppress(TimeoutError, OSError):
        async with asyncio.timeout(REAP_TIMEOUT):
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    while await pipe.read(CHUNK):
                        pass
            await proc.wait()
            if proc.stdin is not None:
                # Take the stdin pipe's outcome (a BrokenPipeError if the command stopped
                # reading): older Pythons (Debian 12's 3.11.2) log it as "never retrieved".
                await proc.stdin.wait_closed()


def kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the process group a request's shell leads (start_new_session=True)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def build_env(home: Path, user: str, process: asyncssh.SSHServerProcess[bytes]) -> dict[str, str]:
    """The environment sshd would give a login of ``user`` whose home is ``home``."""
    conn = process.channel.get_extra_info("connection")
    peer = conn.get_extra_info("peername") or ("", 0)
    sock = conn.get_extra_info("sockname") or ("", 0)
    env = {
        "HOME": str(home),
        "PWD": str(home),
        "USER": user,
        "LOGNAME": user,
        "SHELL": SHELL,
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "SSH_CLIENT": f"{peer[0]} {peer[1]} {sock[1]}",
        "SSH_CONNECTION": f"{peer[0]} {peer[1]} {sock[0]} {sock[1]}",
    }
    for name, value in process.env.items():
        key = name.decode() if isinstance(name, bytes) else str(name)
        if key in _PASSED_ENV or key.startswith("LC_"):
            env[key] = value.decode() if isinstance(value, bytes) else str(value)
    return env


def shell_argv(command: str | None, fsize_limit: int | None) -> list[str]:
    """argv running ``command`` through the user's shell, under a file-size limit if given."""
    argv = [SHELL] if command is None else [SHELL, "-c", command]
    if fsize_limit is not None:
        argv = ["prlimit", f"--fsize={max(fsize_limit, 0)}", "--", *argv]
    return argv


class ExecSession:
    """One exec (or shell) request: spawn, pump stdin/stdout/stderr, report the exit status."""

    def __init__(
        self,
        process: asyncssh.SSHServerProcess[bytes],
        *,
        home: Path,
        env: dict[str, str],
        registry: ProcessRegistry,
        fsize_limit: int | None,
    ) -> None:
        self._process = process
        self._home = home
        self._env = env
        self._registry = registry
        self._fsize_limit = fsize_limit
        self._faults = ChannelFaults(process, fsize_limit)

    async def run(self) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *shell_argv(self._process.command, self._fsize_limit),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self._home,
                env=self._env,
                start_new_session=True,
            )
        except OSError as exc:
            self._process.stderr.write(f"netfault node: cannot run the command: {exc}\n".encode())
            self._process.exit(127)
            return
        self._registry.add(proc)
        try:
            code = await self._serve(proc)
            self._faults.exited(code, self._fsize_limit)
            if self._faults.disk_full:
                tool = (self._process.command or "cat").split(";")[-1].split()[0]
                self._process.stderr.write(
                    f"{tool}: write error: No space left on device\n".encode()
                )
                code = ENOSPC_EXIT
            self._process.exit(code)
        except (OSError, asyncssh.Error):
            # The client went away: nobody is left to read the output.
            self._process.close()
        finally:
            # Shielded: a cancelled session still leaves its process reaped and pipes closed.
            await asyncio.shield(self._registry.reap(proc))

    async def _serve(self, proc: asyncio.subprocess.Process) -> int:
        assert proc.stdout is not None and proc.stderr is not None
        feeder = asyncio.create_task(self._feed_stdin(proc))
        closed = asyncio.create_task(self._process.wait_closed())
        try:
            outputs: asyncio.Future[Any] = asyncio.gather(
                _pump(proc.stdout, self._process.stdout, self._faults.outbound),
                _pump(proc.stderr, self._process.stderr),
            )
            waiting: list[asyncio.Future[Any]] = [outputs, closed]
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if outputs not in done:
                outputs.cancel()
                await asyncio.gather(outputs, return_exceptions=True)
                raise BrokenPipeError("SSH channel closed before the command finished")
            await outputs
            code = await proc.wait()
        finally:
            for task in (feeder, closed):
                task.cancel()
            await asyncio.gather(feeder, closed, return_exceptions=True)
        return 128 - code if code < 0 else code

    async def _feed_stdin(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None
        # A deeper pipe buffer than asyncio's 64 KiB default means fewer drain round trips.
        proc.stdin.transport.set_write_buffer_limits(high=4 * CHUNK)
        try:
            while True:
                try:
                    data = await self._process.stdin.read(CHUNK)
                except asyncssh.SignalReceived as sig:
                    _forward_signal(proc, sig.signal)
                    continue
                except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged):
                    continue
                if not data:
                    break
                passed = self._faults.inbound(data)
                if passed is None:
                    return  # the channel fault reset the connection
                passed = self._faults.fit(passed)
                proc.stdin.write(passed)
                if self._faults.disk_full:
                    await proc.stdin.drain()
                    kill_group(proc)  # the writer stops at a full disk
                    return
                await proc.stdin.drain()
            # Flush the pipe completely before closing it, so no tail of the upload is lost.
            proc.stdin.transport.set_write_buffer_limits(high=0)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return  # the command stopped reading; its exit status tells the client
        finally:
            proc.stdin.close()


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncssh.SSHWriter[bytes],
    fault: Callable[[bytes], bytes | None] | None = None,
) -> None:
    while data := await reader.read(CHUNK):
        passed = fault(data) if fault is not None else data
        if passed is None:
            raise BrokenPipeError("the connection was reset by a channel fault")
        writer.write(passed)
        await writer.drain()


def _forward_signal(proc: asyncio.subprocess.Process, name: str) -> None:
    signum = getattr(signal, f"SIG{name}", None)
    if isinstance(signum, signal.Signals):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)


SessionFactory = Callable[[asyncssh.SSHServerProcess[bytes]], ExecSession]
