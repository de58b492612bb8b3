"""The guide's script API (base64_push, robust_push, ...) against a FakeNode."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from netfault.engine.transfer import TransferConfig, transfer_async
from netfault.simulator.node import FakeNode

NAME = "script dir/a 'b' $(touch pwned).bin"


@pytest.fixture
async def node() -> AsyncIterator[FakeNode]:
    async with FakeNode("node-s", host="127.0.0.12") as fake:
        yield fake


def config(node: FakeNode) -> TransferConfig:
    return TransferConfig(
        ssh_user=node.user,
        ssh_key=node.client_key.private_path,
        known_hosts=node.known_hosts_path,
        connect_timeout=5,
        timeout=30,
    )


@pytest.mark.parametrize("method", ["rsync", "scp", "base64"])
async def test_each_method_pushes_and_pulls_identical_bytes(
    node: FakeNode, tmp_path: Path, method: str
) -> None:
    data = os.urandom(1024 * 1024 + 5)
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    remote = f"data/{NAME}"
    pushed = await transfer_async(
        "push", src, node.host, node.ssh_port, remote, config(node), (method,)
    )
    assert pushed.success and pushed.transport_used == method, pushed.error
    assert (node.home / remote).read_bytes() == data
    pulled = await transfer_async(
        "pull", back, node.host, node.ssh_port, remote, config(node), (method,)
    )
    assert pulled.success, pulled.error
    assert back.read_bytes() == data
    assert not list(node.home.rglob("pwned*"))


async def test_robust_push_falls_back_to_base64_when_the_channel_mangles_binary(
    node: FakeNode, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 4096
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    node.faults.binary_mangling = True
    result = await transfer_async("push", src, node.host, node.ssh_port, "data/m.bin", config(node))
    assert result.success and result.transport_used == "base64", result.error
    assert {a.transport for a in result.attempts if not a.success} == {"rsync", "scp"}
    assert (node.home / "data/m.bin").read_bytes() == data


async def test_robust_push_reports_failure_with_every_error_when_auth_is_refused(
    node: FakeNode, tmp_path: Path
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"x")
    node.faults.auth_refused = True
    result = await transfer_async("push", src, node.host, node.ssh_port, "data/a.bin", config(node))
    assert not result.success and result.transport_used is None
    assert [(a.transport, a.error_kind) for a in result.attempts] == [
        ("rsync", "auth"),
        ("scp", "auth"),
        ("base64", "auth"),
    ]
    assert result.error is not None and "key refused" in result.error


def test_blocking_base64_push_runs_its_own_loop(tmp_path: Path) -> None:
    async def scenario() -> tuple[bytes, bool]:
        async with FakeNode("node-b", host="127.0.0.13") as fake:
            src = tmp_path / "src.bin"
            src.write_bytes(b"hello " * 1000)
            from netfault.engine.transfer import base64_push

            result = await asyncio.to_thread(
                base64_push, src, fake.host, fake.ssh_port, "data/h.bin", config(fake)
            )
            return (fake.home / "data/h.bin").read_bytes(), result.success

    content, ok = asyncio.run(scenario())
    assert ok and content == b"hello " * 1000
