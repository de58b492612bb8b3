"""The ``netfault`` command: the engine's commands plus the simulator's."""

from __future__ import annotations

import argparse
import logging
import sys

from netfault.engine import cli as engine_cli
from netfault.engine.cli_args import Parser
from netfault.simulator import run_cli
from netfault.simulator.node import serve


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="netfault",
        description="Failover transports for cluster nodes, and a network-fault harness.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    run_cli.register(sub)
    engine_cli.register(sub)
    serve.register(sub)
    demo = sub.add_parser(
        "demo",
        help="show failover against an embedded fake node",
        description="A one-screen tour: the engine against one fake node on 127.0.0.1 under six "
        "faults (binary mangling, refused authentication, a full disk, ...), one row per case. "
        "Exits 0 when every case behaves as documented.",
    )
    demo.set_defaults(handler=cmd_demo)
    return parser


async def cmd_demo(args: argparse.Namespace) -> int:
    from netfault.simulator.demo import run_demo

    outcomes = await run_demo()
    return 0 if all(o.passed for o in outcomes) else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    return engine_cli.run_handler(args)


if __name__ == "__main__":
    sys.exit(main())
