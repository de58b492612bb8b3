"""The interface every transport implements, and what an attempt reports back.

A transport moves one file to or from one node, or probes that it could. It raises a
``TransportError`` subclass (see ``netfault.engine.errors``) on failure and never leaves
a partial file under the final name: it writes to a temporary name in the destination
directory and renames only after the sha256 of what arrived equals the source's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from netfault.engine.config import NodeConfig, TransportConfig

Progress = Callable[[int, int | None], None]
"""Called with (bytes done so far, total bytes or None) as a transfer moves."""


class Direction(StrEnum):
    PUSH = "push"
    PULL = "pull"


class TransportConnection(ABC):
    """A connection to a node set up for one transfer, before any byte of the file moves."""

    @abstractmethod
    async def transfer(
        self, direction: Direction, local_path: Path, remote_path: str, config: TransportConfig
    ) -> int:
        """Move the file over this connection; return bytes moved."""

    @abstractmethod
    async def close(self) -> None:
        """Drop the connection (also when it was never used)."""


class Transport(ABC):
    """One way of moving files to a node."""

    name: str = "transport"
    # True when ``connect`` sets up the connection as a phase of its own, so failover can
    # race it against another route's before the transfer starts.
    connects_first: bool = False

    async def connect(
        self, node: NodeConfig, config: TransportConfig, progress: Progress | None = None
    ) -> TransportConnection:
        """Set up a connection for one transfer (only when ``connects_first``)."""
        raise NotImplementedError(f"{self.name} has no connect phase of its own")

    async def _connected(
        self,
        direction: Direction,
        node: NodeConfig,
        local_path: Path,
        remote_path: str,
        config: TransportConfig,
        progress: Progress | None,
    ) -> int:
        """A whole transfer through ``connect`` (push/pull of a ``connects_first`` transport)."""
        connection = await self.connect(node, config, progress)
        try:
            return await connection.transfer(direction, local_path, remote_path, config)
        finally:
            await connection.close()

    def available(self, node: NodeConfig) -> bool:
        """Whether this transport is configured for the node (e.g. it has a tailscale_ip)."""
        return True

    @abstractmethod
    async def push(
        self,
        node: NodeConfig,
        local_path: Path,
        remote_path: str,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
        """Copy ``local_path`` to ``remote_path`` (under node.base_path); return bytes sent."""

    @abstractmethod
    async def pull(
        self,
        node: NodeConfig,
        remote_path: str,
        local_path: Path,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
        """Copy ``remote_path`` from the node to ``local_path``; return bytes received."""

    @abstractmethod
    async def probe(self, node: NodeConfig, config: TransportConfig) -> str:
        """Check the transport end to end without moving a file; return a short message."""

    async def transfer(
        self,
        direction: Direction,
        node: NodeConfig,
        local_path: Path,
        remote_path: str,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
        if direction is Direction.PUSH:
            return await self.push(node, local_path, remote_path, config, progress)
        return await self.pull(node, remote_path, local_path, config, progress)

    async def close(self) -> None:
        """Release pooled connections."""
        return None
