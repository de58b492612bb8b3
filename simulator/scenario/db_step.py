"""The ``db_sync`` step: nodes hold SQLite records; the local copy merges them through the
router with ``SQLiteSyncManager`` (snapshot on the node, escalation, last-writer-wins)."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import Any

from netfault.engine import SQLiteSyncManager
from netfault.simulator.scenario.checks import World

TABLE = "records"
REMOTE_DB = "db/records.db"


def node_rows(seed: int, index: int, count: int) -> list[tuple[int, str, float]]:
    """Node ``index``'s records: half of them overlap the previous node's ids."""
    rng = random.Random(f"{seed}:db:{index}")
    start = index * count // 2
    return [(i, f"value-{i}-{index}", rng.uniform(0, 1000)) for i in range(start, start + count)]


def write_node_db(path: Path, rows: list[tuple[int, str, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    with con:
        con.execute(f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, value TEXT, updated_at REAL)")
        con.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?)", rows)
    con.close()


class DbSync:
    """One manager per scenario; each node's database is written on first use."""

    def __init__(self, world: World, workdir: Path, seed: int, config: Any) -> None:
        self.world = world
        self.seed = seed
        self.prepared: set[str] = set()
        self.manager = SQLiteSyncManager(
            workdir / "local.db",
            world.router,
            table=TABLE,
            remote_db=REMOTE_DB,
            nodes=list(world.cluster.nodes.values()),
            config=config,
        )

    async def run(self, node: str, rows_per_node: int) -> tuple[dict[str, Any], str]:
        if node not in self.prepared:
            target = self.world.cluster.home_path(node, REMOTE_DB)
            if target is None:
                raise ValueError("db_sync needs a backend whose node files are reachable here")
            index = list(self.world.cluster.nodes).index(node)
            rows = node_rows(self.seed, index, rows_per_node)
            await asyncio.to_thread(write_node_db, target, rows)
            self.prepared.add(node)
        state = await self.manager.sync_node(node)
        stats = await asyncio.to_thread(self.manager.read_stats)
        seen = {
            "outcome": state.outcome,
            "transport": state.transport,
            "records": stats.record_count,
            "changes": state.changes,
        }
        detail = (
            f"{state.outcome} via {state.transport}: {state.changes} changes, "
            f"{stats.record_count} local records" + (f" ({state.error})" if state.error else "")
        )
        return seen, detail
