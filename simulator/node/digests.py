"""Whole-file and prefix sha256 digests of the node agent's files, and their cache."""

from __future__ import annotations

import hashlib
import os
import stat
from collections import OrderedDict
from pathlib import Path

WRITE_CHUNK = 1024 * 1024


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
