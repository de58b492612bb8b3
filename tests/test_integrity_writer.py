"""The local pull writer: every queued byte reaches the partial file, in order, and is hashed."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from netfault.engine.transports.integrity import QueueWriter, write_all


def test_write_all_writes_more_buffers_than_one_writev_takes(tmp_path: Path) -> None:
    buffers = [os.urandom(n % 97 + 1) for n in range(3000)]  # > IOV_MAX (1024) buffers
    path = tmp_path / "out.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        write_all(fd, [b"", *buffers, b""])
    finally:
        os.close(fd)
    assert path.read_bytes() == b"".join(buffers)


def test_write_all_continues_after_short_writes(tmp_path: Path) -> None:
    """A pipe takes at most its buffer per write: the rest must still arrive, in order."""
    data = [os.urandom(300_000), os.urandom(500_000)]
    read_end, write_end = os.pipe()
    got = bytearray()

    def drain() -> None:
        while chunk := os.read(read_end, 65536):
            got.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        write_all(write_end, data)
    finally:
        os.close(write_end)
        reader.join()
        os.close(read_end)
    assert bytes(got) == b"".join(data)


@pytest.mark.parametrize("offset", [0, 5000])
async def test_queue_writer_writes_and_hashes_every_batch(tmp_path: Path, offset: int) -> None:
    part = tmp_path / ".x.nfpart"
    prefix = os.urandom(offset)
    part.write_bytes(prefix + b"junk past the offset")
    hasher = hashlib.sha256(prefix)
    writer = QueueWriter(part, offset, hasher, limit=1 << 20)  # small: write() has to wait
    batches = [[os.urandom(70_000) for _ in range(5)] for _ in range(40)]
    for batch in batches:
        await writer.write(batch)
    await writer.close()
    body = b"".join(b"".join(batch) for batch in batches)
    assert part.read_bytes() == prefix + body
    assert hasher.hexdigest() == hashlib.sha256(prefix + body).hexdigest()
    assert writer.written == offset + len(body)
