"""Router cost per sync at 10, 1,000 and 10,000 nodes, and get_stats() at 10,000.

Syncs go through ``SyncRouter.sync_to_node`` over scripted in-memory transports (no
sockets): 4,000 syncs to random nodes, each attempt failing with probability 0.3 (seeded),
the manual clock advancing 1 s per sync so the hourly windows slide; a node that ends up
disabled is re-enabled at once and breakers never open, so every size does the same work;
one sync per node first, so the timed syncs see the steady state, not first-use set-up.
Baseline: the 10-node figure in the same run (best of 3 runs per size, sizes
interleaved). ``get_stats()`` is timed at 10,000 nodes after every node has a failure on
record. The router's own work per event (a reported p2p stall: decision, events, counters
and alert checks, no transport) is timed at 10 and 10,000 nodes. Memory per node is
measured with tracemalloc for a node whose history and failure window are full.
Run as ``python bench/router.py``; the last line printed is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from netfault.engine.clock import ManualClock
from netfault.engine.config import NodeConfig
from netfault.engine.errors import ConnectError
from netfault.engine.escalation import NodeEscalation, Policy
from netfault.engine.events import EventBus
from netfault.engine.router import TRANSPORT_ESCALATION_ORDER, SyncRouter
from netfault.engine.router_stats import RouterStats
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport
from netfault.simulator.scripted import Outcome, scripted_transports

SIZES = (10, 1_000, 10_000)
SYNCS = 4_000
RUNS = 3
FAIL_P = 0.3
TARGET_RATIO = 1.2
TARGET_STATS_MS = 10.0
THRESHOLDS = Thresholds(breaker_failure_threshold=10**9)
CHAIN = list(TRANSPORT_ESCALATION_ORDER)


def build(nodes: int, seed: int) -> tuple[SyncRouter, ManualClock]:
    rng = random.Random(seed)

    def policy(node: str, operation: str) -> Outcome:
        return ConnectError(f"{node}: refused", node=node) if rng.random() < FAIL_P else None

    clock = ManualClock()
    transports = scripted_transports(CHAIN, policy=policy)
    ct = ClusterTransport(
        transports=transports, clock=clock, thresholds=THRESHOLDS, events=EventBus(clock)
    )
    configs = [NodeConfig(hostname=f"node-{i}") for i in range(nodes)]
    return SyncRouter(ct, nodes=configs, thresholds=THRESHOLDS), clock


async def us_per_sync(nodes: int, data: Path, seed: int) -> float:
    router, clock = build(nodes, seed)
    rng = random.Random(seed + 1)
    names = [f"node-{rng.randrange(nodes)}" for _ in range(SYNCS)]
    calls = router.transport.transports["p2p"]
    for i in range(nodes):  # warm up: every node's breaker and windows exist (steady state)
        await router.sync_to_node(f"node-{i}", data, remote_path="bench.db")
        router.reenable_node(f"node-{i}")
    started = time.perf_counter()
    for name in names:
        clock.advance(1.0)
        result = await router.sync_to_node(name, data, remote_path="bench.db")
        if not result.success and router.is_disabled(name):
            router.reenable_node(name)
    elapsed = time.perf_counter() - started
    assert calls.calls, "no transport was called"
    return elapsed / SYNCS * 1e6


def us_per_stall(nodes: int, reports: int = 20_000) -> float:
    """The router's own work per event: a reported stall (decision, events, counters,
    alert checks) on random nodes, no transport involved; best of 3."""
    best = float("inf")
    for run in range(3):
        router, clock = build(nodes, run)
        rng = random.Random(run)
        picks = [f"node-{rng.randrange(nodes)}" for _ in range(reports)]
        for i in range(nodes):  # warm up: every node's failure window exists
            router.report_stall(f"node-{i}", "p2p", error="bench")
        started = time.perf_counter()
        for name in picks:  # p2p alone never exhausts a chain: every report escalates
            clock.advance(0.5)
            router.report_stall(name, "p2p", error="bench")
        best = min(best, time.perf_counter() - started)
    return best / reports * 1e6


def stats_ms(nodes: int) -> float:
    router, clock = build(nodes, 0)
    for i in range(nodes):
        router.report_stall(f"node-{i}", "p2p", error="bench")
    clock.advance(60.0)
    best = float("inf")
    for _ in range(7):
        started = time.perf_counter()
        stats = router.get_stats()
        best = min(best, time.perf_counter() - started)
    assert len(stats["transport_failures_last_hour"]) == nodes
    return best * 1e3


def bytes_per_full_node(nodes: int = 500) -> float:
    """tracemalloc bytes of the router's per-node state (escalation machine and hourly
    failure window, each full, every error message distinct); the NodeConfig and the
    node's breaker are the caller's and the transport's, not counted here."""
    clock = ManualClock()
    cap = THRESHOLDS.transport_history_size
    policy = Policy(history_size=cap)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    stats = RouterStats(clock, EventBus(clock), cap)
    machines = []
    for i in range(nodes):
        machine = NodeEscalation(f"node-{i}", TRANSPORT_ESCALATION_ORDER, policy, clock)
        for k in range(cap):
            machine.stalled("p2p", f"p2p@node-{i}: connection refused (attempt {k})")
            stats.record_failure(machine.name)
        machines.append(machine)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return sum(s.size_diff for s in after.compare_to(before, "filename")) / nodes


def row(name: str, value: float, unit: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "value": round(value, 2), "unit": unit}
    out.update({"baseline": None, "ratio": None, "target": None, "meets": None})
    out.update(extra)
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "bench.db"
        data.write_bytes(b"rows" * 64)
        cost = dict.fromkeys(SIZES, float("inf"))
        for r in range(RUNS):  # sizes interleaved, so a load change on the machine hits all
            for n in SIZES:
                cost[n] = min(cost[n], asyncio.run(us_per_sync(n, data, r)))
    base = cost[SIZES[0]]
    results = []
    for n in SIZES:
        ratio = cost[n] / base
        print(f"{n:>6} nodes: {cost[n]:8.1f} us/sync ({ratio:.2f}x)", file=sys.stderr)
        target = TARGET_RATIO if n == SIZES[-1] else None
        meets = ratio <= TARGET_RATIO if target else None
        results.append(
            row(
                f"us_per_sync_{n}_nodes",
                cost[n],
                "us",
                baseline=round(base, 2),
                ratio=round(ratio, 3),
                target=target,
                meets=meets,
            )
        )
    stall = {n: us_per_stall(n) for n in (SIZES[0], SIZES[-1])}
    ratio = stall[SIZES[-1]] / stall[SIZES[0]]
    print(
        f"reported stall: {stall[SIZES[0]]:.1f} us at {SIZES[0]} nodes, "
        f"{stall[SIZES[-1]]:.1f} us at {SIZES[-1]} ({ratio:.2f}x)",
        file=sys.stderr,
    )
    results.append(
        row(
            f"us_per_reported_stall_{SIZES[-1]}_nodes",
            stall[SIZES[-1]],
            "us",
            baseline=round(stall[SIZES[0]], 2),
            ratio=round(ratio, 3),
            target=TARGET_RATIO,
            meets=ratio <= TARGET_RATIO,
        )
    )
    ms = stats_ms(SIZES[-1])
    print(f"get_stats() at {SIZES[-1]} nodes: {ms:.2f} ms", file=sys.stderr)
    results.append(
        row(
            f"get_stats_ms_{SIZES[-1]}_nodes",
            ms,
            "ms",
            target=TARGET_STATS_MS,
            meets=ms <= TARGET_STATS_MS,
        )
    )
    per_node = bytes_per_full_node()
    print(f"memory per node at full history: {per_node:,.0f} bytes", file=sys.stderr)
    results.append(row("bytes_per_node_full_history", per_node, "bytes"))
    print(json.dumps({"bench": "router", "results": results}))


if __name__ == "__main__":
    main()
