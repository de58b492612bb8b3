"""The fake node's HTTP agent: auth, Range GET, atomic and resumable PUT, sha256, traversal."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from netfault.simulator.node import FakeNode

TIMEOUT = aiohttp.ClientTimeout(total=30)


@pytest.fixture
async def node() -> AsyncIterator[FakeNode]:
    async with FakeNode("http-node", host="127.0.0.22") as n:
        yield n


@pytest.fixture
async def http(node: FakeNode) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {node.token}"}
    base = f"http://{node.host}:{node.http_port}"
    async with aiohttp.ClientSession(base, headers=headers, timeout=TIMEOUT) as session:
        yield session


async def test_health_is_open_and_status_reports_node(
    node: FakeNode, http: aiohttp.ClientSession
) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as anon:
        async with anon.get(f"http://{node.host}:{node.http_port}/health") as resp:
            assert resp.status == 200
            assert await resp.json() == {"status": "ok", "node": "http-node"}
    async with http.get("/status") as resp:
        body = await resp.json()
    assert body["node"] == "http-node" and body["faults"] == {}
    assert body["disk"]["quota"] is None and body["uptime_s"] >= 0


@pytest.mark.parametrize(
    "auth", [pytest.param(None, id="no-token"), pytest.param("Bearer wrong", id="wrong-token")]
)
async def test_requests_without_the_token_get_401_and_write_nothing(
    node: FakeNode, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth else {}
    url = f"http://{node.host}:{node.http_port}"
    async with aiohttp.ClientSession(url, headers=headers, timeout=TIMEOUT) as anon:
        async with anon.put("/files/x.bin", data=b"data") as resp:
            assert resp.status == 401
        async with anon.get("/status") as resp:
            assert resp.status == 401
    assert not (node.home / "x.bin").exists()


async def test_get_with_range_answers_206_with_the_slice(
    node: FakeNode, http: aiohttp.ClientSession
) -> None:
    payload = os.urandom(100_000)
    (node.home / "data" / "r.bin").write_bytes(payload)
    async with http.get("/files/data/r.bin") as resp:
        assert resp.status == 200 and await resp.read() == payload
    async with http.get("/files/data/r.bin", headers={"Range": "bytes=1000-"}) as resp:
        assert resp.status == 206 and await resp.read() == payload[1000:]
    async with http.get("/files/data/missing") as resp:
        assert resp.status == 404


async def test_put_is_atomic_and_verified(node: FakeNode, http: aiohttp.ClientSession) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 1)
    digest = hashlib.sha256(payload).hexdigest()
    (node.home / "data" / "p.bin").write_bytes(b"old")
    async with http.put("/files/data/p.bin", data=payload, headers={"X-Sha256": "0" * 64}) as resp:
        assert resp.status == 422
    assert (node.home / "data" / "p.bin").read_bytes() == b"old"
    assert [p.name for p in (node.home / "data").iterdir()] == ["p.bin"]
    async with http.put("/files/data/p.bin", data=payload, headers={"X-Sha256": digest}) as resp:
        assert resp.status == 201
        assert await resp.json() == {"path": "data/p.bin", "size": len(payload), "sha256": digest}
    assert (node.home / "data" / "p.bin").read_bytes() == payload
    async with http.put("/files/new/dir/q.bin", data=b"") as resp:
        assert resp.status == 201
    assert (node.home / "new" / "dir" / "q.bin").read_bytes() == b""


async def test_put_resumes_with_content_range(node: FakeNode, http: aiohttp.ClientSession) -> None:
    payload = os.urandom(1024 * 1024 + 1)
    total, half = len(payload), 600_000
    first = {"Content-Range": f"bytes 0-{half - 1}/{total}"}
    async with http.put("/files/data/big.bin", data=payload[:half], headers=first) as resp:
        assert resp.status == 202 and (await resp.json())["partial_size"] == half
    assert not (node.home / "data" / "big.bin").exists()
    async with http.get("/uploads/data/big.bin") as resp:
        state = await resp.json()
    assert state["partial_size"] == half
    assert state["sha256"] == hashlib.sha256(payload[:half]).hexdigest()
    wrong = {"Content-Range": f"bytes 5-{total - 1}/{total}"}
    async with http.put("/files/data/big.bin", data=payload[5:], headers=wrong) as resp:
        assert resp.status == 416 and (await resp.json())["partial_size"] == half
    rest = {
        "Content-Range": f"bytes {half}-{total - 1}/{total}",
        "X-Sha256": hashlib.sha256(payload).hexdigest(),
    }
    async with http.put("/files/data/big.bin", data=payload[half:], headers=rest) as resp:
        assert resp.status == 201
    assert (node.home / "data" / "big.bin").read_bytes() == payload
    async with http.get("/uploads/data/big.bin") as resp:
        assert (await resp.json())["partial_size"] == 0


async def test_sha256_endpoint_hashes_whole_file_or_prefix(
    node: FakeNode, http: aiohttp.ClientSession
) -> None:
    payload = os.urandom(70_000)
    (node.home / "data" / "h.bin").write_bytes(payload)
    async with http.get("/sha256/data/h.bin") as resp:
        assert await resp.json() == {
            "sha256": hashlib.sha256(payload).hexdigest(),
            "size": 70_000,
            "length": 70_000,
        }
    async with http.get("/sha256/data/h.bin", params={"length": "1000"}) as resp:
        body = await resp.json()
    assert body["sha256"] == hashlib.sha256(payload[:1000]).hexdigest()
    assert body["length"] == 1000 and body["size"] == 70_000


def escaped_anywhere(*directories: Path) -> bool:
    return any((d / "escaped.txt").exists() for d in directories)


@pytest.mark.parametrize(
    "raw_path",
    [
        pytest.param("/files/..%2F..%2Fescaped.txt", id="dotdot-encoded"),
        pytest.param("/files/data/..%2F..%2Fescaped.txt", id="dotdot-nested"),
        pytest.param("/files/%2Ftmp%2Fescaped.txt", id="absolute-encoded"),
        pytest.param("/files//tmp/escaped.txt", id="absolute-double-slash"),
        pytest.param("/files/link/escaped.txt", id="symlink-dir-out"),
        pytest.param("/files/filelink", id="symlink-file-out"),
    ],
)
async def test_paths_escaping_home_are_refused_and_nothing_written(
    node: FakeNode, http: aiohttp.ClientSession, tmp_path: Path, raw_path: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"keep")
    (node.home / "link").symlink_to(outside)
    (node.home / "filelink").symlink_to(outside / "victim")
    url = URL(f"http://{node.host}:{node.http_port}{raw_path}", encoded=True)
    async with http.put(url, data=b"evil") as resp:
        assert 400 <= resp.status < 500
    async with http.get(url) as resp:
        assert 400 <= resp.status < 500
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_bytes() == b"keep"
    assert not escaped_anywhere(node.home.parent, Path("/tmp"))
