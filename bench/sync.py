"""Records merged per second: SQLiteSyncManager's merge against plain ATTACH + INSERT OR REPLACE.

Five node databases (200,000 rows each, 1,000,000 in all, half of each overlapping the next
node's keys) are merged into an empty local database both ways, in the same run, files
local (no network). The baseline keeps whichever copy came last; the manager keeps the
newest by ``updated_at`` with its tie-break, in one transaction per node.

Run as ``python bench/sync.py``; the last line printed is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from netfault.engine.router import SyncRouter
from netfault.engine.sync_sqlite import SQLiteSyncManager

NODES = 5
ROWS_PER_NODE = 200_000
REPEATS = 2  # best of: the least disturbed by other processes
TARGET_RATIO = 0.8
SCHEMA = (
    "CREATE TABLE records (id INTEGER PRIMARY KEY, name TEXT NOT NULL, value REAL, "
    "updated_at REAL NOT NULL)"
)


def make_node(path: Path, i: int) -> None:
    rng = random.Random(i)
    start = i * ROWS_PER_NODE // 2
    rows = (
        (k, f"record-{k}-from-node-{i}", rng.random(), float(rng.randrange(1_000_000)))
        for k in range(start, start + ROWS_PER_NODE)
    )
    con = sqlite3.connect(path)
    with con:
        con.execute(SCHEMA)
        con.executemany("INSERT INTO records VALUES (?, ?, ?, ?)", rows)
    con.close()


def fresh_local(path: Path) -> Path:
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    con.execute(SCHEMA)
    con.close()
    return path


def baseline(local: Path, files: list[Path]) -> float:
    started = time.perf_counter()
    con = sqlite3.connect(local, isolation_level=None)
    for f in files:
        con.execute("ATTACH DATABASE ? AS node", (str(f),))
        con.execute("INSERT OR REPLACE INTO main.records SELECT * FROM node.records")
        con.execute("DETACH DATABASE node")
    con.close()
    return time.perf_counter() - started


def ours(local: Path, files: list[Path]) -> float:
    manager = SQLiteSyncManager(local, SyncRouter(), table="records")

    async def merge_all() -> None:
        for f in files:
            if not await manager._merge_databases(f):
                raise RuntimeError(manager._last_merge_error)

    started = time.perf_counter()
    asyncio.run(merge_all())
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        root = Path(tmp)
        files = [root / f"node-{i}.db" for i in range(NODES)]
        for i, f in enumerate(files):
            make_node(f, i)
        total = NODES * ROWS_PER_NODE
        base_s, ours_s = [], []
        for _ in range(REPEATS):
            base_s.append(baseline(fresh_local(root / "base.db"), files))
            ours_s.append(ours(fresh_local(root / "ours.db"), files))
    base_rate = total / min(base_s)
    our_rate = total / min(ours_s)
    ratio = our_rate / base_rate
    result = {
        "name": "records_merged_per_s_1M_rows_5_nodes",
        "value": round(our_rate),
        "unit": "records/s",
        "baseline": round(base_rate),
        "ratio": round(ratio, 3),
        "target": TARGET_RATIO,
        "meets": ratio >= TARGET_RATIO,
    }
    print(f"merge {min(ours_s):.2f}s, ATTACH + INSERT OR REPLACE {min(base_s):.2f}s")
    print(json.dumps({"bench": "sync", "results": [result]}))


if __name__ == "__main__":
    main()
