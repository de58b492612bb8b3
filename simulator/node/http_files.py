"""File endpoints of the fake node's HTTP agent: GET with Range, resumable PUT, sha256.

Upload protocol (all paths relative to the node's home, under ``/files/``):

* ``PUT /files/P`` streams the body into ``.NAME.netfault-partial`` beside P, then -- only
  once the whole body arrived and, when an ``X-Sha256`` header was sent, its sha256 matches --
  renames it atomically to P: 201 ``{path, size, sha256}``. A mismatch answers 422 and deletes
  the partial file; P (and any older file there) is left untouched.
* ``PUT`` with ``Content-Range: bytes START-END/TOTAL`` appends to the partial file. START must
  be 0 (restart) or the partial file's current size, otherwise 416 ``{partial_size}``. While
  fewer than TOTAL bytes have arrived the answer is 202 ``{partial_size}``; the PUT that
  completes TOTAL bytes is verified and renamed as above.
* A PUT that is cut off keeps what arrived in the partial file. ``GET /uploads/P`` answers
  ``{path, partial_size, sha256}`` of it (size 0 and the empty hash when there is none), and
  ``DELETE /uploads/P`` discards it.
* ``GET /sha256/P[?length=N]``: ``{sha256, size, length}`` of P's first N bytes (all of it by
  default); ``size`` is the whole file's size.
* The sha256 of a partial file is carried over from one PUT to the next (while its size,
  mtime and inode are unchanged), so a client may send the body in pieces and name the
  whole file's ``X-Sha256`` on the last one without the agent reading the file again.
* Whole-file digests are cached (:class:`DigestCache`), as a real agent would: filled when a
  PUT completes (the agent hashed the body as it arrived) or by the first ``GET /sha256/P``,
  and used only while the file's device, inode, size, mtime and ctime are all unchanged, so
  any write, truncate or rename over P makes the next request hash the file again.
* Disk quota exceeded: 507 and the partial file is deleted. Escaping paths: 403, nothing
  written.
* Fencing (:mod:`partials`): a PUT writes the partial file only while it holds its exclusive
  ``flock``, the same lock the engine's shell writers take, and it re-reads the partial's size
  under that lock. A PUT that cannot get the lock within ``LOCK_WAIT`` seconds (an earlier
  upload is still draining bytes queued in the network) gets 423 (Locked) and writes nothing.
* A completed PUT removes the partials other writers left for the same name (when no live
  writer holds them); partials of aborted uploads older than ``partials.PARTIAL_MAX_AGE``
  (a day) are removed by a sweep that PUTs run at most once a minute.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from pathlib import Path
from typing import Any, BinaryIO

from aiohttp import web

from netfault.simulator.node import partials
from netfault.simulator.node.digests import (
    DigestCache,
    Stamp,
    hash_stable,
    sha256_file,
    stat_stamp,
)
from netfault.simulator.node.faults import NodeFaults, quota_report
from netfault.simulator.node.partials import SWEEP_EVERY, open_locked
from netfault.simulator.node.paths import disk_usage, file_size, partial_path, resolve_in_home

WRITE_CHUNK = 1024 * 1024
LOCK_WAIT = 5.0  # how long a PUT waits for an earlier writer of the same partial
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)$")


class QuotaExceeded(Exception):
    """The node's disk quota would be exceeded by this upload."""


def json_error(status: int, message: str, **extra: object) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _parse_content_range(value: str | None) -> tuple[int, int | None]:
    if value is None:
        return 0, None
    match = _CONTENT_RANGE.match(value.strip())
    if match is None:
        raise web.HTTPBadRequest(text=f"bad Content-Range {value!r}; want bytes START-END/TOTAL")
    start, end, total = (int(g) for g in match.groups())
    if end < start or end >= total:
        raise web.HTTPBadRequest(text=f"inconsistent Content-Range {value!r}")
    return start, total


class FileEndpoints:
    """Handlers for /files, /uploads and /sha256, confined to ``home``."""

    def __init__(self, home: Path, faults: NodeFaults) -> None:
        self.home = home
        self.faults = faults
        self._locks: dict[Path, asyncio.Lock] = {}
        # partial file -> (its stat stamp, sha256 object fed with all of it)
        self._running: dict[Path, tuple[Stamp | None, Any]] = {}
        self.digests = DigestCache()
        self._swept = -SWEEP_EVERY

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/files/{path:.+}", self.get_file),
            web.put("/files/{path:.+}", self.put_file),
            web.get("/uploads/{path:.+}", self.get_upload),
            web.delete("/uploads/{path:.+}", self.delete_upload),
            web.get("/sha256/{path:.+}", self.get_sha256),
        ]

    def _target(self, request: web.Request) -> Path:
        return resolve_in_home(self.home, request.match_info["path"])

    async def get_file(self, request: web.Request) -> web.StreamResponse:
        path = self._target(request)
        if not path.is_file():
            return json_error(404, f"no file {request.match_info['path']!r} on this node")
        return web.FileResponse(path, chunk_size=256 * 1024)

    async def get_sha256(self, request: web.Request) -> web.Response:
        path = self._target(request)
        if not path.is_file():
            return json_error(404, f"no file {request.match_info['path']!r} on this node")
        length_arg = request.query.get("length")
        if length_arg is not None and not length_arg.isdigit():
            return json_error(400, "length must be a non-negative integer")
        length = int(length_arg) if length_arg is not None else None
        cached = self.digests.get(path)
        if cached is not None and (length is None or length >= cached[1]):
            digest, size = cached
            return web.json_response({"sha256": digest, "size": size, "length": size})
        if length is None:
            digest, hashed, stamp = await asyncio.to_thread(hash_stable, path)
            self.digests.put(path, stamp, digest)
        else:
            digest, hashed = await asyncio.to_thread(sha256_file, path, length)
        size = path.stat().st_size
        return web.json_response({"sha256": digest, "size": size, "length": hashed})

    async def get_upload(self, request: web.Request) -> web.Response:
        partial = partial_path(self._target(request))
        size, digest = 0, hashlib.sha256().hexdigest()
        if partial.is_file():
            digest, size = await asyncio.to_thread(sha256_file, partial)
        return web.json_response(
            {"path": request.match_info["path"], "partial_size": size, "sha256": digest}
        )

    async def delete_upload(self, request: web.Request) -> web.Response:
        partial = partial_path(self._target(request))
        self._running.pop(partial, None)
        partial.unlink(missing_ok=True)
        return web.json_response({"path": request.match_info["path"], "partial_size": 0})

    async def put_file(self, request: web.Request) -> web.Response:
        final = self._target(request)
        if final.is_dir():
            return json_error(409, f"{request.match_info['path']!r} is a directory")
        start, total = _parse_content_range(request.headers.get("Content-Range"))
        await self._expire_partials()
        lock = self._locks.setdefault(final, asyncio.Lock())
        try:
            async with asyncio.timeout(LOCK_WAIT):
                await lock.acquire()
        except TimeoutError:
            return _busy(request)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fh = await asyncio.to_thread(open_locked, partial_path(final), LOCK_WAIT)
            if fh is None:
                return _busy(request)
            try:
                return await self._put_locked(request, fh, final, start, total)
            finally:
                await asyncio.to_thread(partials.close_locked, fh, partial_path(final))
        finally:
            lock.release()

    async def _expire_partials(self) -> None:
        now = time.monotonic()
        if now - self._swept >= SWEEP_EVERY:
            self._swept = now
            await asyncio.to_thread(partials.expire, self.home)

    async def _put_locked(
        self, request: web.Request, fh: BinaryIO, final: Path, start: int, total: int | None
    ) -> web.Response:
        partial = partial_path(final)
        current = os.fstat(fh.fileno()).st_size
        if start not in (0, current):
            return json_error(
                416, "upload must restart at 0 or resume at the partial size", partial_size=current
            )
        running = self._running.pop(partial, None)
        hasher = None
        if start == 0:
            hasher = hashlib.sha256()
        elif running is not None and running[0] is not None and running[0] == stat_stamp(partial):
            hasher = running[1]
        try:
            budget = await self._budget(partial, start, request.content_length)
            size = await _receive(request, fh, start, budget, hasher)
        except QuotaExceeded as exc:
            partial.unlink(missing_ok=True)
            self.faults.report(quota_report("no_space", None) | {"service": "http"})
            return json_error(507, str(exc), quota=self.faults.disk_quota)
        if total is not None and size < total:
            if hasher is not None:
                self._running[partial] = (stat_stamp(partial), hasher)
            return web.json_response({"partial_size": size}, status=202)
        if hasher is not None:
            digest = hasher.hexdigest()
        else:
            digest, _ = await asyncio.to_thread(sha256_file, partial)
        expected = request.headers.get("X-Sha256")
        if expected is not None and expected.strip().lower() != digest:
            partial.unlink(missing_ok=True)
            return json_error(
                422,
                "sha256 of the received body differs from X-Sha256",
                expected=expected,
                actual=digest,
            )
        os.replace(partial, final)
        # The digest of what was just written: a pull that follows needs no second read.
        self.digests.put(final, stat_stamp(final), digest)
        await asyncio.to_thread(partials.sweep_finished, final)
        path = request.match_info["path"]
        return web.json_response({"path": path, "size": size, "sha256": digest}, status=201)

    async def _budget(self, partial: Path, start: int, length: int | None) -> int | None:
        """Bytes the partial file may grow to under the quota (None: unlimited)."""
        quota = self.faults.disk_quota
        if quota is None:
            return None
        used = await asyncio.to_thread(disk_usage, self.home) - file_size(partial)
        budget = quota - used
        if length is not None and start + length > budget:
            raise QuotaExceeded(
                f"No space left on device: {start + length} bytes do not fit in the "
                f"{max(budget, 0)} left of the node's {quota}-byte quota"
            )
        return budget


def _busy(request: web.Request) -> web.Response:
    return json_error(  # 423, not 409: the engine reads 409 as "is a directory"
        423,
        f"an earlier upload to {request.match_info['path']!r} is still being written on the node "
        f"(its partial file stayed locked for {LOCK_WAIT:g} s); retry once it has stopped",
    )


async def _receive(
    request: web.Request, fh: BinaryIO, start: int, budget: int | None, digest: Any
) -> int:
    """Append the body to the locked partial ``fh`` from ``start``, feeding ``digest`` (a
    sha256 object holding the first ``start`` bytes, or None); return the partial's size."""
    size = start
    fh.truncate(start)
    fh.seek(start)
    pending: list[bytes] = []
    pending_len = 0
    while True:
        chunk = await request.content.readany()
        if chunk:
            if budget is not None and size + pending_len + len(chunk) > budget:
                raise QuotaExceeded(f"No space left on device: node quota reached at {size}")
            pending.append(chunk)
            pending_len += len(chunk)
        if pending and (not chunk or pending_len >= WRITE_CHUNK):
            block = b"".join(pending)
            pending, pending_len = [], 0
            await asyncio.to_thread(_write, fh, block)
            if digest is not None:
                digest.update(block)
            size += len(block)
        if not chunk:
            break
    return size


def _write(fh: BinaryIO, block: bytes) -> None:
    fh.write(block)
    fh.flush()
