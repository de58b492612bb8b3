"""Where the client, the echo server and the proxy run: 64-byte round trips with each pinned.

A round trip through a relay is a chain of hand-overs: client -> proxy -> server -> proxy ->
client. On a VM a hand-over to a task on another vCPU wakes that vCPU from halt (no guest
halt polling here); a hand-over on one vCPU is a context switch. This bench pins the three
processes (sched_setaffinity) in each placement and measures the round trip through
`netfault-proxy` with its busy-poll window (-spin-us 200) and without (0), and direct, to
show what the proxy's added latency is made of. Informational: no targets. Needs 2 CPUs.
Prints one JSON object as the last line.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
from typing import Any

from proxy import WARM_UP, _echo_once, echo_process, proxied
from support.proxy import result, start_proxy

ROUND_TRIPS = 3000
ROUNDS = 3
BOTH = {0, 1}
# (name, client CPUs, echo server CPUs, proxy CPUs)
PLACEMENTS = [
    ("unpinned", BOTH, BOTH, BOTH),
    ("all_on_cpu0", {0}, {0}, {0}),
    ("proxy_alone_on_cpu1", {0}, {0}, {1}),
    ("server_alone_on_cpu1", {0}, {1}, {0}),
]


def pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of process `pid` to `cpus`."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:
            pass  # a thread that ended meanwhile


def p50_p99(port: int) -> tuple[float, float]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(WARM_UP):
            _echo_once(sock)
        got = sorted(_echo_once(sock) for _ in range(ROUND_TRIPS))
    return statistics.median(got), got[int(len(got) * 0.99)]


def main() -> None:
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("proxy_placement.py needs 2 CPUs")
    echo, echo_port = echo_process()
    spin, spin_base = start_proxy("-spin-us", "200")
    still, still_base = start_proxy("-spin-us", "0")
    proxies = {
        "spin": (spin.pid, proxied(spin_base, "spin", echo_port, [])),
        "still": (still.pid, proxied(still_base, "still", echo_port, [])),
    }
    runs: dict[str, list[tuple[float, float]]] = {}
    try:
        for _ in range(ROUNDS):  # every placement once per round, so load drifts evenly
            for place, client_cpus, echo_cpus, proxy_cpus in PLACEMENTS:
                pin(os.getpid(), client_cpus)
                pin(echo.pid, echo_cpus)
                runs.setdefault(f"direct_{place}", []).append(p50_p99(echo_port))
                for name, (pid, port) in proxies.items():
                    pin(pid, proxy_cpus)
                    runs.setdefault(f"{name}_{place}", []).append(p50_p99(port))
    finally:
        pin(os.getpid(), BOTH)
        for child in (spin, still, echo):
            child.terminate()
            child.wait(timeout=20)
    print(
        f"# {ROUND_TRIPS} 64-byte echo round trips after {WARM_UP} of warm-up, per placement, "
        f"{ROUNDS} rounds taking turns; p50 is the best round, p99 the median round; direct "
        "pins the client and the server as placed (the proxy's CPUs do not apply)",
        file=sys.stderr,
    )
    rows: list[dict[str, Any]] = []
    for name, got in runs.items():
        kind, place = name.split("_", 1)
        direct = runs[f"direct_{place}"]  # a proxy's baseline: direct in the same placement
        p50, p99 = min(run[0] for run in got), statistics.median(run[1] for run in got)
        base50 = None if kind == "direct" else min(run[0] for run in direct)
        base99 = None if kind == "direct" else statistics.median(run[1] for run in direct)
        print(f"# {name}: p50 per round {[round(run[0]) for run in got]}", file=sys.stderr)
        rows.append(result(f"rtt_p50_{name}", p50, "us", base50, "informational", True))
        rows.append(result(f"rtt_p99_{name}", p99, "us", base99, "informational", True))
    print(json.dumps({"bench": "proxy_placement", "results": rows}))


if __name__ == "__main__":
    main()
