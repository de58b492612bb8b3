"""netfault-proxy: a drop-in for toxiproxy-server (same flags), in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Coroutine
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from netfault.simulator.proxy.api import TOXIPROXY_VERSION
from netfault.simulator.proxy.errors import ApiError, ProxyError
from netfault.simulator.proxy.server import ProxyServer
from netfault.simulator.proxy.spin import DEFAULT_SPIN_US


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netfault-proxy",
        description="Toxiproxy-compatible fault proxy (HTTP API and toxics of Toxiproxy 2.x).",
    )
    parser.add_argument("-host", "--host", default="localhost", help="API host (localhost)")
    parser.add_argument("-port", "--port", type=int, default=8474, help="API port (8474)")
    parser.add_argument(
        "-config",
        "--config",
        default=None,
        help="JSON file in /populate format: proxies to create at start",
    )
    parser.add_argument("-seed", "--seed", type=int, default=None, help="seed for every fault")
    parser.add_argument(
        "-proxy-metrics",
        "--proxy-metrics",
        action="store_true",
        help="serve Prometheus byte counters per proxy and direction at GET /metrics",
    )
    parser.add_argument(
        "-spin-us",
        "--spin-us",
        type=_non_negative,
        default=DEFAULT_SPIN_US,
        help=f"poll this many us after traffic, for lower latency ({DEFAULT_SPIN_US}; 0 = off)",
    )
    parser.add_argument(
        "-events",
        "--events",
        type=_non_negative,
        default=0,
        help="keep the last N fault events for GET /events (0 = off until POST /events)",
    )
    parser.add_argument(
        "-runtime-metrics",
        "--runtime-metrics",
        action="store_true",
        help="accepted as toxiproxy-server accepts it; no runtime metrics are served",
    )
    parser.add_argument("-version", "--version", action="store_true", help="print the version")
    return parser


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {value}")
    return value


def _own_version() -> str:
    try:
        return version("netfault")
    except PackageNotFoundError:
        return "unknown"


async def _serve(args: argparse.Namespace) -> int:
    server = ProxyServer(
        args.host,
        args.port,
        seed=args.seed,
        metrics=args.proxy_metrics,
        spin_us=args.spin_us,
        events=args.events,
    )
    try:
        await server.start()
    except ProxyError as exc:
        print(f"netfault-proxy: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(
        f"netfault-proxy: API listening on {server.api_url} (seed {server.seed})",
        file=sys.stderr,
        flush=True,
    )
    if args.config:
        # Like toxiproxy-server, a bad config file is reported and the server keeps running.
        try:
            proxies = await server.load_config(args.config)
        except (ApiError, OSError, ValueError) as exc:
            print(f"netfault-proxy: config {args.config}: {exc}", file=sys.stderr, flush=True)
        else:
            print(f"netfault-proxy: populated {len(proxies)} proxies", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await server.aclose()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.version:
        print(f"netfault-proxy {_own_version()} (Toxiproxy API {TOXIPROXY_VERSION})")
        return 0
    return run_fast(_serve(args))


def run_fast(main: Coroutine[Any, Any, int]) -> int:
    """asyncio.run, on uvloop when it is installed (the data path moves ~2x more on it)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    result: int = uvloop.run(main)
    return result


if __name__ == "__main__":
    sys.exit(main())
