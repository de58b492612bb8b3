"""An exec transport's SSH connection, set up as a phase of its own before the transfer.

Failover races this phase (TCP + SSH handshake + authentication) across a node's routes;
the file then moves over the winner's connection only: an OpenSSH master (``sshmux``) when
the ``ssh`` binary is installed, else an asyncssh connection. ``ExecTransport.push``/``pull`` are
the same two phases run back to back.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.transports import remote as rc
from netfault.engine.transports.base import Direction, Progress, TransportConnection
from netfault.engine.transports.failures import Tracker, boundary
from netfault.engine.transports.integrity import receiving
from netfault.engine.transports.sshconn import Remote, ssh_connection
from netfault.engine.transports.sshmux import OpenSshMaster

if TYPE_CHECKING:
    from netfault.engine.transports.execpath import ExecTransport


class ExecConnection(TransportConnection):
    """One authenticated SSH connection of one exec transport, for one transfer."""

    def __init__(
        self,
        transport: ExecTransport,
        tracker: Tracker,
        conn: Remote,
        stack: AsyncExitStack,
    ) -> None:
        self._transport, self._tracker, self._conn, self._stack = transport, tracker, conn, stack

    async def transfer(
        self, direction: Direction, local_path: Path, remote_path: str, config: TransportConfig
    ) -> int:
        """Push or pull over this connection; return the bytes this attempt moved."""
        tracker, impl = self._tracker, self._transport
        path = rc.remote_path_for(tracker.node, remote_path)
        with boundary(tracker):
            async with asyncio.timeout(config.operation_timeout):
                if direction is Direction.PUSH:
                    tracker.total = (await asyncio.to_thread(local_path.stat)).st_size
                    await impl._push(self._conn, local_path, path, tracker, config)
                else:
                    wait = rc.lock_wait(config.operation_timeout)
                    async with receiving(local_path, wait) as part:
                        await impl._pull(self._conn, path, part, tracker, config)
        return tracker.sent

    async def close(self) -> None:
        await self._stack.aclose()


async def open_exec(
    transport: ExecTransport, node: NodeConfig, config: TransportConfig, progress: Progress | None
) -> ExecConnection:
    """Connect and authenticate to the transport's endpoint; raise its typed error if not."""
    tracker = Tracker(node, transport.name, progress)
    stack = AsyncExitStack()
    endpoint = transport.endpoint(node)
    conn: Remote
    if transport.uses_openssh():
        master = await OpenSshMaster.open(endpoint, config, tracker)
        stack.push_async_callback(master.close)
        conn = master
    else:
        with boundary(tracker, connecting=True):
            conn = await stack.enter_async_context(ssh_connection(endpoint, config, tracker))
    return ExecConnection(transport, tracker, conn, stack)


__all__ = ["ExecConnection", "open_exec"]
