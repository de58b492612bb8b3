"""SQLiteSyncManager against a 5-node fake cluster: union, winners, idempotence, stats, events."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from netfault.engine.clock import ManualClock
from netfault.engine.config import TransportConfig
from netfault.engine.events import EventRecorder, EventType
from netfault.engine.router import EXHAUSTED, SyncRouter
from netfault.engine.sync import SNAP_MARK, SyncRoundResult, _peers
from netfault.engine.sync_sqlite import SQLiteSyncManager, register
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport
from netfault.simulator.cluster import LocalCluster

pytestmark = pytest.mark.asyncio(loop_scope="module")

CFG = TransportConfig(connect_timeout=2.0, operation_timeout=15.0, http_timeout=5.0)
REMOTE_DB = "db/records.db"
SCHEMA = "CREATE TABLE records (id TEXT PRIMARY KEY, value TEXT, updated_at REAL NOT NULL)"
Row = tuple[str, str, float]


# -- data and model ----------------------------------------------------------------------


def node_rows(i: int) -> list[Row]:
    """Node i holds 40 ids overlapping its neighbours'; nodes 0/1 and 2/3 share timestamps."""
    stamp = (i // 2) * 13
    return [
        (f"r{k:03d}", f"n{i}-{k}", float((k * 7 + stamp) % 11)) for k in range(i * 20, i * 20 + 40)
    ]


LOCAL_ROWS: list[Row] = [
    ("r000", "local-newest", 99.0),  # newer than any node's copy: must survive
    ("r001", "local-old", -1.0),  # older: a node's copy wins
    ("r005", "a-local-tie", 2.0),  # same updated_at as node 0's copy, smaller row: loses
    ("local-only", "mine", 1.0),  # on no node: must never be lost
]


def winner(a: Row, b: Row) -> Row:
    """The model of last-writer-wins: newer updated_at, then the larger row."""
    return max(a, b, key=lambda r: (r[2], r))


def expected(nodes: list[int], local: list[Row] = LOCAL_ROWS) -> dict[str, Row]:
    out: dict[str, Row] = {r[0]: r for r in local}
    for i in nodes:
        for row in node_rows(i):
            out[row[0]] = winner(out[row[0]], row) if row[0] in out else row
    return out


def content_hash(rows: dict[str, Row]) -> str:
    digest = hashlib.sha256()
    for key in sorted(rows):
        digest.update(repr(rows[key]).encode())
    return digest.hexdigest()


def write_db(path: Path, rows: list[Row], page_size: int = 4096) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA page_size = {page_size}")
    with con:
        con.execute(SCHEMA)
        con.executemany("INSERT INTO records VALUES (?, ?, ?)", rows)
    con.close()


def read_db(path: Path) -> dict[str, Row]:
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = con.execute("SELECT id, value, updated_at FROM records").fetchall()
    finally:
        con.close()
    assert len(rows) == len({r[0] for r in rows})
    return {r[0]: r for r in rows}


# -- fixtures --------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster() -> AsyncIterator[LocalCluster]:
    async with LocalCluster(nodes=5, seed=1) as c:
        for i, name in enumerate(c.nodes):
            await asyncio.to_thread(write_db, c.home_path(name, REMOTE_DB), node_rows(i))
        yield c


@pytest.fixture(autouse=True)
def _no_fault_survives_a_test(cluster: LocalCluster) -> Iterator[None]:
    yield
    cluster.faults.clear_all()


class Setup:
    def __init__(self, cluster: LocalCluster, tmp: Path, **options: Any) -> None:
        self.ct = ClusterTransport(clock=ManualClock(), config=CFG, thresholds=Thresholds())
        self.router = SyncRouter(self.ct)
        self.events = EventRecorder()
        self.router.events.subscribe(self.events)
        self.db = tmp / "local.db"
        write_db(self.db, LOCAL_ROWS)
        self.manager = SQLiteSyncManager(
            self.db, self.router, table="records", remote_db=REMOTE_DB, config=CFG, **options
        )
        self.manager.load_hosts_file(cluster.hosts_file)


@pytest_asyncio.fixture(loop_scope="module")
async def setup(cluster: LocalCluster, tmp_path: Path) -> AsyncIterator[Setup]:
    s = Setup(cluster, tmp_path, spool_dir=tmp_path)
    yield s
    await s.ct.close()


def snapshots_left(cluster: LocalCluster) -> list[Path]:
    return [
        p
        for name in cluster.nodes
        for p in cluster.home_path(name, "db").iterdir()
        if SNAP_MARK in p.name
    ]


def spool_leftovers(spool: Path) -> list[Path]:
    return list(spool.glob("sync-*"))


# -- tests -------------------------------------------------------------------------------------


async def test_one_round_merges_the_union_with_last_writer_wins(
    cluster: LocalCluster, setup: Setup
) -> None:
    result = await setup.manager.sync_round()
    want = expected(list(range(5)))
    assert {n: s.outcome for n, s in result.states.items()} == dict.fromkeys(cluster.nodes, "ok")
    assert await asyncio.to_thread(read_db, setup.db) == want
    assert want["r000"] == ("r000", "local-newest", 99.0)
    assert want["local-only"] == ("local-only", "mine", 1.0)
    assert want["r005"] == ("r005", "n0-5", 2.0)  # a tie: the larger row wins
    assert want["r025"] == ("r025", "n1-25", node_rows(0)[25][2])  # tie between nodes 0 and 1
    assert {s.remote_count for s in result.states.values()} == {40}
    assert [s.transport for s in result.states.values()] == [
        setup.router.chain(n)[0] for n in cluster.nodes
    ]
    assert sum(s.changes for s in result.states.values()) > 0
    assert result.stats.record_count == len(want) == 121  # r000..r119 and local-only
    assert result.stats.content_hash == content_hash(want)
    assert await asyncio.to_thread(snapshots_left, cluster) == []
    assert not setup.events.of_type(EventType.SYNC_STALLED, EventType.NODE_DISABLED)
    assert await asyncio.to_thread(spool_leftovers, setup.db.parent) == []


async def test_second_round_changes_nothing(setup: Setup) -> None:
    first = await setup.manager.sync_round()
    hash_before = first.stats.content_hash
    second = await setup.manager.sync_round()
    assert [s.changes for s in second.states.values()] == [0] * 5
    assert second.stats.content_hash == hash_before
    assert all(s.successes == 2 for s in second.states.values())


async def test_merge_order_does_not_matter(cluster: LocalCluster, setup: Setup) -> None:
    for name in reversed(list(cluster.nodes)):
        state = await setup.manager.sync_node(name)
        assert state.outcome == "ok", state.error
    await asyncio.to_thread(setup.manager._update_local_stats)
    assert setup.manager.local_stats.content_hash == content_hash(expected(list(range(5))))


async def test_node_down_on_every_route_is_disabled_and_the_rest_still_merge(
    cluster: LocalCluster, setup: Setup
) -> None:
    names = list(cluster.nodes)
    await asyncio.to_thread(cluster.faults.apply, "down", names[4])
    result = await setup.manager.sync_round()
    assert result.states[names[4]].outcome == "disabled"
    assert [n for n in names if result.states[n].outcome == "ok"] == names[:4]
    assert await asyncio.to_thread(read_db, setup.db) == expected([0, 1, 2, 3])
    chain = setup.router.chain(names[4])
    stalled = setup.events.of_type(EventType.SYNC_STALLED)
    assert [(e.node, e.transport) for e in stalled] == [(names[4], t) for t in chain]
    assert [e.data["next_transport"] for e in stalled] == [*chain[1:], None]
    disabled = setup.events.of_type(EventType.NODE_DISABLED)
    assert [(e.node, e.outcome) for e in disabled] == [(names[4], EXHAUSTED)]
    assert setup.router.get_disabled_nodes()[names[4]]["failed_transports"] == chain

    started = len(setup.events.of_type(EventType.ATTEMPT_STARTED))
    again = await setup.manager.sync_round()
    assert again.states[names[4]].outcome == "disabled"
    assert again.states[names[4]].consecutive_failures == 2
    new = setup.events.of_type(EventType.ATTEMPT_STARTED)[started:]
    assert names[4] not in {e.node for e in new}

    await asyncio.to_thread(cluster.faults.clear_all)
    setup.router.reenable_node(names[4])
    setup.ct.reset_circuit_breakers()
    final = await setup.manager.sync_round()
    assert final.states[names[4]].outcome == "ok"
    assert final.stats.content_hash == content_hash(expected(list(range(5))))


@pytest.mark.parametrize(
    ("kind", "params", "first"),
    [
        pytest.param("reset", {"after_bytes": 1024, "service": "p2p"}, "p2p", id="p2p-reset-1KiB"),
        pytest.param(
            "corrupt_binary", {"probability": 0.01, "service": "p2p"}, "p2p", id="p2p-flips"
        ),
        pytest.param("corrupt_binary", {"level": "ssh"}, "rsync", id="rsync-7bit-channel"),
        pytest.param("reset", {"after_bytes": 4096, "level": "ssh"}, "rsync", id="rsync-reset"),
    ],
)
async def test_a_faulty_first_transport_escalates_and_still_merges_exactly(
    cluster: LocalCluster, setup: Setup, kind: str, params: dict[str, Any], first: str
) -> None:
    name = list(cluster.nodes)[0]
    setup.router.set_preferred_transport(name, first)
    await asyncio.to_thread(cluster.faults.apply, kind, name, **params)
    state = await setup.manager.sync_node(name)
    assert state.outcome == "ok", state.error
    assert state.transport not in (None, first)
    assert await asyncio.to_thread(read_db, setup.db) == expected([0])
    stalled = setup.events.of_type(EventType.SYNC_STALLED)
    assert [(e.node, e.transport) for e in stalled] == [(name, first)]


async def test_local_disk_full_rolls_back_the_whole_merge(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    s = Setup(cluster, tmp_path, spool_dir=tmp_path)
    write_db(s.db, LOCAL_ROWS, page_size=512)  # small pages: the merge must grow the file
    s.manager = FullDiskManager(
        s.db, s.router, table="records", remote_db=REMOTE_DB, config=CFG, nodes=s.manager.nodes
    )
    before = await asyncio.to_thread(read_db, s.db)
    try:
        state = await s.manager.sync_node(list(cluster.nodes)[0])
    finally:
        await s.ct.close()
    assert state.outcome == "merge_failed"
    assert state.error is not None and "full" in state.error
    assert await asyncio.to_thread(read_db, s.db) == before


class FullDiskManager(SQLiteSyncManager):
    """The local disk is full: SQLite may not grow the file (SQLITE_FULL, as on ENOSPC)."""

    def _connect_local(self) -> sqlite3.Connection:
        con = super()._connect_local()
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        con.execute(f"PRAGMA max_page_count = {pages}")
        return con


async def test_missing_remote_database_is_reported_not_failed(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    s = Setup(cluster, tmp_path)
    s.manager.remote_db = "db/absent.db"
    try:
        result = await s.manager.sync_round()
    finally:
        await s.ct.close()
    assert {st.outcome for st in result.states.values()} == {"no_database"}
    assert sorted(result.ok) == sorted(cluster.nodes)
    assert result.stats.record_count == len(LOCAL_ROWS)


async def test_empty_local_database_takes_the_table_from_the_first_node(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    s = Setup(cluster, tmp_path)
    s.db.unlink()
    try:
        result = await s.manager.sync_round()
    finally:
        await s.ct.close()
    assert result.ok == list(cluster.nodes)
    assert await asyncio.to_thread(read_db, s.db) == expected(list(range(5)), local=[])


async def test_background_loop_stops_cleanly_when_cancelled(setup: Setup) -> None:
    rounds: list[SyncRoundResult] = []
    two = asyncio.Event()

    def seen(result: SyncRoundResult) -> None:
        rounds.append(result)
        if len(rounds) == 2:
            two.set()

    task = setup.manager.start(0.01, jitter=0.5, on_round=seen)
    async with asyncio.timeout(60):
        await two.wait()
    await setup.manager.stop()
    assert task.cancelled() or task.done()
    assert rounds[-1].stats.content_hash == content_hash(expected(list(range(5))))
    assert await asyncio.to_thread(spool_leftovers, setup.db.parent) == []
    assert await asyncio.to_thread(read_db, setup.db) == expected(list(range(5)))


async def test_peer_discovery_tolerates_an_agent_without_a_peer_list(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    s = Setup(cluster, tmp_path, peer_endpoint="/api/peers")
    try:
        assert await s.manager.discover_nodes() == []
    finally:
        await s.ct.close()
    assert sorted(s.manager.nodes) == sorted(cluster.nodes)
    assert _peers(b'{"peers": [{"name": "x", "hostname": "10.0.0.9"}, 3]}') == [
        {"name": "x", "hostname": "10.0.0.9"}
    ]
    assert _peers(b"<html>not found</html>") == []


async def test_cli_sync_prints_each_node_outcome(
    cluster: LocalCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    db = tmp_path / "cli.db"
    args = parser.parse_args(
        ["sync", "--hosts", str(cluster.hosts_file), "--db", str(db), "--table", "records"]
    )
    assert await args.handler(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out[:5]] == [[n, "ok"] for n in cluster.nodes]
    assert out[-1].startswith("local: 120 records")
