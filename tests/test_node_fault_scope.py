"""Node faults living for the next N connections (``for_connections``): counted by the node
as it accepts SSH connections and receives HTTP requests, then set back by themselves."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import asyncssh
import pytest
from node_clients import connect

from netfault.simulator.cluster.controller import AppliedFault
from netfault.simulator.cluster.faults import FaultParamError, check_connections, node_switch
from netfault.simulator.node import FakeNode
from netfault.simulator.scenario.fault_watch import FaultWatch
from netfault.simulator.scenario.loader import load_scenario
from netfault.simulator.scenario.runner import run_scenario
from netfault.simulator.scenario.trace import FaultKind, merged

TIMEOUT = 30.0
LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"
EVERY_BYTE = bytes(range(256)) * 16


@pytest.fixture
async def node() -> AsyncIterator[FakeNode]:
    async with FakeNode("scope-node", host="127.0.0.24") as n:
        yield n


def scoped(node: FakeNode, kind: str, connections: int, **params: object) -> Callable[[], None]:
    """Switch ``kind`` on for ``connections`` connections as the fault controller does;
    returns its undo."""
    switch = node_switch(kind, dict(params), 0, connections, {"fault": kind, "id": 7})
    assert switch is not None
    undo: Callable[[], None] = switch(node.faults)
    return undo


def expiries(records: list[dict[str, object]]) -> list[dict[str, object]]:
    return [r for r in records if r.get("expired")]


async def test_auth_refused_for_two_connections_lets_the_third_in(node: FakeNode) -> None:
    records: list[dict[str, object]] = []
    node.faults.on_fired(records.append)
    scoped(node, "auth_refused", 2)
    for n in range(2):
        with pytest.raises(asyncssh.PermissionDenied):
            async with connect(node):
                pass
        assert expiries(records) == ([] if n == 0 else [
            {"fault": "auth_refused", "id": 7, "expired": True, "service": "ssh", "connection": 1}
        ])  # fmt: skip
    assert node.faults.auth_refused is False
    async with connect(node) as conn:
        done = await conn.run("echo in", timeout=TIMEOUT)
    assert done.stdout == "in\n"
    assert len(expiries(records)) == 1


async def test_the_connection_that_uses_the_scope_up_keeps_the_fault_until_it_closes(
    node: FakeNode,
) -> None:
    scoped(node, "corrupt_binary", 1, level="ssh")
    async with connect(node) as first:
        assert node.faults.binary_mangling is False  # back for the connections after it
        async with connect(node) as second:
            clean = await second.run("cat", input=EVERY_BYTE, encoding=None, timeout=TIMEOUT)
        mangled = await first.run("cat", input=EVERY_BYTE, encoding=None, timeout=TIMEOUT)
    assert clean.stdout == EVERY_BYTE
    assert mangled.stdout != EVERY_BYTE and len(mangled.stdout or b"") == len(EVERY_BYTE)


async def test_clearing_a_scoped_fault_early_ends_it_without_an_expiry(node: FakeNode) -> None:
    records: list[dict[str, object]] = []
    node.faults.on_fired(records.append)
    undo = scoped(node, "auth_refused", 3)
    with pytest.raises(asyncssh.PermissionDenied):
        async with connect(node):
            pass
    undo()
    for _ in range(3):
        async with connect(node):
            pass
    assert node.faults.auth_refused is False and expiries(records) == []


async def test_http_5xx_for_two_requests_then_the_agent_answers(node: FakeNode) -> None:
    records: list[dict[str, object]] = []
    node.faults.on_fired(records.append)
    scoped(node, "http_5xx", 2)
    url = f"http://{node.host}:{node.http_port}/health"
    statuses = []
    async with aiohttp.ClientSession() as session:  # one keep-alive connection: requests count
        for _ in range(3):
            async with session.get(url) as resp:
                statuses.append(resp.status)
    assert statuses == [503, 503, 200]
    assert [(r["service"], r["connection"]) for r in expiries(records)] == [("http", 1)]
    assert node.faults.http_mode == "up"


def test_http_down_cannot_be_counted_by_the_node() -> None:
    with pytest.raises(FaultParamError, match="closes the agent's listener"):
        check_connections("http_down", {})
    check_connections("http_5xx", {})
    check_connections("reset", {"level": "ssh", "after_bytes": 0})


async def test_openssh_node_refuses_scoped_ssh_faults_naming_asyncssh() -> None:
    async with FakeNode("scope-ossh", host="127.0.0.25", ssh_server="openssh") as ossh:
        with pytest.raises(ValueError, match="ssh_server 'asyncssh'"):
            scoped(ossh, "host_key_changed", 1)
        assert ossh.faults.host_key_changed is False
        scoped(ossh, "http_5xx", 1)
        url = f"http://{ossh.host}:{ossh.http_port}/health"
        async with aiohttp.ClientSession() as session:
            statuses = []
            for _ in range(2):
                async with session.get(url) as resp:
                    statuses.append(resp.status)
        assert statuses == [503, 200]


async def test_library_scenario_expiry_lands_as_the_node_admits_the_second_connection() -> None:
    result = await run_scenario(
        load_scenario(LIBRARY / "ssh-login-refused-for-two-connections-then-back.yaml")
    )
    assert result.passed, result.report()
    records = merged(result.events, result.fault_trace)
    kinds = [(r["type"], r.get("transport")) for r in records]
    expired = kinds.index(("FAULT_EXPIRED", None))
    # the second connection is the base64 attempt's: after it started, before it failed
    assert kinds[expired - 1] == ("ATTEMPT_STARTED", "base64")
    assert kinds[expired + 1] == ("ATTEMPT_FAILED", "base64")
    assert kinds.count(("FAULT_EXPIRED", None)) == 1
    record = records[expired]
    assert {k: record.get(k) for k in ("fault", "node", "as", "service", "for_connections")} == {
        "fault": "auth_refused",
        "node": "node-1",
        "as": "auth_refused",
        "service": "ssh",
        "for_connections": 2,
    }
    assert record["connection"] == 1  # the node's second SSH connection since it started


async def openssh_login(node: FakeNode) -> int:
    """``ssh node true`` with OpenSSH's client: its exit status (255: refused)."""
    argv = ["ssh", "-p", str(node.ssh_port), *node.openssh_options(), node.host, "true"]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    async with asyncio.timeout(TIMEOUT):
        return await proc.wait()


@pytest.mark.parametrize("client", ["openssh", "asyncssh"])
async def test_openssh_node_refuses_exactly_the_next_two_logins(client: str) -> None:
    async with FakeNode("scope-ossh", host="127.0.0.26", ssh_server="openssh") as ossh:
        records: list[dict[str, object]] = []
        ossh.faults.on_fired(records.append)
        scoped(ossh, "auth_refused", 2)
        outcomes = []
        for _ in range(3):
            if client == "openssh":
                outcomes.append(await openssh_login(ossh) == 0)
            else:
                try:
                    async with connect(ossh):
                        outcomes.append(True)
                except asyncssh.PermissionDenied:
                    outcomes.append(False)
        assert outcomes == [False, False, True]
        assert [(r["fault"], r["service"]) for r in expiries(records)] == [("auth_refused", "ssh")]
        assert ossh.faults.auth_refused is False


def test_an_expiry_heard_before_the_step_watches_its_fault_is_still_recorded() -> None:
    """The node may admit the last connection before the applying step calls watch()."""
    recorded: list[tuple[object, ...]] = []
    cluster = SimpleNamespace(subscribe_node_faults=lambda listener: lambda: None)
    ctx: Any = SimpleNamespace(
        world=SimpleNamespace(cluster=cluster),
        record=lambda kind, fault, node, **where: recorded.append((kind, fault, node, where)),
    )
    watch = FaultWatch(ctx)
    applied = AppliedFault(3, "auth_refused", "n1", None, None, {}, for_connections=1)
    expiry = {"fault": "auth_refused", "id": 3, "expired": True, "service": "ssh"}
    watch._node_fired("n1", expiry | {"connection": 0})
    assert recorded == []
    watch.watch(applied, "locked")
    [(kind, fault, node, where)] = recorded
    assert (kind, fault, node) == (FaultKind.EXPIRED, "auth_refused", "n1")
    assert {k: where[k] for k in ("name", "service", "connection")} == {
        "name": "locked",
        "service": "ssh",
        "connection": 0,
    }
