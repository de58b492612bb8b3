"""``netfault sync``: merge every node's SQLite table into a local database."""

from __future__ import annotations

import argparse
from typing import Any

from netfault.engine.cli_args import existing_text_file, positive_seconds, sqlite_file


def register(sub: Any) -> None:
    """Add ``sync`` to an argparse subparsers object."""
    about = "merge every node's SQLite table into a local database"
    parser = sub.add_parser("sync", help=about, description=about[0].upper() + about[1:] + ".")
    parser.add_argument("--hosts", type=existing_text_file, required=True, help="hosts file (YAML)")
    parser.add_argument(
        "--db", type=sqlite_file, required=True, help="local SQLite database (created if missing)"
    )
    parser.add_argument("--table", required=True, help="table with a primary key and updated_at")
    parser.add_argument("--remote-db", default="db/records.db", help="path under base_path")
    parser.add_argument("--updated-at", default="updated_at", help="the timestamp column")
    parser.add_argument("--loop", action="store_true", help="keep syncing until interrupted")
    parser.add_argument(
        "--interval", type=positive_seconds, default=60.0, help="seconds between rounds (> 0)"
    )
    parser.add_argument("--peers", help="HTTP endpoint listing more nodes, e.g. /api/peers")
    parser.set_defaults(handler=cmd_sync)


async def cmd_sync(args: argparse.Namespace) -> int:
    """One merge round (or rounds until interrupted), one line per node."""
    from netfault.engine.hosts import load_hosts
    from netfault.engine.router import SyncRouter
    from netfault.engine.sync import SyncRoundResult
    from netfault.engine.sync_sqlite import SQLiteSyncManager

    router = SyncRouter()
    manager = SQLiteSyncManager(
        args.db,
        router,
        table=args.table,
        remote_db=args.remote_db,
        updated_at=args.updated_at,
        nodes=load_hosts(args.hosts),
        peer_endpoint=args.peers,
    )

    def report(result: SyncRoundResult) -> None:
        for name, state in result.states.items():
            detail = f"via {state.transport}, {state.changes} rows changed"
            if state.outcome != "ok":
                detail = state.error or ""
            print(f"{name:<16} {state.outcome:<16} {detail}", flush=True)
        stats = result.stats
        print(f"local: {stats.record_count} records, sha256 {stats.content_hash}", flush=True)

    try:
        if args.loop:
            await manager.run_forever(args.interval, on_round=report)
            return 0
        result = await manager.sync_round()
        report(result)
        return 0 if len(result.ok) == len(result.states) else 1
    finally:
        await router.transport.close()
