"""The node's admin API: node-level faults read and switched over HTTP, never faulted itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from netfault.simulator.node import FakeNode

TIMEOUT = aiohttp.ClientTimeout(total=30)
ALL_OFF = {
    "binary_mangling": False,
    "binary_reset_after": None,
    "auth_refused": False,
    "host_key_changed": False,
    "disk_quota": None,
    "http_mode": "up",
}


@pytest.fixture
async def node() -> AsyncIterator[FakeNode]:
    async with FakeNode("admin-node", host="127.0.0.41", admin_port=0) as n:
        yield n


@pytest.fixture
async def admin(node: FakeNode) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {node.token}"}
    base = f"http://{node.host}:{node.admin_port}"
    async with aiohttp.ClientSession(base, headers=headers, timeout=TIMEOUT) as session:
        yield session


async def faults_of(admin: aiohttp.ClientSession) -> dict[str, Any]:
    async with admin.get("/faults") as resp:
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
    return body


async def test_get_faults_reports_every_switch_off_on_a_fresh_node(
    admin: aiohttp.ClientSession,
) -> None:
    body = await faults_of(admin)
    assert body == {"node": "admin-node", "state": ALL_OFF, "active": {}}


async def test_put_faults_switches_the_node_and_get_reports_it(
    node: FakeNode, admin: aiohttp.ClientSession
) -> None:
    change = {"auth_refused": True, "binary_reset_after": 4096, "http_mode": "5xx"}
    async with admin.put("/faults", json=change) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert node.faults.auth_refused and node.faults.binary_reset_after == 4096
    assert node.faults.http_mode == "5xx"
    assert body["state"] == ALL_OFF | change
    assert body["active"] == change
    assert (await faults_of(admin))["state"] == ALL_OFF | change


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"no_such_fault": True}, id="unknown-attr"),
        pytest.param({"auth_refused": "yes"}, id="string-for-bool"),
        pytest.param({"disk_quota": True}, id="bool-for-int"),
        pytest.param({"disk_quota": -1}, id="negative-quota"),
        pytest.param({"auth_refused": None}, id="null-for-bool"),
        pytest.param({"http_mode": "sideways"}, id="unknown-http-mode"),
        pytest.param([["auth_refused", True]], id="not-an-object"),
        pytest.param({"binary_mangling": True, "disk_quota": "full"}, id="one-bad-of-two"),
    ],
)
async def test_bad_put_is_400_and_changes_nothing(
    node: FakeNode, admin: aiohttp.ClientSession, body: object
) -> None:
    async with admin.put("/faults", json=body) as resp:
        assert resp.status == 400
        assert "error" in await resp.json()
    assert node.faults.active() == {}


async def test_put_with_a_body_that_is_not_json_is_400(
    node: FakeNode, admin: aiohttp.ClientSession
) -> None:
    async with admin.put("/faults", data=b"{nope") as resp:
        assert resp.status == 400
    assert node.faults.active() == {}


async def test_faults_api_needs_the_bearer_token(node: FakeNode) -> None:
    url = f"http://{node.host}:{node.admin_port}/faults"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as anon:
        async with anon.put(url, json={"auth_refused": True}) as resp:
            assert resp.status == 401
        async with anon.get(url) as resp:
            assert resp.status == 401
        async with anon.get(f"http://{node.host}:{node.admin_port}/health") as resp:
            assert resp.status == 200
    assert not node.faults.auth_refused


async def test_http_down_is_cleared_through_the_admin_listener(
    node: FakeNode, admin: aiohttp.ClientSession
) -> None:
    main = f"http://{node.host}:{node.http_port}/health"
    async with admin.put("/faults", json={"http_mode": "down"}) as resp:
        assert resp.status == 200
    async with aiohttp.ClientSession(timeout=TIMEOUT) as anon:
        with pytest.raises(aiohttp.ClientConnectorError):
            async with anon.get(main):
                pass
        assert (await faults_of(admin))["active"] == {"http_mode": "down"}
        async with admin.delete("/faults") as resp:
            assert resp.status == 200
            assert (await resp.json())["state"] == ALL_OFF
        async with anon.get(main) as resp:
            assert resp.status == 200


async def test_admin_listener_answers_while_the_agent_returns_5xx(
    node: FakeNode, admin: aiohttp.ClientSession
) -> None:
    (node.home / "data" / "kept.bin").write_bytes(b"\x00\xffpayload")
    node.faults.http_mode = "5xx"
    headers = {"Authorization": f"Bearer {node.token}"}
    async with aiohttp.ClientSession(timeout=TIMEOUT, headers=headers) as main:
        async with main.get(f"http://{node.host}:{node.http_port}/files/data/kept.bin") as resp:
            assert resp.status == 503
    async with admin.get("/files/data/kept.bin") as resp:
        assert resp.status == 200
        assert await resp.read() == b"\x00\xffpayload"
    assert (await faults_of(admin))["active"] == {"http_mode": "5xx"}


async def test_admin_listener_offers_no_writes(admin: aiohttp.ClientSession) -> None:
    async with admin.put("/files/data/x.bin", data=b"x") as resp:
        assert resp.status == 405


async def test_a_node_without_admin_port_has_no_admin_listener() -> None:
    async with FakeNode("plain-node", host="127.0.0.41") as node:
        assert node.admin_port is None
        headers = {"Authorization": f"Bearer {node.token}"}
        async with aiohttp.ClientSession(timeout=TIMEOUT, headers=headers) as session:
            async with session.get(f"http://{node.host}:{node.http_port}/faults") as resp:
                assert resp.status == 404  # the fault API lives on the admin listener only
