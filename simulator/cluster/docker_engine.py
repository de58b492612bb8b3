"""The Docker engine side of DockerCluster: the lazily imported SDK, published ports, secrets.

Blocking calls (the docker SDK is synchronous); callers run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import os
import tarfile
from typing import Any

import aiohttp

from netfault.simulator.cluster.compose import LOOPBACK, NODE_UID

ENGINE_TIMEOUT = 10.0


class DockerBackendError(RuntimeError):
    """The Docker backend cannot run: SDK missing, no engine, image missing, start failed."""


def connect_engine(timeout: float = ENGINE_TIMEOUT) -> Any:
    """A docker SDK client whose engine answered a ping (blocking, bounded by ``timeout``)."""
    try:
        docker = importlib.import_module("docker")
    except ImportError as exc:
        raise DockerBackendError(
            "the Docker backend needs the docker SDK: pip install 'netfault[docker]'"
        ) from exc
    where = os.environ.get("DOCKER_HOST", "the default socket (unix:///var/run/docker.sock)")
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        raise DockerBackendError(
            f"no Docker engine answers at {where} ({exc}); start Docker or set DOCKER_HOST, "
            "or use the local backend"
        ) from exc
    return client


def secrets_tar(files: dict[str, bytes]) -> bytes:
    """A tar of ``files`` owned by the image's ``netfault`` user, for put_archive."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid = len(data), NODE_UID, NODE_UID
            info.mode = 0o600 if name.startswith("ssh_host_") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def host_port(container: Any, port: int) -> int:
    """The 127.0.0.1 port Docker published for ``port``/tcp of a started container."""
    bindings = container.ports.get(f"{port}/tcp") or []
    for binding in bindings:
        if binding.get("HostIp") in (LOOPBACK, "", "0.0.0.0"):
            return int(binding["HostPort"])
    raise DockerBackendError(f"{container.name}: port {port}/tcp is not published")


async def probe_until_up(session: aiohttp.ClientSession, container: Any, url: str) -> None:
    """Return once ``url`` answers 200; fail early if the container exits."""
    # A container's servers tell nobody they listen; probing is the only signal there is.
    delay = 0.05
    for _attempt in range(200):
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                if resp.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.to_thread(container.reload)
        if container.status in ("exited", "dead"):
            logs = await asyncio.to_thread(container.logs, tail=20)
            raise DockerBackendError(f"{container.name} exited: {logs.decode(errors='replace')}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)
    raise DockerBackendError(f"{container.name}: {url} did not answer; see `docker logs`")
