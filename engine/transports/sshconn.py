"""asyncssh connections to a node, with the engine's timeouts and typed errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import asyncssh

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import MissingKeyError
from netfault.engine.transports.failures import Tracker, boundary, exit_error

# AES-GCM runs on AES-NI here and beats chacha20 (platform notes); keep the rest as fallbacks.
PREFERRED_CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
)
PIPE_CHUNK = 256 * 1024
SSH_CIPHERS = "^aes128-gcm@openssh.com"


class Remote(Protocol):
    """A connection remote commands run on: asyncssh's, or an OpenSSH master (``sshmux``)."""

    async def run(self, command: str, *, check: bool = ...) -> asyncssh.SSHCompletedProcess: ...


@dataclass(frozen=True)
class SshEndpoint:
    """Where and as whom to open an SSH connection."""

    host: str
    port: int
    user: str | None = None
    key: Path | None = None
    known_hosts: Path | None = None

    @classmethod
    def direct(cls, node: NodeConfig) -> SshEndpoint:
        return cls(node.hostname, node.ssh_port, node.ssh_user, node.ssh_key, node.known_hosts)

    @classmethod
    def tailscale(cls, node: NodeConfig) -> SshEndpoint:
        if node.tailscale_ip is None:
            raise ValueError(f"{node.name} has no tailscale_ip")
        port = node.tailscale_ssh_port or node.ssh_port
        return cls(node.tailscale_ip, port, node.ssh_user, node.ssh_key, node.known_hosts)


def connect_options(endpoint: SshEndpoint, config: TransportConfig) -> dict[str, Any]:
    options: dict[str, Any] = {
        "port": endpoint.port,
        "known_hosts": str(endpoint.known_hosts) if endpoint.known_hosts else (),
        "connect_timeout": config.connect_timeout,
        "login_timeout": config.connect_timeout,
        "encryption_algs": list(PREFERRED_CIPHERS),
        "keepalive_interval": 0,
    }
    if endpoint.known_hosts is None:
        options.pop("known_hosts")  # asyncssh falls back to ~/.ssh/known_hosts
    if endpoint.user:
        options["username"] = endpoint.user
    if endpoint.key is not None:
        options["client_keys"] = [str(endpoint.key)]
        options["agent_path"] = None
    return options


async def check_key_files(endpoint: SshEndpoint, attempt: Tracker) -> None:
    """MissingKeyError (a request error) when the endpoint's key or known_hosts is missing."""
    for what, path in (("ssh_key", endpoint.key), ("known_hosts", endpoint.known_hosts)):
        if path is not None and not await asyncio.to_thread(path.is_file):
            raise attempt.fail(MissingKeyError, f"{what} file {path} does not exist; fix {what}")


@asynccontextmanager
async def ssh_connection(
    endpoint: SshEndpoint, config: TransportConfig, attempt: Tracker
) -> AsyncIterator[asyncssh.SSHClientConnection]:
    """An authenticated connection, closed on exit; failures raise typed errors."""
    await check_key_files(endpoint, attempt)
    with boundary(attempt, connecting=True):
        async with asyncio.timeout(config.connect_timeout):
            conn = await asyncssh.connect(endpoint.host, **connect_options(endpoint, config))
    try:
        yield conn
    finally:
        conn.abort()  # nothing left to flush; don't wait for the peer's close


async def run_text(conn: Remote, command: str, attempt: Tracker, what: str) -> str:
    """Run a short remote command; return its stdout or raise its classified error."""
    with boundary(attempt):
        result = await conn.run(command, check=False)
    stdout = result.stdout if isinstance(result.stdout, str) else ""
    if result.exit_status != 0:
        stderr = result.stderr if isinstance(result.stderr, str) else ""
        raise exit_error(stderr, result.exit_status, attempt, what)
    return stdout


def ssh_options(endpoint: SshEndpoint, config: TransportConfig) -> list[str]:
    """OpenSSH client options for this endpoint: batch mode, strict host key checking."""
    argv = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    argv += ["-o", f"Ciphers={SSH_CIPHERS}"]
    argv += ["-o", f"ConnectTimeout={max(1, int(config.connect_timeout))}"]
    if endpoint.key is not None:
        argv += ["-i", str(endpoint.key), "-o", "IdentitiesOnly=yes"]
    if endpoint.known_hosts is not None:
        argv += ["-o", f"UserKnownHostsFile={endpoint.known_hosts}"]
    return argv


def ssh_command(endpoint: SshEndpoint, config: TransportConfig) -> list[str]:
    """The OpenSSH ``ssh`` argv for this endpoint, without host and command (rsync's ``-e``)."""
    user = ["-l", endpoint.user] if endpoint.user else []
    return ["ssh", "-p", str(endpoint.port), *user, *ssh_options(endpoint, config)]
