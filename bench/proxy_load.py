"""Fault proxy under load: 1,000 concurrent connections through one proxy process with a
latency and a bandwidth toxic, 1 MiB each, every byte verified by its SHA-256.

Reports the proxy's peak RSS and fds, and that its fds return to the baseline once every
connection has closed. Baseline: the same load straight to the upstream, in the same run.
Prints one JSON object as the last line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from support.proxy import api, result, start_proxy

from netfault.simulator.proxy.load import (
    DigestSink,
    LoadResult,
    ProcessUsage,
    process_usage,
    run_load,
)

CONNECTIONS = int(os.environ.get("BENCH_PROXY_LOAD_CONNS", 1000))
SIZE = 1 << 20
LATENCY_MS = 50
RATE_KBPS = 2000  # per connection: 1 MiB takes at least 0.52 s
WITHIN = 100.0  # seconds the load may take before the bench gives up
MIB = 1 << 20


def fds_settle(pid: int, expected: int, within: float) -> int:
    """Wait until the proxy holds `expected` fds (or `within` passes); the count then."""
    deadline = time.monotonic() + within
    while (fds := process_usage(pid).fds) != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return fds


@dataclass(frozen=True)
class Measured:
    direct: LoadResult  # the same load without the proxy
    through: LoadResult
    idle: ProcessUsage  # the proxy before the load
    busy: ProcessUsage  # right after the load (its peak RSS is the run's)
    idle_fds: int  # the proxy's fds with its listener, before the load
    peak_fds: int  # once all the connections are open at once
    fds_after: int  # once every connection has closed


async def measure(pid: int, base: str) -> Measured:
    sink = DigestSink()
    upstream = await sink.start()
    try:
        direct = await run_load(upstream, CONNECTIONS, SIZE, within=WITHIN)
        # fds before any API request (whose socket may linger a moment) + the new listener
        expected_fds = process_usage(pid).fds + 1
        made = api(base, "POST", "/proxies", {"name": "load", "upstream": f"127.0.0.1:{upstream}"})
        port = int(made["listen"].rsplit(":", 1)[1])
        for toxic in (
            {"type": "latency", "stream": "upstream", "attributes": {"latency": LATENCY_MS}},
            {"type": "bandwidth", "stream": "upstream", "attributes": {"rate": RATE_KBPS}},
        ):
            api(base, "POST", "/proxies/load/toxics", toxic)
        idle = process_usage(pid)
        peak = [expected_fds]
        accepted = sink.accepted

        async def all_open() -> None:
            await sink.wait_accepted(accepted + CONNECTIONS)
            peak[0] = process_usage(pid).fds  # every connection is open through the proxy

        through = await run_load(port, CONNECTIONS, SIZE, within=WITHIN, all_open=all_open)
        busy = process_usage(pid)
        after = await asyncio.to_thread(fds_settle, pid, expected_fds, 30.0)
    finally:
        await sink.close()
    return Measured(direct, through, idle, busy, expected_fds, peak[0], after)


def rows(m: Measured) -> list[dict[str, Any]]:
    direct, through = m.direct, m.through
    floor = SIZE / (RATE_KBPS * 1000) + LATENCY_MS / 1000
    n = CONNECTIONS
    return [
        result(
            f"load_{n}_connections_verified",
            through.verified,
            "connections",
            direct.verified,
            f"== {n}: every byte delivered and its SHA-256 matched",
            through.verified == n,
        ),
        result(
            f"load_{n}_connections_seconds",
            through.seconds,
            "s",
            direct.seconds,
            f"informational (toxics' floor {floor:.2f} s per connection)",
            True,
        ),
        result(
            "proxy_peak_rss",
            m.busy.peak_rss_bytes / MIB,
            "MiB",
            m.idle.rss_bytes / MIB,
            "informational (baseline: the idle proxy)",
            True,
        ),
        result(
            "proxy_peak_fds",
            m.peak_fds,
            "fds",
            m.idle_fds,
            f"informational, with all {n} open (2 per connection + the idle proxy's)",
            True,
        ),
        result(
            "proxy_fds_after_close",
            m.fds_after,
            "fds",
            m.idle_fds,
            "== baseline (every socket closed)",
            m.fds_after == m.idle_fds,
        ),
    ]


def main() -> None:
    proc, base = start_proxy()
    try:
        measured = asyncio.run(measure(proc.pid, base))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    through = measured.through
    print(
        f"# {CONNECTIONS} connections at once, {SIZE} bytes each, through one netfault-proxy "
        f"process with latency {LATENCY_MS} ms and bandwidth {RATE_KBPS} KB/s per connection "
        f"on the upstream stream; baseline = the same load straight to the digest sink; "
        f"failures: {list(through.failures)}",
        file=sys.stderr,
        flush=True,
    )
    print(json.dumps({"bench": "proxy_load", "results": rows(measured)}))


if __name__ == "__main__":
    main()
