"""Hypothesis: whatever faults hit a sync, the local database ends exactly as a fault-free one.

For any schedule of the simulator's faults over two sync rounds (resets at any byte,
corruption, blackholes, node down, auth and host-key trouble, the node's disk full, HTTP agent
down or failing) plus rounds in which the *local* disk is full, checked after every round:
the local database passes ``PRAGMA integrity_check``, keeps every record it had and no record
goes back to an older version. Once the faults clear and the operator re-enables disabled
nodes (the runbook's fix), one more round gives exactly the fault-free result: the model's
last-writer-wins union of every node's rows and the local ones.

Local disk full is simulated inside SQLite: ``PRAGMA max_page_count`` pinned to the current
size makes any growth fail with SQLITE_FULL ("database or disk is full"), the same error a
real ENOSPC gives (a size-limited file system cannot be mounted everywhere this runs).
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from netfault.engine.clock import ManualClock
from netfault.engine.config import TransportConfig
from netfault.engine.router import SyncRouter
from netfault.engine.sync_sqlite import SQLiteSyncManager
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport
from netfault.simulator.cluster import LocalCluster
from netfault.simulator.cluster.faults import node_level
from netfault.simulator.strategies import (
    FAST_FAULTS,
    FaultSchedule,
    ScheduleDriver,
    fault_schedules,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

NODES = ("node-1", "node-2", "node-3", "node-4", "node-5")
# blackholes are only noticed by timeouts: keep them short so an example stays quick
QUICK = TransportConfig(connect_timeout=0.5, operation_timeout=4.0, http_timeout=1.0)
REMOTE_DB = "db/records.db"
FAULT_ROUNDS = 2
Row = tuple[str, str, float]


def node_rows(i: int) -> list[Row]:
    stamp = (i // 2) * 13  # nodes 0/1 and 2/3 share timestamps: ties need the tie-break
    return [
        (f"r{k:03d}", f"n{i}-{k}", float((k * 7 + stamp) % 11)) for k in range(i * 20, i * 20 + 40)
    ]


LOCAL_ROWS: list[Row] = [("r000", "local-newest", 99.0), ("r001", "old", -1.0), ("mine", "x", 1.0)]


def version(row: Row) -> tuple[float, Row]:
    return (row[2], row)


def expected() -> dict[str, Row]:
    out = {r[0]: r for r in LOCAL_ROWS}
    for i in range(len(NODES)):
        for row in node_rows(i):
            out[row[0]] = max(out.get(row[0], row), row, key=version)
    return out


def write_db(path: Path, rows: list[Row], page_size: int = 4096) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA page_size = {page_size}")
    with con:
        con.execute("CREATE TABLE records (id TEXT PRIMARY KEY, value TEXT, updated_at REAL)")
        con.executemany("INSERT INTO records VALUES (?, ?, ?)", rows)
    con.close()


def read_db(path: Path) -> dict[str, Row]:
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = con.execute("SELECT id, value, updated_at FROM records").fetchall()
    finally:
        con.close()
    assert len(rows) == len({r[0] for r in rows}), "duplicate keys"
    return {r[0]: r for r in rows}


class DiskManager(SQLiteSyncManager):
    """A manager whose local disk can be made full (see the module docstring)."""

    disk_full = False

    def _connect_local(self) -> sqlite3.Connection:
        con = super()._connect_local()
        if self.disk_full:
            pages = con.execute("PRAGMA page_count").fetchone()[0]
            con.execute(f"PRAGMA max_page_count = {pages}")
        return con


class Rig:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.ct = ClusterTransport(clock=ManualClock(), config=QUICK, thresholds=Thresholds())
        self.router = SyncRouter(self.ct, nodes=cluster.nodes)

    def recover(self) -> None:
        """The runbook's fix once the network is healthy: re-enable nodes, reset breakers."""
        self.cluster.faults.clear_all()
        self.ct.reset_circuit_breakers()
        for name in NODES:
            self.router.reenable_node(name)
            self.router.reset_transport_failures(name)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig() -> AsyncIterator[Rig]:
    async with LocalCluster(nodes=len(NODES), seed=7) as c:
        assert tuple(c.nodes) == NODES
        for i, name in enumerate(NODES):
            await asyncio.to_thread(write_db, c.home_path(name, REMOTE_DB), node_rows(i))
        r = Rig(c)
        yield r
        await r.ct.close()


KINDS = (*FAST_FAULTS, "timeout")


def applicable(schedule: FaultSchedule) -> FaultSchedule:
    """Node-level faults (``level: ssh`` included) cannot be narrowed to a route or service;
    ``fault_schedules`` sometimes narrows them anyway, which the controller refuses."""
    faults = tuple(
        replace(f, route=None, service=None) if node_level(f.kind, f.params) else f
        for f in schedule.faults
    )
    return FaultSchedule(schedule.seed, faults)


@settings(
    max_examples=18,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    schedule=fault_schedules(NODES, kinds=KINDS, operations=FAULT_ROUNDS, max_faults=4).map(
        applicable
    ),
    local_full=st.sets(st.integers(0, FAULT_ROUNDS - 1)),
)
async def test_faults_never_corrupt_or_lose_and_recovery_gives_the_fault_free_result(
    rig: Rig, schedule: FaultSchedule, local_full: set[int]
) -> None:
    note(schedule.one_line())
    note(f"local disk full in rounds {sorted(local_full)}")
    await asyncio.to_thread(rig.recover)
    tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, "", "sync-prop-"))
    try:
        db = tmp / "local.db"
        await asyncio.to_thread(write_db, db, LOCAL_ROWS, 512)  # small pages: merges must grow
        manager = DiskManager(
            db, rig.router, table="records", remote_db=REMOTE_DB, config=QUICK, max_concurrent=5
        )
        manager.load_hosts_file(rig.cluster.hosts_file)
        driver = ScheduleDriver(rig.cluster.faults, schedule)
        had = await asyncio.to_thread(read_db, db)
        for op in range(FAULT_ROUNDS):
            await asyncio.to_thread(driver.before, op)
            manager.disk_full = op in local_full
            result = await manager.sync_round()
            note(f"round {op}: {[(n, s.outcome) for n, s in result.states.items()]}")
            now = await asyncio.to_thread(read_db, db)
            for key, row in had.items():
                assert key in now, f"record {key} lost in round {op}"
                assert version(now[key]) >= version(row), f"record {key} went back in time"
            had = now
        await asyncio.to_thread(driver.clear)
        await asyncio.to_thread(rig.recover)
        manager.disk_full = False
        final = await manager.sync_round()
        assert sorted(final.ok) == sorted(NODES), {n: s.error for n, s in final.states.items()}
        assert await asyncio.to_thread(read_db, db) == expected()
    finally:
        await asyncio.to_thread(shutil.rmtree, tmp, True)
