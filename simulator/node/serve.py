"""Run one fake node in the foreground until SIGTERM/SIGINT (the node container's entrypoint).

``python -m netfault.simulator.node.serve --name node-1 --host 0.0.0.0 --token-file F ...``
or ``netfault node ...``. Once both servers listen it prints one JSON line
``{"event": "ready", "node": ..., "ssh_port": ..., "http_port": ..., "admin_port": ...}``
(real ports, so ``0`` works), the readiness signal for whoever started it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from netfault.simulator.node.errors import NodeStartError
from netfault.simulator.node.keys import load_or_create_host_key, read_authorized_keys
from netfault.simulator.node.node import SSH_SERVERS, FakeNode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="node name (shown by /health)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--ssh-port", type=int, default=22, help="SSH port (0: any free)")
    parser.add_argument("--http-port", type=int, default=8080, help="HTTP agent port")
    parser.add_argument(
        "--admin-port",
        type=int,
        default=8081,
        help="admin API port (/faults, never faulted); -1 to disable",
    )
    parser.add_argument("--home", type=Path, help="node home (default: a temporary directory)")
    parser.add_argument(
        "--user",
        help="SSH user name to accept (default: netfault; openssh: only the current user)",
    )
    parser.add_argument(
        "--ssh-server",
        choices=SSH_SERVERS,
        default="asyncssh",
        help="SSH server: asyncssh (in process, every node fault) or openssh (the real sshd, "
        "from the openssh-server package)",
    )
    parser.add_argument(
        "--authorized-key-file",
        type=Path,
        help="OpenSSH authorized_keys file (default: generate a client key and print its path)",
    )
    parser.add_argument(
        "--token-file", type=Path, help="file holding the HTTP bearer token (default: random)"
    )
    parser.add_argument(
        "--host-key-dir",
        type=Path,
        help="directory keeping ssh_host_ed25519_key, created if missing (default: new key)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m netfault.simulator.node.serve", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    return parser


def register(subparsers: Any) -> None:
    """Add the ``node`` subcommand to an argparse subparsers object."""
    parser = subparsers.add_parser("node", help="run one fake node in the foreground")
    add_arguments(parser)
    parser.set_defaults(handler=serve)


def build_node(args: argparse.Namespace) -> FakeNode:
    """The FakeNode the flags describe; OSError/ValueError for unreadable or bad files."""
    token = args.token_file.read_text().strip() if args.token_file else None
    if args.token_file and not token:
        raise ValueError(f"{args.token_file} is empty; write the bearer token into it")
    authorized = read_authorized_keys(args.authorized_key_file) if args.authorized_key_file else []
    host_key = load_or_create_host_key(args.host_key_dir) if args.host_key_dir else None
    return FakeNode(
        args.name,
        host=args.host,
        ssh_port=args.ssh_port,
        http_port=args.http_port,
        admin_port=None if args.admin_port < 0 else args.admin_port,
        home=args.home,
        token=token,
        user=args.user,
        authorized_keys=authorized,
        host_key=host_key,
        ssh_server=args.ssh_server,
    )


def ready_line(node: FakeNode, args: argparse.Namespace) -> str:
    info: dict[str, Any] = {
        "event": "ready",
        "node": node.name,
        "host": node.host,
        "ssh_port": node.ssh_port,
        "http_port": node.http_port,
        "admin_port": node.admin_port,
        "home": str(node.home),
    }
    if args.authorized_key_file is None:
        info["client_key"] = str(node.client_key.private_path)
    if args.token_file is None:
        info["token"] = node.token
    return json.dumps(info)


async def serve(args: argparse.Namespace) -> int:
    """Start the node, print the ready line, stop cleanly on SIGTERM or SIGINT."""
    try:
        node = await asyncio.to_thread(build_node, args)
    except (OSError, ValueError) as exc:
        print(f"netfault node: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await node.start()
        except NodeStartError as exc:
            print(f"netfault node: {exc}", file=sys.stderr)
            return 1
        print(ready_line(node, args), flush=True)
        await stop.wait()
    finally:
        await node.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(serve(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
