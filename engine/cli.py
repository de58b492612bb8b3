"""The engine's command line: push, pull, probe and health of cluster nodes.

Also reachable as ``python -m netfault.engine.cli``; the ``netfault`` command adds the
simulator's commands on top of these.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import REQUEST_KINDS, NetfaultError
from netfault.engine.events import JsonlEventLog
from netfault.engine.hosts import load_hosts
from netfault.engine.route_memory import route_of
from netfault.engine.transport import ClusterTransport

console = Console(stderr=True)
Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def add_node_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("node (from a hosts file, or given by flags)")
    group.add_argument("--hosts", type=Path, help="hosts file (YAML) naming the nodes")
    group.add_argument("--ssh-port", type=int, default=22)
    group.add_argument("--http-port", type=int, default=8080)
    group.add_argument("--user", help="SSH user")
    group.add_argument("--key", type=Path, help="SSH private key")
    group.add_argument("--known-hosts", type=Path, help="known_hosts file for the node")
    group.add_argument("--token", help="bearer token of the node's HTTP agent")
    group.add_argument("--tailscale-ip", help="the node's second (tailscale) address")
    group.add_argument("--base-path", default="netfault", help="remote base directory")
    group.add_argument(
        "--transports",
        help="comma-separated transport order (default: the node's; see config.py, "
        "'Failover order')",
    )
    group.add_argument("--events", type=Path, help="append the event log (JSON lines) here")
    group.add_argument("--large", action="store_true", help="use the large-transfer timeouts")


def resolve_node(name: str, args: argparse.Namespace) -> NodeConfig:
    """A node from the hosts file, or one built from the flags with ``name`` as hostname."""
    if args.hosts is not None:
        nodes = load_hosts(args.hosts)
        if name not in nodes:
            raise NetfaultError(f"node {name!r} is not in {args.hosts} (has: {sorted(nodes)})")
        return nodes[name]
    return NodeConfig(
        hostname=name,
        ssh_port=args.ssh_port,
        http_port=args.http_port,
        ssh_user=args.user,
        ssh_key=args.key,
        known_hosts=args.known_hosts,
        http_token=args.token,
        tailscale_ip=args.tailscale_ip,
        base_path=args.base_path,
    )


def split_remote(spec: str) -> tuple[str, str]:
    node, sep, path = spec.partition(":")
    if not sep or not node or not path:
        raise NetfaultError(f"expected NODE:PATH, got {spec!r}")
    return node, path


def _transport(args: argparse.Namespace) -> ClusterTransport:
    ct = ClusterTransport()
    if args.events is not None:
        ct.events.subscribe(JsonlEventLog(args.events))
    return ct


async def _transfer(args: argparse.Namespace, direction: str) -> int:
    remote_spec, local = (args.dest, args.src) if direction == "push" else (args.src, args.dest)
    node_name, remote_path = split_remote(remote_spec)
    node = resolve_node(node_name, args)
    config = TransportConfig.for_large_transfers() if args.large else None
    order = args.transports.split(",") if args.transports else None
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    async with _transport(args) as ct:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"{direction} {node.name}", total=None)

            def progress(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            result = await ct.transfer_file(
                Path(local),
                remote_path,
                node,
                direction,
                config,
                transports=order,
                progress=progress,
            )
    for attempt in result.attempts:
        mark = "ok" if attempt.success else f"failed ({attempt.error_kind}): {attempt.message}"
        console.print(f"  {attempt.transport:<10} {attempt.duration_ms:8.1f} ms  {mark}")
    if not result.success:
        console.print(f"[red]{direction} failed[/red]: {result.error}")
        return 2 if result.error_kind in REQUEST_KINDS else 1  # the request itself is wrong
    print(
        f"{direction}ed {result.bytes_transferred} bytes via {result.transport_used} "
        f"in {result.latency_ms:.1f} ms"
    )
    return 0


async def cmd_push(args: argparse.Namespace) -> int:
    return await _transfer(args, "push")


async def cmd_pull(args: argparse.Namespace) -> int:
    return await _transfer(args, "pull")


async def cmd_probe(args: argparse.Namespace) -> int:
    """Test every transport of a node, like the runbook's manual checks."""
    node = resolve_node(args.node, args)
    names = args.transports.split(",") if args.transports else None
    async with _transport(args) as ct:
        names = names or [t for t in ct.transports if t != "tailscale" or node.tailscale_ip]
        results = [await ct.probe_transport(node, name) for name in names]
    table = Table(title=f"transports of {node.name}")
    for column in ("transport", "route", "result", "ms", "detail"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r.transport,
            str(route_of(r.transport)),
            "[green]OK[/green]" if r.success else "[red]FAILED[/red]",
            f"{r.latency_ms:.1f}",
            r.message,
        )
    out = Console()
    out.print(table)
    for route, status in ct.routes.summary().get(node.name, {}).items():
        out.print(
            f"route {route} demoted ({status.last_error}): operations try it last "
            f"for the next {status.retry_in:.0f} s"
        )
    return 0 if all(r.success for r in results) else 1


async def cmd_health(args: argparse.Namespace) -> int:
    node = resolve_node(args.node, args)
    async with _transport(args) as ct:
        result = await ct.http_request_with_failover(node, "/health")
    if result.success:
        print(
            json.dumps(
                {
                    "node": node.name,
                    "route": result.transport_used,
                    "status": result.status,
                    "body": result.text,
                }
            )
        )
        return 0
    console.print(f"[red]health of {node.name} failed[/red]: {result.error}")
    return 1


def register(sub: Any) -> None:
    """Add the engine's subcommands to an argparse subparsers object."""
    specs: list[tuple[str, Handler, str, list[tuple[str, str]]]] = [
        (
            "push",
            cmd_push,
            "copy a local file to a node",
            [("src", "LOCAL"), ("dest", "NODE:REMOTE")],
        ),
        ("pull", cmd_pull, "copy a file from a node", [("src", "NODE:REMOTE"), ("dest", "LOCAL")]),
        ("probe", cmd_probe, "test every transport of a node", [("node", "NODE")]),
        ("health", cmd_health, "GET /health with failover", [("node", "NODE")]),
    ]
    for name, handler, help_text, positionals in specs:
        parser = sub.add_parser(name, help=help_text)
        for dest, metavar in positionals:
            parser.add_argument(dest, metavar=metavar)
        add_node_options(parser)
        parser.set_defaults(handler=handler)
    from netfault.engine import sync_sqlite

    sync_sqlite.register(sub)


def run_handler(args: argparse.Namespace) -> int:
    try:
        code: int = asyncio.run(args.handler(args))
    except NetfaultError as exc:
        console.print(f"[red]error[/red]: {exc}")
        return 2
    except FileNotFoundError as exc:
        console.print(f"[red]error[/red]: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netfault", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    return run_handler(args)


if __name__ == "__main__":
    sys.exit(main())
