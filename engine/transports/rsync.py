"""The rsync transport: the ``rsync`` binary over OpenSSH ``ssh``, resumable with ``--partial``.

rsync writes to the same ``.<name>.nfpart`` name the other transports use: a fresh copy with
``--whole-file --inplace`` (no delta search, no temp file and rename), a resume with
``--partial --append-verify``. The remote rsync runs under the partial's lock
(``remote.wrap_fenced``), or writes a private copy when an earlier writer keeps it. Remote
commands check the partial's prefix sha256 before reuse and rename it only once the whole
file's sha256 matches the source's; a pull hashes the local partial right behind rsync's
in-place writes instead of in a second pass.

One connection per attempt: ``connect`` opens an OpenSSH master (``sshmux``) as a phase of
its own, so failover races it across routes like the exec transports' connection, and both
the remote commands and rsync (whose ``-e`` is a session of that master) run over it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

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
from netfault.engine.transports.fenced import (
    PendingCommit,
    discard_own,
    remote_sha,
    remote_size,
    resume_point,
)
from netfault.engine.transports.integrity import (
    Hasher,
    hash_prefix,
    local_partial_size,
    receiving,
    sha256_file,
)
from netfault.engine.transports.sshconn import SshEndpoint, run_text, ssh_command
from netfault.engine.transports.sshmux import OpenSshMaster
from netfault.engine.transports.sshpipe import follow_hash

# rsync's exits when its remote shell's stream ended: the connection may have broken
LINK_EXITS = frozenset({10, 12, 255})
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
        self, ssh: Sequence[str], config: TransportConfig, wrap: str = "trap '' XFSZ;"
    ) -> list[str]:
        """``ssh``: the remote shell argv (``-e``); ``wrap``: the remote shell prefix of the
        remote rsync (by default, an ignored SIGXFSZ turns the node's file-size limit into a
        reported EFBIG)."""
        return [
            "rsync",
            "--outbuf=L",
            "--info=progress2",
            f"--timeout={max(1, int(config.operation_timeout))}",
            f"--rsync-path={wrap} rsync",
            "-e",
            shlex.join(ssh),
        ]

    async def connect(
        self, node: NodeConfig, config: TransportConfig, progress: Progress | None = None
    ) -> TransportConnection:
        """Open the OpenSSH master a transfer's remote commands and rsync both run on."""
        attempt = Tracker(node, self.name, progress)
        endpoint = self.endpoint(node)
        master = await OpenSshMaster.open(endpoint, config, attempt)
        return RsyncConnection(self, attempt, endpoint, master)

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
        conn: OpenSshMaster,
        endpoint: SshEndpoint,
        local_path: Path,
        final: str,
        config: TransportConfig,
        attempt: Tracker,
    ) -> None:
        token = secrets.token_hex(8)
        attempt.total = (await asyncio.to_thread(local_path.stat)).st_size
        digest = asyncio.ensure_future(sha256_file(local_path))
        pending = PendingCommit(conn, rc.own_name(final, token), final, attempt)
        try:
            await self._write_fenced(conn, endpoint, local_path, final, token, config, attempt)
            await pending.commit(await digest)
        except RemoteStorageError:
            await discard_own(conn, final, token)
            raise
        finally:
            digest.cancel()
            pending.abandon()

    async def _write_fenced(
        self,
        conn: OpenSshMaster,
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
        src, dst = local_arg(local), remote_spec(endpoint, rc.part_name(final))
        wait = rc.lock_wait(config.operation_timeout)
        try:  # no partial to resume is the common case: prepare in rsync's own session
            attempt.start_at(0)
            wrap = rc.wrap_fenced(final, 0, attempt.total, token, wait, prepare=True)
            await self._rsync([src, dst], conn, config, attempt, _mode(0), wrap)
            return
        except rc.FenceRefused as refused:
            if refused.code == rc.PARTIAL_EXIT:
                with contextlib.suppress(rc.FenceRefused):  # busy or changed: go private
                    await self._resume(conn, local, final, token, config, attempt)
                    return
        attempt.start_at(0)
        own = remote_spec(endpoint, rc.own_name(final, token))
        await self._rsync([src, own], conn, config, attempt, _mode(0))

    async def _resume(
        self,
        conn: OpenSshMaster,
        local: Path,
        final: str,
        token: str,
        config: TransportConfig,
        attempt: Tracker,
    ) -> None:
        """rsync into the shared partial from where its checked prefix ends, under its lock."""
        assert attempt.total is not None
        offset, _ = await resume_point(conn, final, local, attempt)
        attempt.start_at(offset)
        wait = rc.lock_wait(config.operation_timeout)
        wrap = rc.wrap_fenced(final, offset, attempt.total, token, wait)
        dst = remote_spec(conn.endpoint, rc.part_name(final))
        await self._rsync([local_arg(local), dst], conn, config, attempt, _mode(offset), wrap)

    async def _pull_into(
        self,
        conn: OpenSshMaster,
        endpoint: SshEndpoint,
        part: Path,
        source: str,
        config: TransportConfig,
        attempt: Tracker,
    ) -> None:
        """Copy ``source`` into the partial, hashing behind rsync; raise on a mismatch."""
        expected: asyncio.Future[str] | None = None
        try:
            if await local_partial_size(part, sys.maxsize):  # its check needs the size first
                await remote_size(conn, source, attempt)
                offset, hasher = await self._local_offset(conn, source, part, attempt)
            else:
                offset, hasher = 0, hashlib.sha256()
                await asyncio.to_thread(part.write_bytes, b"")
            attempt.start_at(offset)
            expected = asyncio.ensure_future(remote_sha(conn, source, attempt))
            argv = [remote_spec(endpoint, source), local_arg(part)]
            # Both modes write the partial in place, in order: hash it right behind.
            copying = self._rsync(argv, conn, config, attempt, _mode(offset))
            await follow_hash(part, offset, hasher, copying)
            want, got = await expected, str(hasher.hexdigest())
        finally:
            if expected is not None:
                expected.cancel()
        if want != got:
            raise mismatch(attempt, want, got)

    async def probe(self, node: NodeConfig, config: TransportConfig) -> str:
        """An rsync listing of the node's home over ssh: proves rsync and ssh both work."""
        attempt = Tracker(node, self.name)
        endpoint = self.endpoint(node)
        with boundary(attempt):
            async with asyncio.timeout(config.operation_timeout):
                listing = [remote_spec(endpoint, ".")]
                ssh = ssh_command(endpoint, config)
                await self._rsync(listing, ssh, config, attempt, ["--list-only"])
        return f"rsync --list-only ok via {endpoint.host}:{endpoint.port}"

    async def _local_offset(
        self, conn: OpenSshMaster, source: str, part: Path, attempt: Tracker
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
        via: OpenSshMaster | Sequence[str],
        config: TransportConfig,
        attempt: Tracker,
        options: Sequence[str] = (),
        wrap: str = "trap '' XFSZ;",
    ) -> None:
        """Run rsync with ``via`` as its remote shell: a session of the attempt's master,
        or (a probe) an ``ssh`` argv of its own."""
        master, ssh = (via, via.ssh_argv()) if isinstance(via, OpenSshMaster) else (None, via)
        argv = [*self.rsync_argv(ssh, config, wrap), *options, "--", *paths]
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
            if master is not None and code in LINK_EXITS:  # the master says why it broke
                text += await master.last_words()
            raise rsync_error(code, text, attempt)


class RsyncConnection(TransportConnection):
    """The OpenSSH master of one rsync transfer: remote commands and rsync both use it."""

    def __init__(
        self,
        transport: RsyncTransport,
        attempt: Tracker,
        endpoint: SshEndpoint,
        conn: OpenSshMaster,
    ) -> None:
        self._transport, self._attempt, self._endpoint = transport, attempt, endpoint
        self._conn = conn

    async def transfer(
        self, direction: Direction, local_path: Path, remote_path: str, config: TransportConfig
    ) -> int:
        """Push or pull over this connection; return the bytes moved."""
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
        await self._conn.close()


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
