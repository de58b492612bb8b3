"""Node fault reports over the admin API (``GET /faults/events``) and the poller that follows
them for a backend whose nodes run elsewhere (Docker), tried against local FakeNodes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncssh
import pytest
from node_clients import connect

from netfault.simulator.cluster.controller import FaultController
from netfault.simulator.cluster.node_events import NodeEventPoller
from netfault.simulator.cluster.switchboard import AdminEndpoint, HttpSwitchboard
from netfault.simulator.node import FakeNode
from netfault.simulator.node.fault_events import FaultEventLog
from netfault.simulator.node.faults import NodeFaults

TIMEOUT = 30.0
BINARY = bytes(range(256)) * 64


@pytest.fixture
async def nodes() -> AsyncIterator[list[FakeNode]]:
    async with (
        FakeNode("ev-1", host="127.0.0.45", admin_port=0) as one,
        FakeNode("ev-2", host="127.0.0.46", admin_port=0) as two,
    ):
        yield [one, two]


def endpoint(node: FakeNode) -> AdminEndpoint:
    return AdminEndpoint(f"http://{node.host}:{node.admin_port}", node.token)


async def events(node: FakeNode, query: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {node.token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{endpoint(node).url}/faults/events?{query}") as resp,
    ):
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
    return body


async def push_binary(node: FakeNode) -> None:
    """``cat`` a binary stream into the node; a reset fault cuts it."""
    try:
        async with connect(node) as conn:
            await conn.run("cat > x.bin", input=BINARY, encoding=None, timeout=TIMEOUT)
    except (asyncssh.Error, OSError):
        pass  # the reset


def test_log_numbers_records_and_says_how_many_a_late_reader_missed() -> None:
    faults = NodeFaults()
    log = FaultEventLog(faults, kept=2)
    for offset in range(3):
        faults.report({"fault": "reset", "offset": offset})
    assert log.since(0) == ([{"n": 1, "fault": "reset", "offset": 1},
                             {"n": 2, "fault": "reset", "offset": 2}], 1)  # fmt: skip
    assert log.since(2) == ([{"n": 2, "fault": "reset", "offset": 2}], 0)
    assert log.since(3) == ([], 0)
    log.close()
    faults.report({"fault": "reset", "offset": 9})
    assert log.total == 3


async def test_events_endpoint_lists_reports_and_long_polls_for_the_next(
    nodes: list[FakeNode],
) -> None:
    node = nodes[0]
    assert await events(node, "since=0") == {
        "node": "ev-1", "events": [], "dropped": 0, "next": 0
    }  # fmt: skip
    node.faults.binary_reset_after = 1000
    waiting = asyncio.create_task(events(node, "since=0&wait=25"))
    await push_binary(node)
    body = await waiting
    assert body["next"] == 1 and body["dropped"] == 0
    [record] = body["events"]
    assert record["n"] == 0 and record["fault"] == "reset" and record["offset"] > 1000
    assert (await events(node, "since=1"))["events"] == []


async def test_events_endpoint_refuses_a_bad_cursor(nodes: list[FakeNode]) -> None:
    headers = {"Authorization": f"Bearer {nodes[0].token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{endpoint(nodes[0]).url}/faults/events?since=-1") as resp,
    ):
        assert resp.status == 400


async def test_poller_delivers_each_nodes_reports_from_faults_switched_over_http(
    nodes: list[FakeNode],
) -> None:
    """The Docker backend's parts (HTTP switchboard, poller) against nodes in this process."""
    admin = {node.name: endpoint(node) for node in nodes}
    controller = FaultController(
        "127.0.0.1", 1, lambda *_: [], HttpSwitchboard(admin), lambda: list(admin)
    )
    got: list[tuple[str, dict[str, object]]] = []
    arrived = asyncio.Event()
    loop = asyncio.get_running_loop()
    lock = threading.Lock()

    def listener(node: str, record: dict[str, object]) -> None:
        with lock:
            got.append((node, record))
        loop.call_soon_threadsafe(arrived.set)

    nodes[0].faults.report({"fault": "reset", "offset": 1})  # before the poller: skipped
    poller = NodeEventPoller(admin, listener, wait=0.5)
    await asyncio.to_thread(poller.start)
    try:
        await asyncio.to_thread(controller.apply, "reset", "ev-2", level="ssh", after_bytes=500)
        await push_binary(nodes[1])
        async with asyncio.timeout(TIMEOUT):
            while not got:
                arrived.clear()
                await arrived.wait()
    finally:
        await asyncio.to_thread(poller.stop)
    [(node, record)] = got
    assert node == "ev-2" and record["fault"] == "reset" and "n" not in record
    assert isinstance(record["offset"], int) and record["offset"] > 500
    assert poller.errors == [] and poller.dropped == 0
