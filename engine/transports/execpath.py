"""File transfer over an SSH exec channel, shared by the ssh, tailscale and base64 transports.

Push: ``cat >> .<name>.nfpart`` (or ``base64 -d >> ...``) fed from local chunks by a writer
fenced by the partial's lock (``remote.cmd_fenced_write``: it re-checks the partial under the
lock, says when to start sending, and moves the whole file to this attempt's own name), then
one command renames that copy only if its sha256 equals the local file's. Pull: ``cat``/``tail
-c +N`` (piped through ``base64``) into a local ``.nfpart`` file, checked against the remote
``sha256sum`` before ``os.replace``. Either way an interrupted transfer leaves its partial
for the next attempt, which reuses it only after the prefix sha256 of both sides match.

With OpenSSH's ``ssh`` binary installed (the default), the whole attempt runs on one OpenSSH
connection (``sshmux``): a push that finds no partial prepares and writes in one session
(``remote.cmd_fresh_write``), and the bytes go through ``ssh`` (``sshpipe``); without it,
every step runs on one asyncssh connection. Remote hashing prefers ``openssl dgst`` over
coreutils' sha256sum (see ``remote.SHA256``).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import AttemptError, IntegrityError, RemoteStorageError, TransportError
from netfault.engine.transports import remote as rc
from netfault.engine.transports import sshpipe
from netfault.engine.transports.base import Direction, Progress, Transport, TransportConnection
from netfault.engine.transports.execconn import open_exec
from netfault.engine.transports.failures import (
    Tracker,
    boundary,
    classify,
    is_writer_exit,
    mismatch,
)
from netfault.engine.transports.fenced import (
    PendingCommit,
    discard,
    discard_own,
    is_ready,
    remote_sha,
    remote_size,
    resume_point,
    text,
    written_error,
)
from netfault.engine.transports.integrity import (
    ChunkReader,
    ChunkWriter,
    Hasher,
    hash_prefix,
    local_partial_size,
)
from netfault.engine.transports.sshconn import (
    PIPE_CHUNK,
    Remote,
    SshEndpoint,
    run_text,
    ssh_connection,
)
from netfault.engine.transports.sshmux import OpenSshMaster

WRITE_BATCH = 1 << 20


@dataclass(frozen=True)
class Codec:
    """How bytes are encoded on the channel: identity, or base64 text."""

    remote_decode: str = ""
    remote_encode: str = ""
    chunk_size: int = 1 << 20
    encode: Callable[[bytes], bytes] | None = None
    decoder: Callable[[], Callable[[bytes], bytes]] | None = None
    finish: Callable[[Callable[[bytes], bytes]], None] | None = None
    # The same codec as local commands, for the OpenSSH data path (empty: identity).
    local_encode: tuple[str, ...] = ()
    local_decode: tuple[str, ...] = ()


class ExecTransport(Transport):
    """Streams files through a remote shell command on one SSH connection per transfer."""

    name = "ssh"
    codec = Codec()
    connects_first = True  # connect() is its own phase: failover races it across routes
    # Move the bulk bytes through OpenSSH's ssh binary when it is installed (see sshpipe);
    # False keeps them on the asyncssh connection.
    openssh = True

    def endpoint(self, node: NodeConfig) -> SshEndpoint:
        return SshEndpoint.direct(node)

    async def push(
        self,
        node: NodeConfig,
        local_path: Path,
        remote_path: str,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
        """Upload; return the bytes this attempt sent (less than the size when it resumed)."""
        way = Direction.PUSH
        return await self._connected(way, node, local_path, remote_path, config, progress)

    async def connect(
        self, node: NodeConfig, config: TransportConfig, progress: Progress | None = None
    ) -> TransportConnection:
        """Open and authenticate the SSH connection a transfer then runs on."""
        return await open_exec(self, node, config, progress)

    def uses_openssh(self) -> bool:
        """Whether an attempt runs on an OpenSSH master (``sshmux``) rather than asyncssh."""
        codec = self.codec
        tools = {*codec.local_encode[:1], *codec.local_decode[:1]}
        return self.openssh and sshpipe.available(*tools)

    async def _push(
        self,
        conn: Remote,
        local: Path,
        final: str,
        attempt: Tracker,
        config: TransportConfig,
    ) -> None:
        token = secrets.token_hex(8)
        pending = PendingCommit(conn, rc.own_name(final, token), final, attempt)
        try:
            hasher = await self._write_fenced(conn, local, final, token, attempt, config)
            await pending.commit(str(hasher.hexdigest()))
        except RemoteStorageError:
            await discard_own(conn, final, token)
            raise
        finally:
            pending.abandon()

    async def _write_fenced(
        self,
        conn: Remote,
        local: Path,
        final: str,
        token: str,
        attempt: Tracker,
        config: TransportConfig,
    ) -> Hasher:
        """Stream the file into the shared partial under its lock, resuming what it holds
        (once more if it changed before the lock was ours); into this attempt's own partial
        when a previous writer keeps the lock. Returns the hasher fed with the whole file."""
        assert attempt.total is not None
        decode, wait = self.codec.remote_decode, rc.lock_wait(config.operation_timeout)
        try:  # no partial to resume is the common case: prepare and write in one session
            hasher = hashlib.sha256()
            command = rc.cmd_fresh_write(final, token, attempt.total, wait, decode)
            await self._stream(conn, command, local, 0, hasher, attempt, config)
            return hasher
        except rc.FenceRefused as refused:
            if refused.code == rc.BUSY_EXIT:
                return await self._write_private(conn, local, final, token, attempt, config)
        for _ in range(2):
            offset, hasher = await resume_point(conn, final, local, attempt)
            prefix = str(hasher.copy().hexdigest())
            command = rc.cmd_fenced_write(final, token, offset, prefix, attempt.total, wait, decode)
            try:
                await self._stream(conn, command, local, offset, hasher, attempt, config)
                return hasher
            except rc.FenceRefused as refused:
                if refused.code == rc.BUSY_EXIT:
                    break
        return await self._write_private(conn, local, final, token, attempt, config)

    async def _write_private(
        self,
        conn: Remote,
        local: Path,
        final: str,
        token: str,
        attempt: Tracker,
        config: TransportConfig,
    ) -> Hasher:
        """Write a fresh copy into this attempt's own partial (the shared one stays locked)."""
        assert attempt.total is not None
        hasher = hashlib.sha256()
        command = rc.cmd_private_write(final, token, attempt.total, self.codec.remote_decode)
        await self._stream(conn, command, local, 0, hasher, attempt, config)
        return hasher

    async def _stream(
        self,
        conn: Remote,
        command: str,
        local: Path,
        offset: int,
        hasher: Hasher,
        attempt: Tracker,
        config: TransportConfig,
    ) -> None:
        """Feed ``local`` from ``offset`` into the remote ``command``'s stdin."""
        attempt.start_at(offset)
        if isinstance(conn, OpenSshMaster):
            encode = self.codec.local_encode
            await sshpipe.push_file(conn, command, local, offset, hasher, encode, attempt)
        else:
            assert isinstance(conn, asyncssh.SSHClientConnection)
            await self._upload(conn, command, local, offset, hasher, attempt)

    async def _upload(
        self,
        conn: asyncssh.SSHClientConnection,
        command: str,
        local: Path,
        offset: int,
        hasher: Hasher,
        attempt: Tracker,
    ) -> None:
        proc = await conn.create_process(command, encoding=None)
        reader = ChunkReader(local, offset, hasher, self.codec.chunk_size, self.codec.encode)

        async def send(raw: int, data: bytes) -> None:
            proc.stdin.write(data)
            await proc.stdin.drain()
            attempt.advance(raw)

        echo: asyncio.Future[None] | None = None
        try:
            try:
                if is_ready(await proc.stdout.readline()):
                    echo = asyncio.ensure_future(discard(proc.stdout))
                    await reader.pump(send)
                else:
                    reader.close()  # the writer refused: its exit status says why
                proc.stdin.write_eof()
            except (OSError, asyncssh.Error) as exc:
                raise await _remote_failure(proc, exc, attempt, "upload") from exc
            result = await proc.wait()
        finally:
            if echo is not None:
                echo.cancel()
            proc.close()
        if result.exit_status != 0:
            raise _exit_error(result, attempt, "upload")

    async def pull(
        self,
        node: NodeConfig,
        remote_path: str,
        local_path: Path,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
        """Download; return the bytes this attempt received (less when it resumed)."""
        way = Direction.PULL
        return await self._connected(way, node, local_path, remote_path, config, progress)

    async def _pull(
        self,
        conn: Remote,
        source: str,
        part: Path,
        attempt: Tracker,
        config: TransportConfig,
    ) -> None:
        checking: asyncio.Future[str] | None = None
        try:
            offset, hasher = 0, hashlib.sha256()
            if await local_partial_size(part, sys.maxsize):  # its check needs the size first
                size = await remote_size(conn, source, attempt)
                offset, hasher = await self._local_resume_point(conn, source, part, size, attempt)
            attempt.start_at(offset)
            checking = asyncio.ensure_future(remote_sha(conn, source, attempt))
            if isinstance(conn, OpenSshMaster):
                command = rc.cmd_read(source, offset, self.codec.remote_encode)
                decode = self.codec.local_decode
                await sshpipe.pull_file(conn, command, part, offset, hasher, decode, attempt)
            else:
                assert isinstance(conn, asyncssh.SSHClientConnection)
                await self._download(conn, source, part, offset, hasher, attempt)
            expected = await checking
        finally:
            if checking is not None:
                checking.cancel()
        if expected != hasher.hexdigest():
            raise mismatch(attempt, expected, str(hasher.hexdigest()))

    async def _local_resume_point(
        self,
        conn: Remote,
        source: str,
        part: Path,
        size: int,
        attempt: Tracker,
    ) -> tuple[int, Hasher]:
        partial = await local_partial_size(part, size)
        if partial:
            remote_sha, local_hasher = await asyncio.gather(
                run_text(conn, rc.cmd_prefix_sha(source, partial), attempt, "sha256sum"),
                hash_prefix(part, partial),
            )
            if rc.parse_sha(remote_sha) == local_hasher.hexdigest():
                return partial, local_hasher
        return 0, hashlib.sha256()

    async def _download(
        self,
        conn: asyncssh.SSHClientConnection,
        source: str,
        part: Path,
        offset: int,
        hasher: Hasher,
        attempt: Tracker,
    ) -> None:
        decode = self.codec.decoder() if self.codec.decoder else None
        command = rc.cmd_read(source, offset, self.codec.remote_encode)
        writer = ChunkWriter(part, offset, hasher, decode)
        proc = await conn.create_process(command, encoding=None)
        try:
            await _drain_stdout(proc, writer, attempt)
            result = await proc.wait()
        except ValueError as exc:  # binascii.Error: the text arrived altered
            raise attempt.fail(IntegrityError, f"undecodable stream ({exc})") from exc
        finally:
            proc.close()
            await writer.close()
        attempt.set_done(writer.written)
        if result.exit_status != 0:
            raise _exit_error(result, attempt, "download")
        if decode is not None and self.codec.finish is not None:
            self.codec.finish(decode)

    async def probe(self, node: NodeConfig, config: TransportConfig) -> str:
        attempt = Tracker(node, self.name)
        with boundary(attempt):
            async with (
                asyncio.timeout(config.operation_timeout),
                ssh_connection(self.endpoint(node), config, attempt) as conn,
            ):
                out = await run_text(conn, "echo netfault-ok", attempt, "echo")
        if out.strip() != "netfault-ok":
            raise attempt.fail(TransportError, f"unexpected echo output {out[:80]!r}")
        return f"ssh echo ok via {self.endpoint(node).host}:{self.endpoint(node).port}"


async def _drain_stdout(
    proc: asyncssh.SSHClientProcess[bytes], writer: ChunkWriter, attempt: Tracker
) -> None:
    """Batch channel reads into ~1 MiB writes done in a thread, one write in flight."""
    batch: list[bytes] = []
    batched = 0
    while True:
        data = await proc.stdout.read(PIPE_CHUNK)
        if data:
            batch.append(data)
            batched += len(data)
        if batched >= WRITE_BATCH or (not data and batch):
            await writer.write(b"".join(batch))
            attempt.set_done(writer.written)
            batch, batched = [], 0
        if not data:
            return


async def _remote_failure(
    proc: asyncssh.SSHClientProcess[bytes], exc: Exception, attempt: Tracker, what: str
) -> AttemptError:
    """Why the remote command stopped reading: its stderr if it said, else the channel error."""
    try:
        async with asyncio.timeout(2.0):
            result = await proc.wait()
    except (TimeoutError, OSError, asyncssh.Error):
        return classify(exc, attempt)
    stderr = text(result.stderr)
    if stderr.strip() or is_writer_exit(result.exit_status):
        return written_error(result.exit_status, stderr, attempt, what)
    return classify(exc, attempt)


def _exit_error(result: asyncssh.SSHCompletedProcess, attempt: Tracker, what: str) -> AttemptError:
    """The typed error of a failed remote command (FenceRefused when a fence stopped it)."""
    stderr = text(result.stderr).strip()
    return written_error(result.exit_status, stderr, attempt, what)
