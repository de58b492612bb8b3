"""The rsync transport: the ``rsync`` binary over OpenSSH ``ssh``, resumable with ``--partial``.

rsync writes to the same ``.<name>.nfpart`` name the other transports use: a fresh copy with
``--whole-file --inplace`` (no delta search, no temp file and rename), a resume with
``--partial --append-verify``. The remote rsync runs under the partial's lock
(``remote.wrap_fenced``), or writes a private copy when an earlier writer keeps it. A side
asyncssh connection checks the partial's prefix sha256 before reuse and renames it only once
the whole file's sha256 matches the source's; a pull
hashes the local partial right behind rsync's in-place writes instead of in a second pass.

Racing: the side connection is set up first (``connect``), as a phase of its own, so
failover races it across routes like the exec transports' connection. rsync's own ``ssh``
is a second connection, opened once the side connection is up and aimed at the address and
port that connection reached; the race proves the route, it does not carry rsync's bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import shlex
import shutil
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import asyncssh

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import RemoteStorageError
from netfault.engine.transports import children
from netfault.engine.transports import remote as rc
from netfault.engine.transports.base import (
    Direction,
    Progress,
    Transport,
    TransportConnection,
)
from netfault.engine.transports.failures import Tracker, boundary, mismatch, rsync_error
from netfault.engine.transports.fenced import commit_remote, discard_own, resume_point
from netfault.engine.transports.integrity import (
    Hasher,
    hash_prefix,
    local_partial_size,
    receiving,
    sha256_file,
)
from netfault.engine.transports.sshconn import (
    SshEndpoint,
    run_text,
    ssh_command,
    ssh_connection,
)
from netfault.engine.transports.sshconn import (
    ssh_options as ssh_options,  # re-exported: the script API's scp uses it
)
from netfault.engine.transports.sshpipe import follow_hash

_PROGRESS = re.compile(rb"^\s*([\d,]+)\s+\d+%")


def remote_spec(endpoint: SshEndpoint, path: str) -> str:
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    return f"{host}:{path}"


def local_arg(path: Path) -> str:
    """An absolute local path, so rsync never reads ``a:b`` as a host or ``-x`` as an option."""
    return os.path.abspath(path)


class RsyncTransport(Transport):
    """rsync over ssh to ``node.hostname:ssh_port``; needs rsync and ssh on both ends."""

    name = "rsync"
    # The asyncssh connection is set up first, so failover can race it across routes.
    connects_first = True

    def available(self, node: NodeConfig) -> bool:
        return shutil.which("rsync") is not None and shutil.which("ssh") is not None

    def endpoint(self, node: NodeConfig) -> SshEndpoint:
        return SshEndpoint.direct(node)

    def rsync_argv(
        self, endpoint: SshEndpoint, config: TransportConfig, wrap: str = "trap '' XFSZ;"
    ) -> list[str]:
        """``wrap``: the remote shell prefix of the remote rsync (by default, an ignored
        SIGXFSZ turns the node's file-size limit into a reported EFBIG)."""
        return [
            "rsync",
            "--outbuf=L",
            "--info=progress2",
            f"--timeout={max(1, int(config.operation_timeout))}",
            f"--rsync-path={wrap} rsync",
            "-e",
            shlex.join(ssh_command(endpoint, config)),
        ]

    async def connect(
        self, node: NodeConfig, config: TransportConfig, progress: Progress | None = None
    ) -> TransportConnection:
        """Open the asyncssh connection a transfer checks and commits over; rsync's own
        ``ssh`` then aims at the address and port this connection reached."""
        attempt = Tracker(node, self.name, progress)
        stack = AsyncExitStack()
        endpoint = self.endpoint(node)
        with boundary(attempt, connecting=True):
            conn = await stack.enter_async_context(ssh_connection(endpoint, config, attempt))
        return RsyncConnection(self, attempt, endpoint, conn, stack)

    async def push(
        self,
        node: NodeConfig,
        local_path: Path,
        remote_path: str,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
        """Upload; return the bytes this attempt sent (less than the size when it resumed)."""
        return await self._connected(
            Direction.PUSH, node, local_path, remote_path, config, progress
        )

    async def pull(
        self,
        node: NodeConfig,
        remote_path: str,
        local_path: Path,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
        """Download; return the bytes this attempt received (less when it resumed)."""
        return await self._connected(
            Direction.PULL, node, local_path, remote_path, config, progress
        )

    async def _push_on(
        self,
        conn: asyncssh.SSHClientConnection,
        endpoint: SshEndpoint,
        local_path: Path,
        final: str,
        config: TransportConfig,
        attempt: Tracker,
    ) -> None:
        token = secrets.token_hex(8)
        attempt.total = (await asyncio.to_thread(local_path.stat)).st_size
        digest = asyncio.ensure_future(sha256_file(local_path))
        try:
            await self._write_fenced(conn, endpoint, local_path, final, token, config, attempt)
            own = rc.own_name(final, token)
            await commit_remote(conn, own, final, await digest, attempt)
        except RemoteStorageError:
            await discard_own(conn, final, token)
            raise
        finally:
            digest.cancel()

    async def _write_fenced(
        self,
        conn: asyncssh.SSHClientConnection,
        endpoint: SshEndpoint,
        local: Path,
        final: str,
        token: str,
        config: TransportConfig,
        attempt: Tracker,
    ) -> None:
        """rsync into the shared partial under its lock (resuming what it holds), or into
        this attempt's own partial when a previous writer keeps the lock."""
        assert attempt.total is not None
        src = local_arg(local)
        offset, _ = await resume_point(conn, final, local, attempt)
        tmp = rc.part_name(final)
        attempt.start_at(offset)
        wait = rc.lock_wait(config.operation_timeout)
        wrap = rc.wrap_fenced(final, offset, attempt.total, token, wait)
        try:
            dst = remote_spec(endpoint, tmp)
            await self._rsync([src, dst], endpoint, config, attempt, _mode(offset), wrap)
        except rc.FenceRefused:
            attempt.start_at(0)
            own = remote_spec(endpoint, rc.own_name(final, token))
            await self._rsync([src, own], endpoint, config, attempt, _mode(0))

    async def _pull_into(
        self,
        conn: asyncssh.SSHClientConnection,
        endpoint: SshEndpoint,
        part: Path,
        source: str,
        config: TransportConfig,
        attempt: Tracker,
    ) -> None:
        """Copy ``source`` into the partial, hashing behind rsync; raise on a mismatch."""
        attempt.total = rc.parse_size(await run_text(conn, rc.cmd_stat(source), attempt, "stat"))
        offset, hasher = await self._local_offset(conn, source, part, attempt)
        attempt.start_at(offset)
        expected = asyncio.ensure_future(run_text(conn, rc.cmd_sha(source), attempt, "sha256sum"))
        try:
            argv = [remote_spec(endpoint, source), local_arg(part)]
            # Both modes write the partial in place, in order: hash it right behind.
            copying = self._rsync(argv, endpoint, config, attempt, _mode(offset))
            await follow_hash(part, offset, hasher, copying)
            want, got = rc.parse_sha(await expected), str(hasher.hexdigest())
        finally:
            expected.cancel()
        if want != got:
            raise mismatch(attempt, want, got)

    async def probe(self, node: NodeConfig, config: TransportConfig) -> str:
        """An rsync listing of the node's home over ssh: proves rsync and ssh both work."""
        attempt = Tracker(node, self.name)
        endpoint = self.endpoint(node)
        with boundary(attempt):
            async with asyncio.timeout(config.operation_timeout):
                await self._rsync(
                    [remote_spec(endpoint, ".")], endpoint, config, attempt, ["--list-only"]
                )
        return f"rsync --list-only ok via {endpoint.host}:{endpoint.port}"

    async def _local_offset(
        self, conn: asyncssh.SSHClientConnection, source: str, part: Path, attempt: Tracker
    ) -> tuple[int, Hasher]:
        """Keep a local partial only if its sha256 equals the remote prefix's; else start an
        empty one. Returns the offset and a sha256 object fed with that prefix."""
        assert attempt.total is not None
        partial = await local_partial_size(part, attempt.total)
        if partial:
            remote_sha, local_hasher = await asyncio.gather(
                run_text(conn, rc.cmd_prefix_sha(source, partial), attempt, "sha256sum"),
                hash_prefix(part, partial),
            )
            if rc.parse_sha(remote_sha) == local_hasher.hexdigest():
                return partial, local_hasher
        await asyncio.to_thread(part.write_bytes, b"")
        return 0, hashlib.sha256()

    async def _rsync(
        self,
        paths: Sequence[str],
        endpoint: SshEndpoint,
        config: TransportConfig,
        attempt: Tracker,
        options: Sequence[str] = (),
        wrap: str = "trap '' XFSZ;",
    ) -> None:
        argv = [*self.rsync_argv(endpoint, config, wrap), *options, "--", *paths]
        proc = await children.spawn(
            argv, stdin=children.DEVNULL, stdout=children.PIPE, stderr=children.PIPE
        )
        try:
            assert proc.stdout is not None and proc.stderr is not None
            start = attempt.done
            stderr, _ = await asyncio.gather(
                proc.stderr.read(), _follow_progress(proc.stdout, attempt, start)
            )
            code = await proc.wait()
        finally:
            await children.reap(proc)
        if code != 0:
            text = stderr.decode("utf-8", "replace")
            fenced = rc.fence_code(None, text)
            if fenced is not None:
                raise rc.FenceRefused(fenced)
            raise rsync_error(code, text, attempt)


class RsyncConnection(TransportConnection):
    """The asyncssh connection of one rsync transfer; rsync's ``ssh`` aims where it did."""

    def __init__(
        self,
        transport: RsyncTransport,
        attempt: Tracker,
        endpoint: SshEndpoint,
        conn: asyncssh.SSHClientConnection,
        stack: AsyncExitStack,
    ) -> None:
        self._transport, self._attempt, self._endpoint = transport, attempt, endpoint
        self._conn, self._stack = conn, stack

    async def transfer(
        self, direction: Direction, local_path: Path, remote_path: str, config: TransportConfig
    ) -> int:
        """Push or pull over this connection (rsync beside it); return the bytes moved."""
        attempt, impl, conn, endpoint = self._attempt, self._transport, self._conn, self._endpoint
        path = rc.remote_path_for(attempt.node, remote_path)
        with boundary(attempt):
            async with asyncio.timeout(config.operation_timeout):
                if direction is Direction.PUSH:
                    await impl._push_on(conn, endpoint, local_path, path, config, attempt)
                else:
                    wait = rc.lock_wait(config.operation_timeout)
                    async with receiving(local_path, wait) as part:
                        await impl._pull_into(conn, endpoint, part, path, config, attempt)
        return attempt.sent

    async def close(self) -> None:
        await self._stack.aclose()


async def _follow_progress(stream: asyncio.StreamReader, attempt: Tracker, start: int) -> None:
    """Parse ``--info=progress2`` lines (bytes of this run) into progress calls."""
    buffer = b""
    while chunk := await stream.read(4096):
        *lines, buffer = re.split(rb"[\r\n]", buffer + chunk)
        for line in lines:
            match = _PROGRESS.match(line)
            if match:
                attempt.set_done(max(start, int(match.group(1).replace(b",", b""))))


def _mode(offset: int) -> list[str]:
    """A fresh copy goes whole (no delta search) straight into the partial name; a resume
    appends to the partial after rsync re-checks the part it keeps."""
    return ["--partial", "--append-verify"] if offset else ["--whole-file", "--inplace"]
