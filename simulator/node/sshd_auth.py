"""Which keys an OpenSSH node's sshd accepts, decided per connection by the node itself.

sshd reads ``authorized_keys`` on every login, so ``auth_refused`` alone is a file emptied
and refilled. Counting connections (``for_connections``) needs more: the connection that uses
the last count must still be refused while the next one is let in, and sshd accepts them in
processes of its own. So while ``auth_refused`` is on, the file is empty and sshd asks its
``AuthorizedKeysCommand`` (:mod:`~netfault.simulator.node.auth_query`), which asks this
server over a unix socket in the node's sandbox, naming the connection (its sshd process). The
first question of a connection is its admission (``NodeFaults.admit("ssh")``) and decides
it; later questions of the same connection (a key query, then its signature) get the same
answer. Connections that never reach authentication are not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from netfault.simulator.node import auth_query
from netfault.simulator.node.faults import NodeFaults

# sshd runs the command only when it and its directories are root-owned and not writable by
# others: the system's interpreter, not a virtualenv's
SYSTEM_PYTHON = Path("/usr/bin/python3")
REMEMBERED = 4096  # connections whose answer is kept (a connection asks at most a few times)
READ_TIMEOUT = 10.0


def command_available() -> bool:
    """Whether sshd would run the command: a root-owned system Python 3."""
    try:
        info = SYSTEM_PYTHON.resolve(strict=True).stat()
    except OSError:
        return False
    return info.st_uid == 0 and not info.st_mode & 0o022


def config_lines(socket_path: Path, user: str) -> list[str]:
    """The sshd_config lines that make sshd ask the node."""
    script = auth_query.__file__
    return [
        f"AuthorizedKeysCommand {SYSTEM_PYTHON} -I {script} {socket_path}",
        f"AuthorizedKeysCommandUser {user}",
    ]


class AuthDecisions:
    """The unix socket server answering the node's AuthorizedKeysCommand."""

    def __init__(self, path: Path, faults: NodeFaults, keys: Callable[[], str]) -> None:
        self.path = path
        self.faults = faults
        self._keys = keys
        self._answers: OrderedDict[str, bool] = OrderedDict()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        if self._server is None:
            self.path.unlink(missing_ok=True)
            with auth_query.socket_address(str(self.path)) as address:
                self._server = await asyncio.start_unix_server(self._handle, path=address)
            os.chmod(self.path, 0o600)

    def allowed(self, connection: str) -> bool:
        """Whether ``connection`` may log in; its first question admits it."""
        if connection not in self._answers:
            self._answers[connection] = not self.faults.admit("ssh").auth_refused
            while len(self._answers) > REMEMBERED:
                self._answers.popitem(last=False)
        return self._answers[connection]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                line = await reader.readline()
            connection = line.decode("utf-8", "replace").strip()
            if connection and self.allowed(connection):
                writer.write(self._keys().encode())
                await writer.drain()
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        self._answers.clear()
        self.path.unlink(missing_ok=True)
