"""The scp transport: OpenSSH ``scp`` into a partial of its own, then sha256 check and rename.

Used by the script API's ``robust_push``/``robust_pull`` (rsync, then scp, then base64); the
control steps (prepare, remote sha256, atomic rename) run on one asyncssh connection.
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
from netfault.engine.transports.base import Progress, Transport
from netfault.engine.transports.failures import Tracker, boundary, classify_stderr, mismatch
from netfault.engine.transports.fenced import commit_remote, discard_own
from netfault.engine.transports.integrity import receiving, sha256_file
from netfault.engine.transports.rsync import local_arg, remote_spec
from netfault.engine.transports.sshconn import SshEndpoint, run_text, scp_command, ssh_connection


class ScpTransport(Transport):
    """OpenSSH ``scp`` (SFTP mode) into a partial of its own (``.NAME.nfpart.TOKEN``: scp
    cannot be fenced by a lock nor resume), then sha256 check and rename."""

    name = "scp"

    def available(self, node: NodeConfig) -> bool:
        return shutil.which("scp") is not None

    async def _scp(
        self, endpoint: SshEndpoint, src: str, dst: str, attempt: Tracker, config: TransportConfig
    ) -> None:
        argv = [*scp_command(endpoint, config), src, dst]
        proc = await children.spawn(
            argv, stdin=children.DEVNULL, stdout=children.DEVNULL, stderr=children.PIPE
        )
        try:
            _, stderr = await proc.communicate()
        finally:
            await children.reap(proc)
        if proc.returncode != 0:
            raise classify_stderr(stderr.decode("utf-8", "replace"), attempt, "scp")

    async def push(
        self,
        node: NodeConfig,
        local_path: Path,
        remote_path: str,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
        attempt, ep = Tracker(node, self.name, progress), SshEndpoint.direct(node)
        final = rc.remote_path_for(node, remote_path)
        token = secrets.token_hex(8)
        own = rc.own_name(final, token)
        with boundary(attempt):
            async with (
                asyncio.timeout(config.operation_timeout),
                ssh_connection(ep, config, attempt) as conn,
            ):
                await run_text(conn, rc.cmd_prepare_push(final), attempt, "mkdir")
                digest = await sha256_file(local_path)
                try:
                    await self._scp(ep, local_arg(local_path), _spec(ep, own), attempt, config)
                    await commit_remote(conn, own, final, digest, attempt)
                except AttemptError:
                    await discard_own(conn, final, token, shared=False)  # scp cannot resume it
                    raise
        size = (await asyncio.to_thread(local_path.stat)).st_size
        attempt.advance(size)
        return size

    async def pull(
        self,
        node: NodeConfig,
        remote_path: str,
        local_path: Path,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
        attempt, ep = Tracker(node, self.name, progress), SshEndpoint.direct(node)
        source = rc.remote_path_for(node, remote_path)
        with boundary(attempt):
            async with (
                asyncio.timeout(config.operation_timeout),
                receiving(local_path, rc.lock_wait(config.operation_timeout)) as part,
                ssh_connection(ep, config, attempt) as conn,
            ):
                want = rc.parse_sha(await run_text(conn, rc.cmd_sha(source), attempt, "sha"))
                await self._scp(ep, _spec(ep, source), local_arg(part), attempt, config)
                got = await sha256_file(part)
                if got != want:
                    raise mismatch(attempt, want, got)  # receiving() discards the partial
                size = (await asyncio.to_thread(part.stat)).st_size
        attempt.advance(size)
        return size

    async def probe(self, node: NodeConfig, config: TransportConfig) -> str:
        return "scp is probed through ssh"


def _spec(endpoint: SshEndpoint, path: str) -> str:
    spec = remote_spec(endpoint, path)
    return f"{endpoint.user}@{spec}" if endpoint.user else spec
