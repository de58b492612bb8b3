"""A LocalCluster hands out its proxy's fault events: what a scenario merges into its trace."""

from __future__ import annotations

import asyncio

from netfault.simulator.cluster import LocalCluster
from netfault.simulator.proxy.trace import FaultAction

A = FaultAction
IO_TIMEOUT = 10.0


async def test_a_tcp_reset_fault_shows_as_toxics_and_the_cut_offset() -> None:
    async with LocalCluster(nodes=1, seed=5) as cluster:
        config = cluster.node("node-1")
        fault = cluster.faults.apply(
            "reset", "node-1", route="tailscale", service="http", level="tcp", after_bytes=100
        )
        async with asyncio.timeout(IO_TIMEOUT):
            reader, writer = await asyncio.open_connection(
                config.tailscale_ip, config.tailscale_http_port
            )
            writer.write(b"x" * 300)
            assert await reader.read() == b""  # cut after 100 bytes, closed by the proxy
            writer.close()
        cluster.faults.clear(fault)
        events = cluster.fault_events()
    proxy = "node-1-tailscale-http"
    assert {e.proxy for e in events} == {proxy}
    got = [(e.action, e.direction, e.connection, e.offset, e.offset_exact) for e in events]
    assert got[:2] == [
        (A.TOXIC_ADDED, "upstream", None, None, True),
        (A.TOXIC_ADDED, "downstream", None, None, True),
    ]
    assert (A.LIMIT_REACHED, "upstream", 0, 100, True) in got
    assert sorted(g[:2] for g in got[-2:]) == [
        (A.TOXIC_REMOVED, "downstream"),
        (A.TOXIC_REMOVED, "upstream"),
    ]
    cursor = events[-1].seq
    assert cluster.fault_events(cursor) == []
