"""Cost of a dead preferred route: 1 MiB push time when the tailscale route is broken.

For each way the tailscale route can break (blackholed, refusing, resetting right after the
TCP connect), a fresh ``ClusterTransport`` pushes a 1 MiB file to a LocalCluster node six
times with the default order (tailscale, ssh, ...): the first push, then the mean of the next
five; then the same for syncs driven by a ``SyncRouter`` (chain tailscale, ssh, base64)
with the route blackholed. The baseline is the working route's own time: the same push with
``transports=["ssh"]`` (median of five), measured in the same run. Targets: first push <=
baseline + race_delay + 0.2 s; later pushes <= baseline + 0.1 s. Prints one JSON line last:
``{"bench": "failover", "results": [{"name", "value", "unit", "baseline", "ratio", ...}]}``.
Usage: ``python bench/failover.py [--connect-timeout 10] [--race-delay 0.5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netfault.engine.config import TransportConfig
from netfault.engine.router import SyncRouter
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport
from netfault.simulator.cluster import LocalCluster

NODE = "node-1"
LATER = 5
ROUTER_CHAIN = ("tailscale", "ssh", "base64")


@dataclass(frozen=True)
class Breakage:
    name: str
    fault: str
    params: dict[str, Any]


BREAKAGES = [
    Breakage("blackholed", "timeout", {}),
    Breakage("refusing", "down", {}),
    Breakage("reset_after_connect", "reset", {"after_bytes": 0}),
]


async def push_time(
    ct: ClusterTransport, cluster: LocalCluster, src: Path, transports: list[str] | None
) -> tuple[float, list[str]]:
    started = time.perf_counter()
    result = await ct.transfer_file(src, "bench.bin", cluster.node(NODE), transports=transports)
    seconds = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"push failed: {result.error}")
    return seconds, result.transports_tried


async def baseline(cluster: LocalCluster, src: Path, config: TransportConfig) -> float:
    async with ClusterTransport(config=config, thresholds=Thresholds()) as ct:
        await push_time(ct, cluster, src, ["ssh"])  # warm-up: imports, ciphers
        times = [(await push_time(ct, cluster, src, ["ssh"]))[0] for _ in range(5)]
    return statistics.median(times)


async def broken(
    cluster: LocalCluster, src: Path, config: TransportConfig, breakage: Breakage
) -> tuple[float, float, list[str], list[str]]:
    fault = cluster.faults.apply(breakage.fault, NODE, route="tailscale", **breakage.params)
    try:
        async with ClusterTransport(config=config, thresholds=Thresholds()) as ct:
            first, first_tried = await push_time(ct, cluster, src, None)
            later = [await push_time(ct, cluster, src, None) for _ in range(LATER)]
    finally:
        cluster.faults.clear(fault)
    return first, statistics.mean(t for t, _ in later), first_tried, later[-1][1]


async def routed(
    cluster: LocalCluster, src: Path, config: TransportConfig
) -> tuple[float, float, list[str], list[str]]:
    """``broken`` (blackholed) through a SyncRouter whose chain is tailscale, ssh, base64."""
    fault = cluster.faults.apply("timeout", NODE, route="tailscale")
    try:
        async with ClusterTransport(config=config, thresholds=Thresholds()) as ct:
            router = SyncRouter(ct, nodes=[cluster.node(NODE)], escalation_order=ROUTER_CHAIN)
            times: list[tuple[float, list[str]]] = []
            for _ in range(1 + LATER):
                started = time.perf_counter()
                result = await router.sync_to_node(NODE, src, remote_path="bench.bin")
                if not result.success:
                    raise SystemExit(f"sync failed: {result.error}")
                times.append((time.perf_counter() - started, result.transports_tried))
    finally:
        cluster.faults.clear(fault)
    later = times[1:]
    return times[0][0], statistics.mean(t for t, _ in later), times[0][1], later[-1][1]


def row(name: str, value: float, base: float, target: float) -> dict[str, Any]:
    return {
        "name": name,
        "value": round(value, 4),
        "unit": "s",
        "baseline": round(base, 4),
        "ratio": round(value / base, 3),
        "target": round(target, 4),
        "meets": value <= target,
    }


async def main(connect_timeout: float, race_delay: float) -> None:
    config = TransportConfig(
        connect_timeout=connect_timeout, operation_timeout=60.0, race_delay=race_delay
    )
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "one-mib.bin"
        src.write_bytes(bytes(range(256)) * 4096)
        async with LocalCluster(nodes=1, seed=1) as cluster:
            base = await baseline(cluster, src, config)
            for breakage in BREAKAGES:
                first, later, first_tried, later_tried = await broken(
                    cluster, src, config, breakage
                )
                print(
                    f"{breakage.name}: first {first:.3f}s via {first_tried}, "
                    f"later {later:.3f}s via {later_tried}; baseline {base:.3f}s"
                )
                results.append(
                    row(f"{breakage.name}_first_push", first, base, base + race_delay + 0.2)
                )
                results.append(row(f"{breakage.name}_later_push_mean", later, base, base + 0.1))
            first, later, first_tried, later_tried = await routed(cluster, src, config)
            print(
                f"router_blackholed: first {first:.3f}s via {first_tried}, "
                f"later {later:.3f}s via {later_tried}; baseline {base:.3f}s"
            )
            results.append(
                row("router_blackholed_first_sync", first, base, base + race_delay + 0.2)
            )
            results.append(row("router_blackholed_later_sync_mean", later, base, base + 0.1))
    print(json.dumps({"bench": "failover", "results": results}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    parser.add_argument("--race-delay", type=float, default=0.5)
    args = parser.parse_args()
    asyncio.run(main(args.connect_timeout, args.race_delay))
