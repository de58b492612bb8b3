"""The scp transport: OpenSSH ``scp`` into a partial of its own, then sha256 check and rename.

Used by the script API's ``robust_push``/``robust_pull`` (rsync, then scp, then base64).
scp cannot resume and its SFTP receiver cannot be fenced by a lock, so a push names a partial
of its own (``remote.own_name``) as the destination, which no other writer uses.

One connection per attempt: ``connect`` opens an OpenSSH master (``sshmux``) as a phase of its
own, so failover races it across routes like rsync's, and the control steps (prepare, the
node's sha256, the atomic rename) and ``scp`` itself (its ``ssh`` given the master's session
options) all run as sessions over it.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from pathlib import Path

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import AttemptError
from netfault.engine.transports import children
from netfault.engine.transports import remote as rc
from netfault.engine.transports.base import Direction, Progress, Transport, TransportConnection
from netfault.engine.transports.failures import (
    Tracker,
    boundary,
    mismatch,
    scp_error,
    scp_lost_link,
)
from netfault.engine.transports.fenced import commit_remote, discard_own
from netfault.engine.transports.integrity import receiving, sha256_file
from netfault.engine.transports.rsync import local_arg, remote_spec
from netfault.engine.transports.sshconn import SshEndpoint, run_text
from netfault.engine.transports.sshmux import OpenSshMaster


class ScpTransport(Transport):
    """OpenSSH ``scp`` (SFTP mode) into a partial of its own (``.NAME.nfpart.TOKEN``: scp
    cannot be fenced by a lock nor resume), then sha256 check and rename."""

    name = "scp"
    connects_first = True  # the master is its own phase: failover races it across routes

    def available(self, node: NodeConfig) -> bool:
        return shutil.which("scp") is not None and shutil.which("ssh") is not None

    async def connect(
        self, node: NodeConfig, config: TransportConfig, progress: Progress | None = None
    ) -> TransportConnection:
        """Open the OpenSSH master the control steps and scp both run on."""
        attempt = Tracker(node, self.name, progress)
        master = await OpenSshMaster.open(SshEndpoint.direct(node), config, attempt)
        return ScpConnection(attempt, master)

    async def push(
        self,
        node: NodeConfig,
        local_path: Path,
        remote_path: str,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
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
        return await self._connected(
            Direction.PULL, node, local_path, remote_path, config, progress
        )

    async def probe(self, node: NodeConfig, config: TransportConfig) -> str:
        return "scp is probed through ssh"


class ScpConnection(TransportConnection):
    """The OpenSSH master of one scp transfer: control steps and scp both use it."""

    def __init__(self, attempt: Tracker, master: OpenSshMaster) -> None:
        self._attempt, self._master = attempt, master

    async def transfer(
        self, direction: Direction, local_path: Path, remote_path: str, config: TransportConfig
    ) -> int:
        """Push or pull over this connection; return the bytes moved."""
        attempt = self._attempt
        path = rc.remote_path_for(attempt.node, remote_path)
        with boundary(attempt):
            async with asyncio.timeout(config.operation_timeout):
                if direction is Direction.PUSH:
                    size = await self._push(local_path, path)
                else:
                    wait = rc.lock_wait(config.operation_timeout)
                    async with receiving(local_path, wait) as part:
                        size = await self._pull(path, part)
        attempt.advance(size)
        return size

    async def _push(self, local_path: Path, final: str) -> int:
        master, attempt = self._master, self._attempt
        token = secrets.token_hex(8)
        own = rc.own_name(final, token)
        digest = asyncio.ensure_future(sha256_file(local_path))
        try:
            await run_text(master, rc.cmd_prepare_push(final), attempt, "mkdir")
            try:
                await self._scp(local_arg(local_path), self._spec(own))
                await commit_remote(master, own, final, await digest, attempt)
            except AttemptError:
                await discard_own(master, final, token, shared=False)  # scp cannot resume it
                raise
        finally:
            digest.cancel()
        return (await asyncio.to_thread(local_path.stat)).st_size

    async def _pull(self, source: str, part: Path) -> int:
        master, attempt = self._master, self._attempt
        want = rc.parse_sha(await run_text(master, rc.cmd_sha(source), attempt, "sha"))
        await self._scp(self._spec(source), local_arg(part))
        got = await sha256_file(part)
        if got != want:
            raise mismatch(attempt, want, got)  # receiving() discards the partial
        return (await asyncio.to_thread(part.stat)).st_size

    async def _scp(self, src: str, dst: str) -> None:
        """Run scp as a session of the master; a failure that lost the link takes the
        master's last words (why its connection broke) into its classification."""
        argv = ["scp", "-q", *self._master.session_options(), "--", src, dst]
        proc = await children.spawn(
            argv, stdin=children.DEVNULL, stdout=children.DEVNULL, stderr=children.PIPE
        )
        try:
            _, stderr = await proc.communicate()
        finally:
            await children.reap(proc)
        if proc.returncode != 0:
            text = stderr.decode("utf-8", "replace")
            if scp_lost_link(proc.returncode, text):
                text += await self._master.last_words()
            raise scp_error(proc.returncode, text, self._attempt)

    def _spec(self, path: str) -> str:
        endpoint = self._master.endpoint
        spec = remote_spec(endpoint, path)
        return f"{endpoint.user}@{spec}" if endpoint.user else spec

    async def close(self) -> None:
        await self._master.close()
