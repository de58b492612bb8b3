"""Partial files are kept only where the next attempt can resume them (issue 16, leftovers)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from netfault.engine.config import TransportConfig
from netfault.engine.errors import IsDirectoryError
from netfault.engine.transports import Transport, default_transports
from netfault.engine.transports.scp import ScpTransport
from netfault.simulator.node import FakeNode
from netfault.simulator.node.partials import PARTIAL_MAX_AGE

CONFIG = TransportConfig(connect_timeout=5.0, operation_timeout=30.0, http_timeout=10.0)
NAMES = ["ssh", "tailscale", "base64", "rsync", "http", "scp"]


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[FakeNode]:
    async with FakeNode("node-p", host="127.0.0.13") as fake:
        yield fake


def transport(name: str) -> Transport:
    return ScpTransport() if name == "scp" else default_transports()[name]


def partials(directory: Path) -> list[str]:
    """Partial files of any writer: the engine's (shared or per attempt) and the agent's."""
    return sorted(
        p.name for p in directory.iterdir() if ".nfpart" in p.name or "netfault-partial" in p.name
    )


@pytest.mark.parametrize("name", NAMES)
async def test_push_onto_a_remote_directory_fails_and_leaves_no_partial(
    node: FakeNode, tmp_path: Path, name: str
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(300 * 1024))
    (node.home / "data" / "adir").mkdir(parents=True, exist_ok=True)
    conf = node.node_config(tailscale_ip=node.host)
    with pytest.raises(IsDirectoryError, match="(?i)directory") as refused:
        await transport(name).push(conf, src, "adir", CONFIG)
    assert refused.value.kind == "is_directory"  # a request error: no failover
    assert (node.home / "data" / "adir").is_dir()
    assert partials(node.home / "data") == []


@pytest.mark.parametrize("name", NAMES)
async def test_pull_onto_a_local_directory_fails_and_leaves_no_partial(
    node: FakeNode, tmp_path: Path, name: str
) -> None:
    (node.home / "data").mkdir(exist_ok=True)
    (node.home / "data" / "f.bin").write_bytes(os.urandom(300 * 1024))
    target = tmp_path / "into"
    target.mkdir()
    conf = node.node_config(tailscale_ip=node.host)
    with pytest.raises(IsDirectoryError, match="(?i)directory") as refused:
        await transport(name).pull(conf, "f.bin", target, CONFIG)
    assert refused.value.kind == "is_directory"
    assert target.is_dir() and list(target.iterdir()) == []
    assert partials(tmp_path) == []


@pytest.mark.parametrize("name", NAMES)
async def test_finishing_a_file_removes_the_partials_other_transports_left_for_it(
    node: FakeNode, tmp_path: Path, name: str
) -> None:
    data = os.urandom(300 * 1024)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    here = node.home / "data"
    here.mkdir(exist_ok=True)
    left = [".f.bin.nfpart", ".f.bin.nfpart.0123abcd", ".f.bin.netfault-partial"]
    for stale in left:
        (here / stale).write_bytes(b"cut off by another transport")
    a_minute_ago = time.time() - 60
    os.utime(here / ".f.bin.nfpart.0123abcd", (a_minute_ago, a_minute_ago))
    # A whole copy just written by another attempt waits for that attempt's commit: kept.
    (here / ".f.bin.nfpart.fresh0123").write_bytes(b"awaiting its own commit")
    (here / ".other.bin.nfpart").write_bytes(b"another file's partial")
    await transport(name).push(node.node_config(tailscale_ip=node.host), src, "f.bin", CONFIG)
    assert (here / "f.bin").read_bytes() == data
    assert partials(here) == [".f.bin.nfpart.fresh0123", ".other.bin.nfpart"]


async def test_agent_partials_of_aborted_uploads_age_out(node: FakeNode, tmp_path: Path) -> None:
    here = node.home / "data"
    here.mkdir(exist_ok=True)
    old, recent = here / ".old.bin.netfault-partial", here / ".new.bin.netfault-partial"
    old.write_bytes(b"x" * 1000)
    recent.write_bytes(b"y" * 1000)
    long_ago = time.time() - PARTIAL_MAX_AGE - 60
    os.utime(old, (long_ago, long_ago))
    src = tmp_path / "src.bin"
    src.write_bytes(b"z" * 1000)
    await transport("http").push(node.node_config(), src, "g.bin", CONFIG)
    assert partials(here) == [".new.bin.netfault-partial"]


async def test_a_refused_resume_put_leaves_no_empty_partial(node: FakeNode) -> None:
    """A PUT resuming at a byte the agent does not hold is refused (416) and creates nothing."""
    conf = node.node_config()
    url = f"http://{conf.hostname}:{conf.http_port}/files/data/r.bin"
    headers = {"Content-Range": "bytes 100-199/300"}
    if conf.http_token:
        headers["Authorization"] = f"Bearer {conf.http_token}"
    async with aiohttp.ClientSession() as s, s.put(url, data=b"x" * 100, headers=headers) as resp:
        assert resp.status == 416
        assert (await resp.json())["partial_size"] == 0
    assert partials(node.home / "data") == []
