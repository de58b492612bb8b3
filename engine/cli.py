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
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netfault.engine.cli_args import Parser, transport_names
from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import REQUEST_KINDS, NetfaultError

if TYPE_CHECKING:  # the rest is imported when a command runs: `netfault --help` stays fast
    from rich.console import Console

    from netfault.engine.results import HttpResult
    from netfault.engine.transport import ClusterTransport

TRANSFER_CANCELLED = (
    "cancelled; the partial file is kept where the transport can resume it: "
    "run the same command again to resume"
)


@cache
def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def add_node_options(parser: argparse.ArgumentParser, *, transfer: bool, order: bool) -> None:
    """The flags that describe a node; ``transfer``/``order`` add --large/--transports."""
    group = parser.add_argument_group("node (from a hosts file, or given by flags)")
    group.add_argument("--hosts", type=Path, help="hosts file (YAML) naming the nodes")
    group.add_argument("--ssh-port", type=int, default=22, help="the node's SSH port")
    group.add_argument(
        "--http-port", type=int, default=8080, help="the port of the node's HTTP agent"
    )
    group.add_argument("--user", help="SSH user")
    group.add_argument("--key", type=Path, help="SSH private key")
    group.add_argument("--known-hosts", type=Path, help="known_hosts file for the node")
    group.add_argument("--token", help="bearer token of the node's HTTP agent")
    group.add_argument("--tailscale-ip", help="the node's second (tailscale) address")
    group.add_argument("--base-path", default="netfault", help="remote base directory")
    if order:
        group.add_argument(
            "--transports",
            type=transport_names,
            help="comma-separated transport order, e.g. ssh,http (default: the node's; "
            "see config.py, 'Failover order')",
        )
    group.add_argument("--events", type=Path, help="append the event log (JSON lines) here")
    if transfer:
        group.add_argument("--large", action="store_true", help="use the large-transfer timeouts")


def resolve_node(name: str, args: argparse.Namespace) -> NodeConfig:
    """A node from the hosts file, or one built from the flags with ``name`` as hostname."""
    if args.hosts is not None:
        from netfault.engine.hosts import load_hosts

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
    """``NODE:PATH`` split in two; control characters (a newline...) are refused up front."""
    node, sep, path = spec.partition(":")
    if not sep or not node or not path:
        raise NetfaultError(f"expected NODE:PATH, got {spec!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in spec):
        raise NetfaultError(
            f"{spec!r} contains a control character (newline, tab...), which no transport can "
            "carry safely; rename the file"
        )
    return node, path


def _transport(args: argparse.Namespace) -> ClusterTransport:
    from netfault.engine.events import JsonlEventLog
    from netfault.engine.transport import ClusterTransport

    ct = ClusterTransport()
    if args.events is not None:
        ct.events.subscribe(JsonlEventLog(args.events))
    return ct


async def _transfer(args: argparse.Namespace, direction: str) -> int:
    from netfault.engine.cli_progress import TransferDisplay

    remote_spec, local = (args.dest, args.src) if direction == "push" else (args.src, args.dest)
    node_name, remote_path = split_remote(remote_spec)
    node = resolve_node(node_name, args)
    config = TransportConfig.for_large_transfers() if args.large else None
    console = stderr_console()
    async with _transport(args) as ct:
        with TransferDisplay(console, direction, node.name) as display:
            ct.events.subscribe(display.on_event)
            result = await ct.transfer_file(
                Path(local),
                remote_path,
                node,
                direction,
                config,
                transports=args.transports,
                progress=display.progress,
            )
    if not result.success:
        console.print(f"[red]{direction} failed[/red]: {result.error}", soft_wrap=True)
        return 2 if result.error_kind in REQUEST_KINDS else 1  # the request itself is wrong
    tries = len(result.attempts)
    print(
        f"{direction}ed {result.bytes_transferred} bytes via {result.transport_used} "
        f"in {result.latency_ms:.1f} ms" + (f" ({tries} attempts)" if tries > 1 else "")
    )
    return 0


async def cmd_push(args: argparse.Namespace) -> int:
    return await _transfer(args, "push")


async def cmd_pull(args: argparse.Namespace) -> int:
    return await _transfer(args, "pull")


async def cmd_probe(args: argparse.Namespace) -> int:
    """Test every transport of a node, like the runbook's manual checks."""
    node = resolve_node(args.node, args)
    names = args.transports
    async with _transport(args) as ct:
        names = names or [t for t in ct.transports if t != "tailscale" or node.tailscale_ip]
        results = [await ct.probe_transport(node, name) for name in names]
    from rich.console import Console
    from rich.table import Table

    from netfault.engine.route_memory import route_of

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


def _body(result: HttpResult) -> object:
    """The answer's body as JSON when it is JSON (not encoded a second time), else text."""
    try:
        return result.json()
    except ValueError:
        return result.text


async def cmd_health(args: argparse.Namespace) -> int:
    """GET /health route by route; prints one JSON object listing every route tried."""
    node = resolve_node(args.node, args)
    async with _transport(args) as ct:
        result = await ct.http_request_with_failover(node, "/health")
    routes = [
        {
            "route": a.transport,
            "ok": a.success,
            "ms": round(a.duration_ms, 1),
            **({} if a.success else {"error": a.message}),
        }
        for a in result.attempts
    ]
    report: dict[str, object] = {"node": node.name, "routes": routes}
    if result.success:
        report |= {"route": result.transport_used, "status": result.status, "body": _body(result)}
        print(json.dumps(report))
        return 0
    print(json.dumps(report | {"error": result.error}))
    stderr_console().print(
        f"[red]health of {node.name} failed[/red]: {result.error}", soft_wrap=True
    )
    return 1


def register(sub: Any) -> None:
    """Add the engine's subcommands to an argparse subparsers object."""
    local = ("LOCAL", "a file on this machine")
    remote = ("NODE:REMOTE", "a node (a name in --hosts, or an address) and a path under its base")
    node = ("NODE", "a node: a name in --hosts, or an address")
    specs: list[tuple[str, Handler, str, list[tuple[str, tuple[str, str]]]]] = [
        ("push", cmd_push, "copy a local file to a node", [("src", local), ("dest", remote)]),
        ("pull", cmd_pull, "copy a file from a node", [("src", remote), ("dest", local)]),
        ("probe", cmd_probe, "test every transport of a node", [("node", node)]),
        ("health", cmd_health, "GET /health of a node's agent, route by route", [("node", node)]),
    ]
    for name, handler, help_text, positionals in specs:
        parser = sub.add_parser(
            name, help=help_text, description=help_text[0].upper() + help_text[1:] + "."
        )
        for dest, (metavar, arg_help) in positionals:
            parser.add_argument(dest, metavar=metavar, help=arg_help)
        add_node_options(parser, transfer=name in ("push", "pull"), order=name != "health")
        parser.set_defaults(handler=handler)
        if name in ("push", "pull"):
            parser.set_defaults(cancelled=f"{name} {TRANSFER_CANCELLED}")
    from netfault.engine import sync_cli

    sync_cli.register(sub)


def run_handler(args: argparse.Namespace) -> int:
    try:
        code: int = asyncio.run(args.handler(args))
    except (NetfaultError, FileNotFoundError) as exc:
        stderr_console().print(f"[red]error[/red]: {exc}", soft_wrap=True, highlight=False)
        return 2
    except KeyboardInterrupt:
        note = getattr(args, "cancelled", None) or f"{args.command} cancelled"
        stderr_console().print(f"\n{note} (Ctrl-C)", soft_wrap=True, highlight=False)
        return 130
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="netfault", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    return run_handler(args)


if __name__ == "__main__":
    sys.exit(main())
