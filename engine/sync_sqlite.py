"""SQLiteSyncManager: last-writer-wins merge of one table keyed by its primary key.

A remote row replaces the local row with the same key only when it is newer by ``updated_at``;
on a tie the larger row wins, compared column by column under one total order (NULLs first,
then by storage class, then by value), so the result does not depend on which node was merged
first and merging the same snapshot twice changes nothing. Each merge is one transaction:
an error (disk full included) rolls it back and the local database is as it was. Rows are
inserted or updated, never deleted, so no local record is ever lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.router import SyncRouter
from netfault.engine.sync import (
    DatabaseSyncManager,
    LocalStats,
    read_only_uri,
)

logger = logging.getLogger("netfault.sync")


def qi(name: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class TableShape:
    columns: tuple[str, ...]
    primary_key: tuple[str, ...]


def table_shape(con: sqlite3.Connection, schema: str, table: str) -> TableShape | None:
    rows = con.execute(f"PRAGMA {schema}.table_info({qi(table)})").fetchall()
    if not rows:
        return None
    pk = tuple(r[1] for r in sorted((r for r in rows if r[5]), key=lambda r: r[5]))
    return TableShape(tuple(r[1] for r in rows), pk)


def _order_key(alias: str, columns: Iterable[str], updated_at: str) -> str:
    """A row value ordering rows totally: updated_at first, then every column as a tie-break."""
    u = f"{alias}.{qi(updated_at)}"
    parts = [f"{u} IS NOT NULL", f"ifnull({u}, 0)"]
    for c in columns:
        col = f"{alias}.{qi(c)}"
        parts += [f"typeof({col})", f"ifnull({col}, 0) COLLATE BINARY"]
    return "(" + ", ".join(parts) + ")"


def merge_sql(table: str, shape: TableShape, updated_at: str) -> str:
    """INSERT ... ON CONFLICT DO UPDATE that keeps the larger row of each key."""
    cols = ", ".join(qi(c) for c in shape.columns)
    sets = ", ".join(
        f"{qi(c)} = excluded.{qi(c)}" for c in shape.columns if c not in shape.primary_key
    )
    pk = ", ".join(qi(c) for c in shape.primary_key)
    newer = f"{_order_key('excluded', shape.columns, updated_at)} > " + _order_key(
        "cur", shape.columns, updated_at
    )
    action = f"DO UPDATE SET {sets} WHERE {newer}" if sets else "DO NOTHING"
    return (
        f"INSERT INTO main.{qi(table)} AS cur ({cols}) "
        f"SELECT {cols} FROM remote.{qi(table)} WHERE true "
        f"ON CONFLICT ({pk}) {action}"
    )


class SQLiteSyncManager(DatabaseSyncManager):
    """Syncs one table with a primary key and an ``updated_at`` column across nodes."""

    def __init__(
        self,
        local_db: str | Path,
        router: SyncRouter,
        *,
        table: str,
        remote_db: str = "db/records.db",
        updated_at: str = "updated_at",
        nodes: Mapping[str, NodeConfig] | Iterable[NodeConfig] = (),
        config: TransportConfig | None = None,
        **options: Any,
    ) -> None:
        super().__init__(local_db, router, nodes=nodes, config=config, **options)
        self.table = table
        self.remote_db = remote_db
        self.updated_at = updated_at

    # -- hooks ---------------------------------------------------------------------
    def _get_remote_db_path(self) -> str:
        return self.remote_db

    def _get_remote_count_query(self) -> str:
        return f"SELECT COUNT(*) FROM {qi(self.table)}"

    async def _merge_databases(self, remote_db_path: Path) -> bool:
        try:
            self._last_merge_changes = await asyncio.to_thread(self.merge_file, remote_db_path)
        except (sqlite3.Error, ValueError) as exc:
            self._last_merge_error = f"{type(exc).__name__}: {exc}"
            logger.warning("merge of %s into %s failed: %s", remote_db_path, self.local_db, exc)
            return False
        return True

    def _update_local_stats(self) -> None:
        self.local_stats = self.read_stats()

    # -- blocking work (called in a thread) -----------------------------------------
    def _connect_local(self) -> sqlite3.Connection:
        """The local database; tests override this to simulate a full disk."""
        return sqlite3.connect(self.local_db, isolation_level=None, timeout=30)

    def merge_file(self, snapshot: Path) -> int:
        """Merge one database file into the local one in one transaction; rows changed."""
        con = self._connect_local()
        try:
            con.execute("ATTACH DATABASE ? AS remote", (str(snapshot),))
            try:
                return self._merge_attached(con)
            finally:
                con.execute("DETACH DATABASE remote")
        finally:
            con.close()

    def _merge_attached(self, con: sqlite3.Connection) -> int:
        con.execute("BEGIN IMMEDIATE")
        try:
            shape = self._check_shapes(con)
            before = con.total_changes
            con.execute(merge_sql(self.table, shape, self.updated_at))
            changes = con.total_changes - before
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        return changes

    def _check_shapes(self, con: sqlite3.Connection) -> TableShape:
        remote = table_shape(con, "remote", self.table)
        if remote is None:
            raise ValueError(f"the node's database has no table {self.table!r}")
        local = table_shape(con, "main", self.table)
        if local is None:  # first sync: take the table as the node defines it
            (ddl,) = con.execute(
                "SELECT sql FROM remote.sqlite_master WHERE type = 'table' AND name = ?",
                (self.table,),
            ).fetchone()
            con.execute(ddl)
            local = remote
        if not local.primary_key or self.updated_at not in local.columns:
            raise ValueError(f"table {self.table!r} needs a primary key and {self.updated_at!r}")
        missing = set(local.columns) - set(remote.columns)
        if missing or remote.primary_key != local.primary_key:
            raise ValueError(
                f"table {self.table!r} differs on the node (missing columns {sorted(missing)}, "
                f"primary key {remote.primary_key} vs {local.primary_key})"
            )
        return local

    def read_stats(self) -> LocalStats:
        """Record count and sha256 of every row in primary-key order."""
        if not self.local_db.exists():
            return LocalStats()
        con = sqlite3.connect(read_only_uri(self.local_db), uri=True)
        try:
            shape = table_shape(con, "main", self.table)
            if shape is None:
                return LocalStats()
            order = ", ".join(qi(c) for c in shape.primary_key)
            digest = hashlib.sha256()
            count = 0
            for row in con.execute(f"SELECT * FROM {qi(self.table)} ORDER BY {order}"):
                digest.update(repr(row).encode())
                count += 1
            return LocalStats(count, digest.hexdigest())
        finally:
            con.close()


# -- CLI -------------------------------------------------------------------------------


# The command line lives in its own light module (``netfault --help`` must not import asyncssh).
from netfault.engine.sync_cli import cmd_sync, register  # noqa: E402, F401
