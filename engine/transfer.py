"""Script-level transfer helpers, in the architecture guide's shape::

    result = base64_push("file.npz", "host", 22, "/path/file.npz", TransferConfig())
    result = robust_push("file.npz", "host", 22, "/path/file.npz", TransferConfig())
    # robust_*: rsync, then scp, then base64

Push and pull take the same arguments (``local`` is the source of a push, the destination of
a pull). The blocking functions run their own event loop; inside async code await
``transfer_async``. Each call is one ``ClusterTransport.transfer_file`` over the methods (the
engine's failover loop, sha256 check and atomic rename) and returns its ``TransferResult``.
The host has no base path: a relative ``remote_path`` is relative to the login directory, an
absolute one is used as given.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from netfault.engine.config import SCRIPT_METHODS, NodeConfig, TransportConfig
from netfault.engine.results import TransferResult
from netfault.engine.transport import ClusterTransport
from netfault.engine.transports.base import Transport
from netfault.engine.transports.base64 import Base64Transport
from netfault.engine.transports.rsync import RsyncTransport
from netfault.engine.transports.scp import ScpTransport


@dataclass(frozen=True)
class TransferConfig:
    """Who to log in as and how long to wait."""

    ssh_user: str | None = None
    ssh_key: Path | None = None
    known_hosts: Path | None = None
    connect_timeout: float = 30.0
    timeout: float = 180.0
    methods: tuple[str, ...] = SCRIPT_METHODS

    def node(self, host: str, port: int) -> NodeConfig:
        return NodeConfig(
            hostname=host,
            ssh_port=port,
            ssh_user=self.ssh_user,
            ssh_key=self.ssh_key,
            known_hosts=self.known_hosts,
            base_path="",
        )

    def engine(self) -> TransportConfig:
        return TransportConfig(connect_timeout=self.connect_timeout, operation_timeout=self.timeout)


def script_transports() -> dict[str, Transport]:
    return {"rsync": RsyncTransport(), "scp": ScpTransport(), "base64": Base64Transport()}


async def transfer_async(
    direction: str,
    local: str | Path,
    host: str,
    port: int,
    remote_path: str,
    config: TransferConfig | None = None,
    methods: tuple[str, ...] | None = None,
) -> TransferResult:
    """Try each method in turn; the first whose copy verifies wins."""
    config = config or TransferConfig()
    async with ClusterTransport(script_transports(), config=config.engine()) as ct:
        return await ct.transfer_file(
            local,
            remote_path,
            config.node(host, port),
            direction,
            transports=methods or config.methods,
        )


def base64_push(
    local: str | Path, host: str, port: int, remote_path: str, config: TransferConfig | None = None
) -> TransferResult:
    """``cat file | base64 | ssh host 'base64 -d > file'``, chunked and verified."""
    return asyncio.run(transfer_async("push", local, host, port, remote_path, config, ("base64",)))


def base64_pull(
    local: str | Path, host: str, port: int, remote_path: str, config: TransferConfig | None = None
) -> TransferResult:
    return asyncio.run(transfer_async("pull", local, host, port, remote_path, config, ("base64",)))


def robust_push(
    local: str | Path, host: str, port: int, remote_path: str, config: TransferConfig | None = None
) -> TransferResult:
    """rsync, then scp, then base64: the first that arrives intact wins."""
    return asyncio.run(transfer_async("push", local, host, port, remote_path, config))


def robust_pull(
    local: str | Path, host: str, port: int, remote_path: str, config: TransferConfig | None = None
) -> TransferResult:
    return asyncio.run(transfer_async("pull", local, host, port, remote_path, config))
