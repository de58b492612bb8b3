"""LocalCluster start-up and teardown for 20 and 200 nodes, against bare FakeNodes in the same run.

"Ready" means: ``start()`` returned, every proxy listen port (from the proxy API) accepted a
TCP connection, and every hostname ssh route sent its SSH banner. The baseline starts as many
FakeNodes without the proxy (same shared client key, same addresses scheme) and checks the
same for their own ports. Median of 3 runs each (one each at 200 nodes, measured first, so
the process's resident memory when the 200-node cluster is ready, VmRSS, is not inflated by
earlier runs; its baseline is the RSS just before that cluster starts). Prints one JSON
object as the last line.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from netfault.simulator.cluster import LocalCluster
from netfault.simulator.cluster.addresses import AddressPlan
from netfault.simulator.node import ClientKey, FakeNode

NODES = 20
RUNS = 3
TARGET_READY_S = 1.0  # issue 5: 20 nodes ready to accept connections in under 1 s
BIG = 200
TARGET_BIG_READY_S = 2.0  # issue 17: 200 nodes ready in at most 2 s
IO_TIMEOUT = 10.0


async def accepts(host: str, port: int) -> None:
    async with asyncio.timeout(IO_TIMEOUT):
        _, writer = await asyncio.open_connection(host, port)
    writer.close()


async def ssh_banner(host: str, port: int) -> None:
    async with asyncio.timeout(IO_TIMEOUT):
        reader, writer = await asyncio.open_connection(host, port)
        line = await reader.readline()
    writer.close()
    if not line.startswith(b"SSH-2.0-"):
        raise RuntimeError(f"{host}:{port} sent {line!r}, not an SSH banner")


async def proxy_listens(cluster: LocalCluster) -> list[tuple[str, int]]:
    url = f"http://{cluster.faults.api_host}:{cluster.faults.api_port}/proxies"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        proxies = await response.json(content_type=None)
    out = []
    for proxy in proxies.values():
        host, _, port = proxy["listen"].rpartition(":")
        out.append((host, int(port)))
    return out


def rss_mib() -> float:
    """This process's resident memory now (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS line in /proc/self/status")


async def cluster_run(nodes: int = NODES) -> tuple[float, float, float, float]:
    """(seconds until every route accepts, seconds to stop, MiB resident when ready,
    seconds until start() returned)."""
    cluster = LocalCluster(nodes=nodes, seed=1)
    started = time.perf_counter()
    await cluster.start()
    returned = time.perf_counter() - started
    try:
        listens = await proxy_listens(cluster)
        if len(listens) != nodes * 6:
            raise RuntimeError(f"expected {nodes * 6} proxies, the API lists {len(listens)}")
        await asyncio.gather(
            *(accepts(h, p) for h, p in listens),
            *(ssh_banner(c.hostname, c.ssh_port) for c in cluster.nodes.values()),
        )
        ready = time.perf_counter() - started
        rss = rss_mib()
    finally:
        stopping = time.perf_counter()
        await cluster.stop()
        stopped = time.perf_counter() - stopping
    return ready, stopped, rss, returned


async def bare_run(nodes: int = NODES) -> tuple[float, float]:
    """The same for FakeNodes started directly, with no proxy in front."""
    plan = AddressPlan()
    keydir = Path(tempfile.mkdtemp(prefix="netfault-bench-"))
    started = time.perf_counter()
    try:
        key = await asyncio.to_thread(ClientKey.generate, keydir)
        nodes = [
            FakeNode(f"node-{i + 1}", host=plan.address("backend", i), client_keys=[key])
            for i in range(nodes)
        ]
        await asyncio.gather(*(n.start() for n in nodes))
        await asyncio.gather(
            *(accepts(n.host, n.http_port) for n in nodes),
            *(ssh_banner(n.host, n.ssh_port) for n in nodes),
        )
        ready = time.perf_counter() - started
        stopping = time.perf_counter()
        await asyncio.gather(*(n.stop() for n in nodes))
        stopped = time.perf_counter() - stopping
    finally:
        await asyncio.to_thread(shutil.rmtree, keydir, True)
    return ready, stopped


def result(
    name: str, value: float, unit: str, baseline: float | None, target: str | None, meets: bool
) -> dict[str, Any]:
    return {
        "name": name,
        "value": round(value, 1),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 1),
        "ratio": None if not baseline else round(value / baseline, 3),
        "target": target,
        "meets": meets,
    }


async def big_rows() -> list[dict[str, Any]]:
    """Ready time and resident memory of one 200-node cluster, against 200 bare nodes."""
    rss_before = rss_mib()
    ready, _, rss, returned = await cluster_run(BIG)
    bare_ready, _ = await bare_run(BIG)
    print(
        f"# {BIG} nodes: ready {ready * 1000:.0f} ms (start() returned after "
        f"{returned * 1000:.0f} ms; bare {bare_ready * 1000:.0f} ms), "
        f"RSS {rss:.0f} MiB when ready ({rss_before:.0f} MiB before)",
        file=sys.stderr,
        flush=True,
    )
    return [
        result(
            f"cluster_ready_{BIG}_nodes",
            ready * 1000,
            "ms",
            bare_ready * 1000,
            f"<= {TARGET_BIG_READY_S * 1000:.0f} ms (issue 17)",
            ready <= TARGET_BIG_READY_S,
        ),
        result(f"cluster_rss_{BIG}_nodes", rss, "MiB", rss_before, None, True),
    ]


async def main() -> None:
    await bare_run()  # warm up imports, key generation and the loopback addresses
    big = await big_rows()
    clusters = [await cluster_run() for _ in range(RUNS)]
    bares = [await bare_run() for _ in range(RUNS)]
    ready = statistics.median(c[0] for c in clusters) * 1000
    stop = statistics.median(c[1] for c in clusters) * 1000
    bare_ready = statistics.median(r for r, _ in bares) * 1000
    bare_stop = statistics.median(s for _, s in bares) * 1000
    print(
        f"# {NODES} nodes x 2 routes x 3 services = {NODES * 6} proxies; ready = start() + TCP "
        f"connect to every proxy listen port + SSH banner on every hostname ssh route; "
        f"baseline = {NODES} bare FakeNodes (connect http + SSH banner); median of {RUNS}; "
        f"cluster ready runs ms: {[round(c[0] * 1000) for c in clusters]}, "
        f"teardown ms: {[round(c[1] * 1000) for c in clusters]}",
        file=sys.stderr,
        flush=True,
    )
    results = [
        result(
            f"cluster_ready_{NODES}_nodes",
            ready,
            "ms",
            bare_ready,
            f"< {TARGET_READY_S * 1000:.0f} ms (issue 5)",
            ready < TARGET_READY_S * 1000,
        ),
        result(f"cluster_teardown_{NODES}_nodes", stop, "ms", bare_stop, None, True),
        *big,
    ]
    print(json.dumps({"bench": "cluster", "results": results}))


if __name__ == "__main__":
    asyncio.run(main())
