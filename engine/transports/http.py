"""The http transport: streaming PUT/GET against the node's HTTP agent, resumable both ways.

Push: ``GET /uploads/P`` tells how much of an earlier upload the agent kept; it is reused only
if its sha256 equals the local prefix's, then ``PUT /files/P`` sends the rest with
``Content-Range`` in two pieces: all but the last MiB (hashed as it is read; the agent keeps a
partial, 202), then the last MiB with the whole file's ``X-Sha256`` (the agent renames only on
a match, else 422), so the file is read once instead of hashed before the upload. Pull: a
``Range`` GET into a local ``.nfpart`` file (written and hashed by two threads behind a
queue), checked against ``GET /sha256/P`` (asked concurrently) before ``os.replace``.
The same class serves the "p2p" port.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import posixpath
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import BadRemotePathError, TransportError
from netfault.engine.transports import remote as rc
from netfault.engine.transports.base import Progress, Transport
from netfault.engine.transports.failures import Tracker, boundary, http_status_error, mismatch
from netfault.engine.transports.integrity import (
    ChunkReader,
    Hasher,
    QueueWriter,
    hash_prefix,
    local_partial_size,
    receiving,
)

READ_CHUNK = 1 << 20
# aiohttp pauses the socket once twice this much is unread; its 64 KiB default paused and
# resumed the socket every few reads of a bulk GET
READ_BUFSIZE = 4 << 20
TAIL_CHUNK = 1 << 20  # sent last, with the X-Sha256 of the whole file


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
        return aiohttp.ClientSession(
            self.base_url(node), headers=headers, timeout=timeout, read_bufsize=READ_BUFSIZE
        )

    @staticmethod
    def _path(node: NodeConfig, remote_path: str) -> str:
        if remote_path.startswith("/"):  # the agent serves its home only
            raise BadRemotePathError(
                f"{node.name}: the HTTP agent cannot reach the absolute path {remote_path!r}; "
                "use a path relative to base_path or another transport",
                node=node.name,
            )
        joined = posixpath.join(node.base_path, remote_path) if node.base_path else remote_path
        return quote(joined, safe="/")

    async def push(
        self,
        node: NodeConfig,
        local_path: Path,
        remote_path: str,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
        """Upload; return the bytes this attempt sent (less than the size when it resumed)."""
        attempt = Tracker(node, self.name, progress)
        path = self._path(node, remote_path)
        with boundary(attempt):
            size = (await asyncio.to_thread(local_path.stat)).st_size
            attempt.total = size
            async with asyncio.timeout(config.operation_timeout), self._session(node, config) as s:
                try:
                    await self._upload(s, path, local_path, attempt)
                except rc.FenceRefused:
                    # The partial changed between our look and the agent's lock (an earlier
                    # upload was still draining into it): look again, once.
                    await self._upload(s, path, local_path, attempt)
        return attempt.sent

    async def _upload(
        self, s: aiohttp.ClientSession, path: str, local_path: Path, attempt: Tracker
    ) -> None:
        assert attempt.total is not None
        size = attempt.total
        offset, hasher = await self._upload_offset(s, path, local_path, attempt)
        attempt.start_at(offset)
        # All but the last chunk first, hashed as it is read and sent (the agent keeps it as
        # a partial, 202); then the last chunk naming the whole file's sha256, which the agent
        # checks before its rename. No second pass over the file.
        tail_at = max(offset, size - TAIL_CHUNK)
        if tail_at > offset:
            await self._put_range(s, path, local_path, offset, tail_at, hasher, attempt)
        tail = await asyncio.to_thread(_read_range, local_path, tail_at, size - tail_at)
        hasher.update(tail)
        await self._put(s, path, tail_at, tail, str(hasher.hexdigest()), attempt)

    async def _upload_offset(
        self, s: aiohttp.ClientSession, path: str, local: Path, attempt: Tracker
    ) -> tuple[int, Hasher]:
        info = await _json(s, "GET", f"/uploads/{path}", attempt)
        partial = int(info.get("partial_size", 0))
        assert attempt.total is not None
        if 0 < partial <= attempt.total:
            hasher = await hash_prefix(local, partial)
            if hasher.hexdigest() == info.get("sha256"):
                return partial, hasher
        return 0, hashlib.sha256()

    async def _put_range(
        self,
        s: aiohttp.ClientSession,
        path: str,
        local: Path,
        start: int,
        end: int,
        hasher: Hasher,
        attempt: Tracker,
    ) -> None:
        """Send bytes ``start``..``end`` of ``local`` (not the end of the file): a 202 partial."""
        assert attempt.total is not None
        headers = {
            "Content-Length": str(end - start),
            "Content-Range": f"bytes {start}-{end - 1}/{attempt.total}",
        }
        body = _file_body(local, start, end, hasher, attempt)
        async with s.put(f"/files/{path}", data=body, headers=headers) as resp:
            await _check(resp, attempt, "PUT")
            kept = (await resp.json()).get("partial_size") if resp.status == 202 else None
        if kept != end:
            raise attempt.fail(
                TransportError, f"PUT /files/{path}: agent kept {kept} bytes, not {end}"
            )

    async def _put(
        self,
        s: aiohttp.ClientSession,
        path: str,
        start: int,
        tail: bytes,
        digest: str,
        attempt: Tracker,
    ) -> None:
        """Send the last ``tail`` bytes (from ``start``) with the whole file's sha256."""
        assert attempt.total is not None
        headers = {"X-Sha256": digest, "Content-Length": str(len(tail))}
        if attempt.total:
            headers["Content-Range"] = f"bytes {start}-{attempt.total - 1}/{attempt.total}"
        async with s.put(f"/files/{path}", data=tail, headers=headers) as resp:
            if resp.status == 422:
                raise mismatch(attempt, digest, str((await resp.json()).get("actual", "?")))
            await _check(resp, attempt, "PUT")
        attempt.advance(len(tail))

    async def pull(
        self,
        node: NodeConfig,
        remote_path: str,
        local_path: Path,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
        """Download; return the bytes this attempt received (less when it resumed)."""
        attempt = Tracker(node, self.name, progress)
        path = self._path(node, remote_path)
        with boundary(attempt):
            async with (
                asyncio.timeout(config.operation_timeout),
                receiving(local_path, rc.lock_wait(config.operation_timeout)) as part,
                self._session(node, config) as s,
            ):
                await self._pull(s, path, part, attempt)
        return attempt.sent

    async def _pull(
        self, s: aiohttp.ClientSession, path: str, part: Path, attempt: Tracker
    ) -> None:
        # The agent hashes the whole file while the body streams (not before it starts).
        full = asyncio.ensure_future(_json(s, "GET", f"/sha256/{path}", attempt))
        try:
            offset, hasher = 0, hashlib.sha256()
            if await asyncio.to_thread(part.exists):
                info = await full
                attempt.total = int(info["size"])
                partial = await local_partial_size(part, attempt.total)
                if partial:
                    prefix, local_hasher = await asyncio.gather(
                        _json(s, "GET", f"/sha256/{path}?length={partial}", attempt),
                        hash_prefix(part, partial),
                    )
                    if prefix.get("sha256") == local_hasher.hexdigest():
                        offset, hasher = partial, local_hasher
            attempt.start_at(offset)
            if not offset or offset < (attempt.total or 0):
                await self._get(s, path, part, offset, hasher, attempt)
            info = await full
        finally:
            if not full.done():
                full.cancel()
            with contextlib.suppress(BaseException):
                await full
        expected, size = str(info["sha256"]), int(info["size"])
        attempt.total = size
        if hasher.hexdigest() != expected:
            raise mismatch(attempt, expected, str(hasher.hexdigest()))

    async def _get(
        self,
        s: aiohttp.ClientSession,
        path: str,
        part: Path,
        offset: int,
        hasher: Hasher,
        attempt: Tracker,
    ) -> None:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        async with s.get(f"/files/{path}", headers=headers) as resp:
            await _check(resp, attempt, "GET")
            if offset and resp.status != 206:
                offset, hasher = 0, hashlib.sha256()  # the server ignored Range: start over
                attempt.start_at(0)
            if attempt.total is None and resp.content_length is not None:
                attempt.total = offset + resp.content_length
            writer = QueueWriter(part, offset, hasher)
            try:
                batch: list[bytes] = []
                batched = 0
                async for data in resp.content.iter_any():
                    batch.append(data)
                    batched += len(data)
                    if batched >= READ_CHUNK:
                        await writer.write(batch)
                        attempt.set_done(writer.written)
                        batch, batched = [], 0
                if batch:
                    await writer.write(batch)
            finally:
                await writer.close()
        attempt.set_done(writer.written)

    async def probe(self, node: NodeConfig, config: TransportConfig) -> str:
        attempt = Tracker(node, self.name)
        with boundary(attempt):
            async with asyncio.timeout(config.http_timeout), self._session(node, config) as s:
                info = await _json(s, "GET", "/health", attempt)
        return f"http {self.base_url(node)}/health: {info.get('status', '?')}"


def _read_range(path: Path, start: int, length: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read(length)
    if len(data) != length:
        raise ValueError(f"{path} changed while it was sent (short read at {start})")
    return data


class _RangeReader(ChunkReader):
    """A ChunkReader that stops at ``end``."""

    def __init__(self, path: Path, start: int, end: int, hasher: Hasher) -> None:
        super().__init__(path, start, hasher, READ_CHUNK)
        self.path = path
        self._left = end - start

    def read(self) -> tuple[int, bytes]:
        if self._left <= 0:
            return 0, b""
        self._chunk = min(self._chunk, self._left)
        raw, data = super().read()
        if not raw:
            raise ValueError(f"{self.path} changed while it was sent (short read)")
        self._left -= raw
        return raw, data


async def _file_body(
    path: Path, start: int, end: int, hasher: Hasher, attempt: Tracker
) -> AsyncIterator[bytes]:
    """Bytes ``start``..``end`` of ``path`` as an upload body, hashed in the reading thread;
    the next chunk is read while one is sent."""
    reader = _RangeReader(path, start, end, hasher)
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


async def _json(s: aiohttp.ClientSession, method: str, url: str, attempt: Tracker) -> Any:
    async with s.request(method, url) as resp:
        await _check(resp, attempt, method)
        return await resp.json()


async def _check(resp: aiohttp.ClientResponse, attempt: Tracker, what: str) -> None:
    if resp.status < 400:
        return
    if resp.status == 416 and what == "PUT":  # the agent's partial is not what we resumed
        raise rc.FenceRefused(rc.CHANGED_EXIT)
    text = (await resp.text())[:300]
    raise http_status_error(resp.status, attempt, f"{what} {resp.url.path}", text)
