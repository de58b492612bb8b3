"""The http transport: streaming PUT/GET against the node's HTTP agent, resumable both ways.

Push: ``GET /uploads/P`` tells how much of an earlier upload the agent kept; it is reused only
if its sha256 equals the local prefix's, then ``PUT /files/P`` sends the rest with
``Content-Range`` and ``X-Sha256`` (the agent renames only on a match, else 422). Pull: a
``Range`` GET into a local ``.nfpart`` file, checked against ``GET /sha256/P`` before
``os.replace``. The same class serves the "p2p" port.
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionReset,
    IntegrityError,
    RemoteStorageError,
    TransportError,
)
from netfault.engine.transports.base import Progress, Transport
from netfault.engine.transports.failures import Attempt, boundary, mismatch
from netfault.engine.transports.integrity import (
    ChunkReader,
    ChunkWriter,
    Hasher,
    commit_local,
    hash_prefix,
    local_part,
    local_partial_size,
    remove_local,
)

READ_CHUNK = 1 << 20
_STATUS_ERRORS: dict[int, type[TransportError]] = {
    401: AuthenticationError,
    403: RemoteStorageError,
    413: RemoteStorageError,
    422: IntegrityError,
    502: ConnectError,
    503: ConnectError,
    504: ConnectError,
    507: RemoteStorageError,
}


class HttpTransport(Transport):
    """Files over the node agent at ``http_scheme://hostname:<port_field>``."""

    def __init__(self, name: str = "http", port_field: str = "http_port") -> None:
        self.name = name
        self.port_field = port_field

    def base_url(self, node: NodeConfig) -> str:
        port = getattr(node, self.port_field)
        host = f"[{node.hostname}]" if ":" in node.hostname else node.hostname
        return f"{node.http_scheme}://{host}:{port}"

    def _session(self, node: NodeConfig, config: TransportConfig) -> aiohttp.ClientSession:
        headers = {"Authorization": f"Bearer {node.http_token}"} if node.http_token else {}
        timeout = aiohttp.ClientTimeout(
            total=config.operation_timeout,
            sock_connect=config.connect_timeout,
            sock_read=max(config.http_timeout, config.connect_timeout),
        )
        return aiohttp.ClientSession(self.base_url(node), headers=headers, timeout=timeout)

    @staticmethod
    def _path(node: NodeConfig, remote_path: str) -> str:
        joined = posixpath.join(node.base_path, remote_path) if node.base_path else remote_path
        return quote(joined.lstrip("/"), safe="/")

    async def push(
        self,
        node: NodeConfig,
        local_path: Path,
        remote_path: str,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
        """Upload; return the bytes this attempt sent (less than the size when it resumed)."""
        attempt = Attempt(node, self.name, progress)
        path = self._path(node, remote_path)
        with _http_boundary(attempt):
            size = (await asyncio.to_thread(local_path.stat)).st_size
            attempt.total = size
            async with asyncio.timeout(config.operation_timeout), self._session(node, config) as s:
                offset, hasher = await self._upload_offset(s, path, local_path, attempt)
                digest = await asyncio.to_thread(_finish_hash, local_path, offset, hasher)
                attempt.done = offset
                await self._put(s, path, local_path, offset, digest, attempt)
        return attempt.sent

    async def _upload_offset(
        self, s: aiohttp.ClientSession, path: str, local: Path, attempt: Attempt
    ) -> tuple[int, Hasher]:
        info = await _json(s, "GET", f"/uploads/{path}", attempt)
        partial = int(info.get("partial_size", 0))
        assert attempt.total is not None
        if 0 < partial <= attempt.total:
            hasher = await hash_prefix(local, partial)
            if hasher.hexdigest() == info.get("sha256"):
                return partial, hasher
        return 0, hashlib.sha256()

    async def _put(
        self,
        s: aiohttp.ClientSession,
        path: str,
        local: Path,
        offset: int,
        digest: str,
        attempt: Attempt,
    ) -> None:
        assert attempt.total is not None
        headers = {"X-Sha256": digest, "Content-Length": str(attempt.total - offset)}
        if attempt.total:
            headers["Content-Range"] = f"bytes {offset}-{attempt.total - 1}/{attempt.total}"
        body = _file_body(local, offset, attempt)
        async with s.put(f"/files/{path}", data=body, headers=headers) as resp:
            if resp.status == 422:
                raise mismatch(attempt, digest, str((await resp.json()).get("actual", "?")))
            await _check(resp, attempt, "PUT")

    async def pull(
        self,
        node: NodeConfig,
        remote_path: str,
        local_path: Path,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
        """Download; return the bytes this attempt received (less when it resumed)."""
        attempt = Attempt(node, self.name, progress)
        path = self._path(node, remote_path)
        part = local_part(local_path)
        with _http_boundary(attempt):
            async with asyncio.timeout(config.operation_timeout), self._session(node, config) as s:
                try:
                    await self._pull(s, path, part, attempt)
                except (IntegrityError, RemoteStorageError):
                    await remove_local(part)
                    raise
            await commit_local(part, local_path)
        return attempt.sent

    async def _pull(
        self, s: aiohttp.ClientSession, path: str, part: Path, attempt: Attempt
    ) -> None:
        info = await _json(s, "GET", f"/sha256/{path}", attempt)
        expected, size = str(info["sha256"]), int(info["size"])
        attempt.total = size
        offset, hasher = 0, hashlib.sha256()
        partial = await local_partial_size(part, size)
        if partial:
            prefix, local_hasher = await asyncio.gather(
                _json(s, "GET", f"/sha256/{path}?length={partial}", attempt),
                hash_prefix(part, partial),
            )
            if prefix.get("sha256") == local_hasher.hexdigest():
                offset, hasher = partial, local_hasher
        attempt.done = offset
        if offset < size or not size:
            await self._get(s, path, part, offset, hasher, attempt)
        if hasher.hexdigest() != expected:
            raise mismatch(attempt, expected, str(hasher.hexdigest()))

    async def _get(
        self,
        s: aiohttp.ClientSession,
        path: str,
        part: Path,
        offset: int,
        hasher: Hasher,
        attempt: Attempt,
    ) -> None:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        async with s.get(f"/files/{path}", headers=headers) as resp:
            await _check(resp, attempt, "GET")
            if offset and resp.status != 206:
                offset, hasher = 0, hashlib.sha256()  # the server ignored Range: start over
                attempt.done = 0
            writer = ChunkWriter(part, offset, hasher)
            try:
                async for block in resp.content.iter_chunked(READ_CHUNK):
                    await writer.write(block)
                    attempt.set_done(writer.written)
            finally:
                await writer.close()
        attempt.set_done(writer.written)

    async def probe(self, node: NodeConfig, config: TransportConfig) -> str:
        attempt = Attempt(node, self.name)
        with _http_boundary(attempt):
            async with asyncio.timeout(config.http_timeout), self._session(node, config) as s:
                info = await _json(s, "GET", "/health", attempt)
        return f"http {self.base_url(node)}/health: {info.get('status', '?')}"


def _finish_hash(path: Path, offset: int, hasher: Hasher) -> str:
    """Continue a prefix hash over the rest of ``path`` (blocking; run in a thread)."""
    reader = ChunkReader(path, offset, hasher.copy(), READ_CHUNK * 4)
    try:
        while reader.read()[0]:
            pass
    finally:
        reader.close()
    return str(reader.hasher.hexdigest())


async def _file_body(path: Path, offset: int, attempt: Attempt) -> AsyncIterator[bytes]:
    """The file from ``offset`` as an upload body, the next chunk read while one is sent."""
    reader = ChunkReader(path, offset, hashlib.sha256(), READ_CHUNK)
    pending = asyncio.ensure_future(asyncio.to_thread(reader.read))
    try:
        while True:
            raw, data = await pending
            if not raw:
                return
            pending = asyncio.ensure_future(asyncio.to_thread(reader.read))
            yield data
            attempt.advance(raw)
    finally:
        pending.cancel()
        reader.close()


async def _json(s: aiohttp.ClientSession, method: str, url: str, attempt: Attempt) -> Any:
    async with s.request(method, url) as resp:
        await _check(resp, attempt, method)
        return await resp.json()


async def _check(resp: aiohttp.ClientResponse, attempt: Attempt, what: str) -> None:
    if resp.status < 400:
        return
    text = (await resp.text())[:300]
    cls = _STATUS_ERRORS.get(resp.status, TransportError)
    raise attempt.fail(cls, f"{what} {resp.url.path}: HTTP {resp.status} {text}")


@contextmanager
def _http_boundary(attempt: Attempt) -> Iterator[None]:
    """aiohttp's errors first (refused, disconnected, bad payload), then the common mapping."""
    with boundary(attempt):
        try:
            yield
        except aiohttp.ClientConnectorError as exc:
            raise attempt.fail(ConnectError, f"cannot connect ({exc})") from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise attempt.fail(ConnectionReset, f"connection lost ({exc})") from exc
