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
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import stat
from collections import OrderedDict
from pathlib import Path
from typing import Any

from aiohttp import web

from netfault.simulator.node.faults import NodeFaults
from netfault.simulator.node.paths import disk_usage, file_size, partial_path, resolve_in_home

WRITE_CHUNK = 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)$")


class QuotaExceeded(Exception):
    """The node's disk quota would be exceeded by this upload."""


def sha256_file(path: Path, length: int | None = None) -> tuple[str, int]:
    """sha256 of ``path``'s first ``length`` bytes (all when None) and the count hashed."""
    digest = hashlib.sha256()
    remaining = length
    hashed = 0
    with path.open("rb") as fh:
        while remaining is None or remaining > 0:
            want = WRITE_CHUNK if remaining is None else min(WRITE_CHUNK, remaining)
            block = fh.read(want)
            if not block:
                break
            digest.update(block)
            hashed += len(block)
            if remaining is not None:
                remaining -= len(block)
    return digest.hexdigest(), hashed


Stamp = tuple[int, int, int, int, int]


def stat_stamp(path: Path) -> Stamp | None:
    """What any change to a file's bytes changes: (device, inode, size, mtime, ctime) in ns;
    None when ``path`` is not a regular file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class DigestCache:
    """Whole-file sha256 digests by path, each valid only while the file's stamp is unchanged.

    A write, truncate, ``touch`` or a new file renamed over the path changes the stamp (Linux
    6.13+ gives a file stat'ed since its last change a fine-grained timestamp on the next
    write, so even a same-size rewrite within one clock tick shows). A stale entry could only
    ever fail a pull, never pass one: the client compares the digest with the bytes it
    received, and those come from the file as it is now. Bounded: the least recently used
    entries go first.
    """

    def __init__(self, limit: int = 1024) -> None:
        self._limit = limit
        self._entries: OrderedDict[Path, tuple[Stamp, str]] = OrderedDict()

    def get(self, path: Path) -> tuple[str, int] | None:
        """(digest, size) of ``path`` if a cached digest is still valid for it."""
        entry = self._entries.get(path)
        if entry is None:
            return None
        if stat_stamp(path) != entry[0]:
            del self._entries[path]
            return None
        self._entries.move_to_end(path)
        return entry[1], entry[0][2]

    def put(self, path: Path, stamp: Stamp | None, digest: str) -> None:
        """Remember ``digest`` for ``path`` as it was when ``stamp`` was taken."""
        self._entries.pop(path, None)
        if stamp is None:
            return
        self._entries[path] = (stamp, digest)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)


def hash_stable(path: Path) -> tuple[str, int, Stamp | None]:
    """sha256 and size of the whole file, and its stamp if it did not change meanwhile."""
    before = stat_stamp(path)
    digest, size = sha256_file(path)
    after = stat_stamp(path)
    return digest, size, before if before == after else None


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
        lock = self._locks.setdefault(final, asyncio.Lock())
        async with lock:
            return await self._put_locked(request, final, start, total)

    async def _put_locked(
        self, request: web.Request, final: Path, start: int, total: int | None
    ) -> web.Response:
        partial = partial_path(final)
        current = file_size(partial)
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
            final.parent.mkdir(parents=True, exist_ok=True)
            size = await _receive(request, partial, start, budget, hasher)
        except QuotaExceeded as exc:
            partial.unlink(missing_ok=True)
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


async def _receive(
    request: web.Request, partial: Path, start: int, budget: int | None, digest: Any
) -> int:
    """Append the body to ``partial`` from ``start``, feeding ``digest`` (a sha256 object
    holding the first ``start`` bytes, or None); return the partial file's size."""
    size = start
    with partial.open("r+b" if start else "wb") as fh:
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
                await asyncio.to_thread(fh.write, block)
                if digest is not None:
                    digest.update(block)
                size += len(block)
            if not chunk:
                break
    return size
