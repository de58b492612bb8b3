"""Script-level transfer helpers, in the architecture guide's shape::

    result = base64_push("file.npz", "host", 22, "/path/file.npz", TransferConfig())
    result = robust_push("file.npz", "host", 22, "/path/file.npz", TransferConfig())
    # robust_*: rsync, then scp, then base64

Push and pull take the same arguments (``local`` is the source of a push, the destination of
a pull). The blocking functions run their own event loop; inside async code await the
``transfer_async``. Every method verifies sha256 and renames atomically, like the engine's
transports; a relative ``remote_path`` is relative to the login directory.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netfault.engine.config import NodeConfig
from netfault.engine.config import TransportConfig as EngineConfig
from netfault.engine.errors import TransportError
from netfault.engine.transports import children
from netfault.engine.transports import remote as rc
from netfault.engine.transports.base import Transport
from netfault.engine.transports.base64 import Base64Transport
from netfault.engine.transports.failures import Attempt, boundary, classify_stderr, mismatch
from netfault.engine.transports.fenced import commit_remote, discard_own
from netfault.engine.transports.integrity import receiving, sha256_file
from netfault.engine.transports.rsync import RsyncTransport, local_arg, remote_spec
from netfault.engine.transports.sshconn import SshEndpoint, run_text, scp_command, ssh_connection

METHODS = ("rsync", "scp", "base64")


@dataclass(frozen=True)
class TransferConfig:
    """Who to log in as and how long to wait."""

    ssh_user: str | None = None
    ssh_key: Path | None = None
    known_hosts: Path | None = None
    connect_timeout: float = 30.0
    timeout: float = 180.0
    methods: tuple[str, ...] = METHODS

    def node(self, host: str, port: int) -> NodeConfig:
        return NodeConfig(
            hostname=host,
            ssh_port=port,
            ssh_user=self.ssh_user,
            ssh_key=self.ssh_key,
            known_hosts=self.known_hosts,
            base_path="",
        )

    def engine(self) -> EngineConfig:
        return EngineConfig(connect_timeout=self.connect_timeout, operation_timeout=self.timeout)


@dataclass
class TransferResult:
    success: bool
    method: str | None
    bytes_transferred: int = 0
    duration_s: float = 0.0
    error: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


class ScpTransport(Transport):
    """OpenSSH ``scp`` (SFTP mode) into a partial of its own (``.NAME.nfpart.TOKEN``: scp
    cannot be fenced by a lock nor resume), then sha256 check and rename."""

    name = "scp"

    def available(self, node: NodeConfig) -> bool:
        return shutil.which("scp") is not None

    async def _scp(
        self, endpoint: SshEndpoint, src: str, dst: str, attempt: Attempt, config: EngineConfig
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
        config: EngineConfig,
        progress: Any = None,
    ) -> int:
        attempt, ep = Attempt(node, self.name, progress), SshEndpoint.direct(node)
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
                except TransportError:
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
        config: EngineConfig,
        progress: Any = None,
    ) -> int:
        attempt, ep = Attempt(node, self.name, progress), SshEndpoint.direct(node)
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

    async def probe(self, node: NodeConfig, config: EngineConfig) -> str:
        return "scp is probed through ssh"


def _spec(endpoint: SshEndpoint, path: str) -> str:
    spec = remote_spec(endpoint, path)
    return f"{endpoint.user}@{spec}" if endpoint.user else spec


_TRANSPORTS: dict[str, type[Transport]] = {
    "rsync": RsyncTransport,
    "scp": ScpTransport,
    "base64": Base64Transport,
}


async def _attempt(
    method: str,
    direction: str,
    local: str | Path,
    host: str,
    port: int,
    remote_path: str,
    config: TransferConfig,
) -> int:
    transport = _TRANSPORTS[method]()
    node, engine = config.node(host, port), config.engine()
    if direction == "push":
        return await transport.push(node, Path(local), remote_path, engine)
    return await transport.pull(node, remote_path, Path(local), engine)


async def transfer_async(
    direction: str,
    local: str | Path,
    host: str,
    port: int,
    remote_path: str,
    config: TransferConfig | None = None,
    methods: tuple[str, ...] | None = None,
) -> TransferResult:
    """Try each method in turn; the first that verifies wins."""
    config = config or TransferConfig()
    started = time.monotonic()
    errors: dict[str, str] = {}
    for method in methods or config.methods:
        if not _TRANSPORTS[method]().available(config.node(host, port)):
            errors[method] = "not installed"
            continue
        try:
            moved = await _attempt(method, direction, local, host, port, remote_path, config)
        except TransportError as exc:
            errors[method] = str(exc)
            continue
        return TransferResult(True, method, moved, time.monotonic() - started, None, errors)
    last = next(reversed(errors.values()), "no method available")
    return TransferResult(False, None, 0, time.monotonic() - started, last, errors)


def _run(coro: Coroutine[Any, Any, TransferResult]) -> TransferResult:
    return asyncio.run(coro)


def base64_push(
    local: str | Path, host: str, port: int, remote_path: str, config: TransferConfig | None = None
) -> TransferResult:
    """``cat file | base64 | ssh host 'base64 -d > file'``, chunked and verified."""
    return _run(transfer_async("push", local, host, port, remote_path, config, ("base64",)))


def base64_pull(
    local: str | Path, host: str, port: int, remote_path: str, config: TransferConfig | None = None
) -> TransferResult:
    return _run(transfer_async("pull", local, host, port, remote_path, config, ("base64",)))


def robust_push(
    local: str | Path, host: str, port: int, remote_path: str, config: TransferConfig | None = None
) -> TransferResult:
    """rsync, then scp, then base64: the first that arrives intact wins."""
    return _run(transfer_async("push", local, host, port, remote_path, config))


def robust_pull(
    local: str | Path, host: str, port: int, remote_path: str, config: TransferConfig | None = None
) -> TransferResult:
    return _run(transfer_async("pull", local, host, port, remote_path, config))
