"""Run one fake node in the foreground until SIGTERM/SIGINT (the node container's entrypoint).

``netfault node --name node-1`` (or ``python -m netfault.simulator.node.serve``) listens on
127.0.0.1 and free ports; another address needs ``--allow-remote``. Once every server listens
it prints one JSON line on stdout, the readiness signal for whoever started it:
``{"event": "ready", "node": ..., "ssh_port": ..., "http_port": ..., "admin_port": ...}``
(real ports), then on stderr a hosts file that reaches the node (or writes it to --hosts-out).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netfault.engine.cli_args import Parser, node_home, output_file
from netfault.simulator.node.errors import NodeStartError
from netfault.simulator.node.faults import SSH_SERVERS

if TYPE_CHECKING:  # imported when the node starts, so `netfault --help` stays fast
    from netfault.simulator.node.node import FakeNode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="node name (shown by /health)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; a non-loopback address also needs --allow-remote",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow --host to be reachable from other machines (the node runs a real shell "
        "for anyone holding the client key)",
    )
    parser.add_argument("--ssh-port", type=int, default=0, help="SSH port (0: any free port)")
    parser.add_argument(
        "--http-port", type=int, default=0, help="HTTP agent port (0: any free port)"
    )
    parser.add_argument(
        "--admin-port",
        type=int,
        default=0,
        help="admin API port (/faults, never faulted; 0: any free port, -1: none)",
    )
    parser.add_argument(
        "--p2p-port",
        type=int,
        default=0,
        help="p2p endpoint port, the agent served a second time (0: any free port, -1: none)",
    )
    parser.add_argument(
        "--home", type=node_home, help="node home directory (default: a temporary directory)"
    )
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
    parser.add_argument(
        "--hosts-out",
        type=output_file,
        metavar="FILE",
        help="write a hosts file for this node to FILE (default: print the entry on stderr)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m netfault.simulator.node.serve", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    return parser


def register(subparsers: Any) -> None:
    """Add the ``node`` subcommand to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "node",
        help="run one fake node in the foreground",
        description="Run one fake node (SSH server and HTTP agent over a sandbox home) in the "
        "foreground until Ctrl-C; it listens on 127.0.0.1 and free ports unless told otherwise.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=serve)


def build_node(args: argparse.Namespace) -> FakeNode:
    """The FakeNode the flags describe; OSError/ValueError for unreadable or bad files."""
    from netfault.simulator.node.keys import load_or_create_host_key, read_authorized_keys
    from netfault.simulator.node.node import FakeNode

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
        p2p_port=None if args.p2p_port < 0 else args.p2p_port,
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
        "p2p_port": node.p2p_port,
        "ssh_user": node.user,
        "known_hosts": str(node.known_hosts_path),
        "home": str(node.home),
    }
    if args.authorized_key_file is None:
        info["client_key"] = str(node.client_key.private_path)
    if args.token_file is None:
        info["token"] = node.token
    return json.dumps(info)


def hosts_entry(node: FakeNode, args: argparse.Namespace) -> str:
    """The hosts file (YAML) that reaches this node; keys and token only where they are known."""
    import yaml

    from netfault.simulator.cluster.routes import hosts_file_data

    config = node.node_config()
    if args.authorized_key_file is not None:
        config = config.with_changes(ssh_key=None)
    if args.token_file is not None:
        config = config.with_changes(http_token=None)
    return yaml.safe_dump(hosts_file_data({node.name: config}), sort_keys=False)


def check_bind(args: argparse.Namespace) -> str | None:
    """An error if --host reaches beyond this machine without --allow-remote, else a warning."""
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if loopback:
        return None
    if not args.allow_remote:
        raise NodeStartError(
            f"--host {args.host} would let other machines reach this node's shell; "
            "add --allow-remote if that is intended (default: 127.0.0.1)"
        )
    return (
        f"netfault node: warning: listening on {args.host}: any machine that can reach it and "
        "holds the client key gets a shell in the node's home"
    )


def announce(node: FakeNode, args: argparse.Namespace) -> None:
    """The hosts file (written or on stderr), then the ready line: ready means usable."""
    entry = hosts_entry(node, args)
    if args.hosts_out is not None:
        args.hosts_out.write_text(entry)
        print(f"netfault node: hosts file written to {args.hosts_out}", file=sys.stderr)
    else:
        print(
            f"netfault node: {node.name} is ready; a hosts file for it:\n{entry}", file=sys.stderr
        )
    sys.stderr.flush()
    print(ready_line(node, args), flush=True)


async def serve(args: argparse.Namespace) -> int:
    """Start the node, print the ready line, stop cleanly on SIGTERM or SIGINT."""
    try:
        warning = check_bind(args)
        node = await asyncio.to_thread(build_node, args)
    except (OSError, ValueError, NodeStartError) as exc:
        print(f"netfault node: {exc}", file=sys.stderr)
        return 2
    if warning:
        print(warning, file=sys.stderr)
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
        announce(node, args)
        await stop.wait()
        print(f"netfault node: stopping {node.name}; {cleanup_note(node, args)}", file=sys.stderr)
    finally:
        await node.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    print(f"netfault node: {node.name} stopped", file=sys.stderr)
    return 0


def cleanup_note(node: FakeNode, args: argparse.Namespace) -> str:
    if args.home is None:
        return f"removing its temporary home {node.home} (large files take a while)"
    return f"its home {node.home} is kept"


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(serve(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
