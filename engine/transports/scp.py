"""The scp transport: OpenSSH ``scp`` into the ``.nfpart`` name, then sha256 check and rename.

Used by the script API's ``robust_push``/``robust_pull`` (rsync, then scp, then base64); the
control steps (prepare, remote sha256, atomic rename) run on one asyncssh connection.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.transports import remote as rc
from netfault.engine.transports.base import Progress, Transport
from netfault.engine.transports.execpath import commit_remote
from netfault.engine.transports.failures import Tracker, boundary, classify_stderr, mismatch
from netfault.engine.transports.integrity import commit_local, local_part, remove_local, sha256_file
from netfault.engine.transports.rsync import local_arg, remote_spec
from netfault.engine.transports.sshconn import SshEndpoint, run_text, ssh_connection, ssh_options


class ScpTransport(Transport):
    """OpenSSH ``scp`` (SFTP mode) into the ``.nfpart`` name, then sha256 check and rename."""

    name = "scp"

    def available(self, node: NodeConfig) -> bool:
        return shutil.which("scp") is not None

    async def _scp(
        self, endpoint: SshEndpoint, src: str, dst: str, attempt: Tracker, config: TransportConfig
    ) -> None:
        argv = ["scp", "-q", "-P", str(endpoint.port), *ssh_options(endpoint, config), src, dst]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, stderr = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
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
        tmp = rc.part_name(final)
        with boundary(attempt):
            async with (
                asyncio.timeout(config.operation_timeout),
                ssh_connection(ep, config, attempt) as conn,
            ):
                await run_text(conn, rc.cmd_prepare_push(final), attempt, "mkdir")
                digest = await sha256_file(local_path)
                await self._scp(ep, local_arg(local_path), _spec(ep, tmp), attempt, config)
                await commit_remote(conn, tmp, final, digest, attempt)
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
        source, part = rc.remote_path_for(node, remote_path), local_part(local_path)
        with boundary(attempt):
            async with (
                asyncio.timeout(config.operation_timeout),
                ssh_connection(ep, config, attempt) as conn,
            ):
                want = rc.parse_sha(await run_text(conn, rc.cmd_sha(source), attempt, "sha"))
                await self._scp(ep, _spec(ep, source), local_arg(part), attempt, config)
            got = await sha256_file(part)
            if got != want:
                await remove_local(part)
                raise mismatch(attempt, want, got)
            size = (await asyncio.to_thread(part.stat)).st_size
            await commit_local(part, local_path)
        attempt.advance(size)
        return size

    async def probe(self, node: NodeConfig, config: TransportConfig) -> str:
        return "scp is probed through ssh"


def _spec(endpoint: SshEndpoint, path: str) -> str:
    spec = remote_spec(endpoint, path)
    return f"{endpoint.user}@{spec}" if endpoint.user else spec
