"""A LocalCluster gives all its nodes one host key; host_key_changed still hits only its node."""

from __future__ import annotations

import asyncio

import asyncssh
import pytest

from netfault.engine.config import NodeConfig
from netfault.simulator.cluster.local import LocalCluster
from netfault.simulator.cluster.routes import ssh_routes
from netfault.simulator.cluster.spec import NodeSpec

TIMEOUT = 30.0
SPECS = [NodeSpec("a"), NodeSpec("b"), NodeSpec("c", ssh_server="openssh")]


async def presented(host: str, port: int) -> bytes:
    """The public host key the SSH server on host:port shows."""
    async with asyncio.timeout(TIMEOUT):
        key = await asyncssh.get_server_host_key(host, port)
    assert key is not None
    return bytes(key.public_data)


async def logs_in(cfg: NodeConfig, host: str, port: int) -> bool:
    """Whether a login with the node's key and known_hosts runs a command on host:port."""
    try:
        async with (
            asyncio.timeout(TIMEOUT),
            asyncssh.connect(
                host,
                port,
                username=cfg.ssh_user,
                client_keys=[str(cfg.ssh_key)],
                known_hosts=str(cfg.known_hosts),
            ) as conn,
        ):
            result = await conn.run("echo ok", check=True)
    except asyncssh.HostKeyNotVerifiable:
        return False
    return result.stdout == "ok\n"


async def logins(cluster: LocalCluster) -> dict[str, list[bool]]:
    return {
        name: [await logs_in(cfg, host, port) for host, port in ssh_routes(cfg)]
        for name, cfg in cluster.nodes.items()
    }


async def test_one_key_for_the_cluster_and_a_changed_key_only_on_the_faulted_node() -> None:
    async with LocalCluster(SPECS, seed=5) as cluster:
        routes = [r for cfg in cluster.nodes.values() for r in ssh_routes(cfg)]
        assert len(routes) == 6
        shared = {await presented(h, p) for h, p in routes}
        assert len(shared) == 1
        assert await logins(cluster) == {n: [True, True] for n in "abc"}

        for faulted in ("a", "c"):  # an asyncssh node, then an OpenSSH one
            applied = await asyncio.to_thread(cluster.faults.apply, "host_key_changed", faulted)
            expected = {n: [n != faulted] * 2 for n in "abc"}
            assert await logins(cluster) == expected
            await asyncio.to_thread(cluster.faults.clear, applied)
        assert await logins(cluster) == {n: [True, True] for n in "abc"}

        for faulted in ("a", "c"):
            await asyncio.to_thread(cluster.faults.apply, "host_key_changed", faulted)
        shown = {n: await presented(*ssh_routes(cfg)[0]) for n, cfg in cluster.nodes.items()}
        assert shown["b"] in shared
        assert len({shown["a"], shown["c"], *shared}) == 3  # each node its own replacement


@pytest.mark.parametrize("nodes", [1, 3])
async def test_known_hosts_lists_every_ssh_route_once(nodes: int) -> None:
    async with LocalCluster(nodes, seed=2) as cluster:
        files = {cfg.known_hosts for cfg in cluster.nodes.values()}
        assert len(files) == 1
        (path,) = files
        assert path is not None
        hosts = [line.split()[0] for line in path.read_text().splitlines()]
        want = [f"[{h}]:{p}" for cfg in cluster.nodes.values() for h, p in ssh_routes(cfg)]
        assert hosts == want
