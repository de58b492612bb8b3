"""DatabaseSyncManager: pull a consistent snapshot of each node's database and merge it.

One node sync: (1) on the node, a python3 command copies the live database with SQLite's
backup API into a hidden temporary name, renamed only once complete, and prints its size,
sha256 and record count (``_get_remote_count_query``); (2) the router pulls that snapshot
through its escalation chain (every transport checks sha256 and renames only after); (3) the
copy's sha256, ``PRAGMA quick_check`` and count are checked again here; (4) the remote snapshot
is removed; (5) ``_merge_databases`` merges it, one merge at a time; (6) local stats refresh.
SYNC_STALLED / NODE_DISABLED come from the router, never from here.

Steps (1) and (4) are exempt from the router, by design: they run a command on the node
(``engine/sync_remote.py``) over SSH exec, which no transport of the escalation chain
offers. They run only while the node is enabled and its breaker admits an operation
(checked just before), each under the operation timeout, and their failures are counted
nowhere: step (2) always runs through the router, even when the snapshot failed, so an
outage on the path is counted once by the escalation and once by the breaker, not twice.
Step (4) is best effort: a snapshot left behind is removed by a later snapshot once stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import posixpath
import random
import shutil
import sqlite3
import tempfile
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import TransportError
from netfault.engine.hosts import load_hosts
from netfault.engine.router import SyncRouter
from netfault.engine.sync_remote import (
    SNAP_MARK,
    Snapshot,
    SyncError,
    remove_snapshot,
    take_snapshot,
)
from netfault.engine.transports.integrity import sha256_file

logger = logging.getLogger("netfault.sync")
T = TypeVar("T")


@dataclass
class NodeSyncState:
    """What the manager knows about one node; ``outcome`` is the last sync's result."""

    node: str
    # ok | no_database | snapshot_failed | pull_failed | integrity_failed | merge_failed
    # | disabled | breaker_open | unreachable | local_error (or never)
    outcome: str = "never"
    error: str | None = None
    transport: str | None = None
    remote_count: int | None = None
    changes: int = 0
    attempts: int = 0
    successes: int = 0
    consecutive_failures: int = 0
    last_success: float | None = None


@dataclass(frozen=True)
class LocalStats:
    record_count: int = 0
    content_hash: str = ""


@dataclass
class SyncRoundResult:
    states: dict[str, NodeSyncState] = field(default_factory=dict)
    stats: LocalStats = field(default_factory=LocalStats)

    @property
    def ok(self) -> list[str]:
        return [n for n, s in self.states.items() if s.outcome in ("ok", "no_database")]


class DatabaseSyncManager:
    """Base class: subclasses say how to merge, count and where the database lives."""

    def __init__(
        self,
        local_db: str | Path,
        router: SyncRouter,
        *,
        nodes: Mapping[str, NodeConfig] | Iterable[NodeConfig] = (),
        config: TransportConfig | None = None,
        spool_dir: str | Path | None = None,
        peer_endpoint: str | None = None,
        max_concurrent: int = 4,
        seed: int | None = None,
    ) -> None:
        self.local_db = Path(local_db)
        self.router = router
        self.config = config or router.transport.config
        self.spool_dir = Path(spool_dir) if spool_dir else None
        self.peer_endpoint = peer_endpoint
        self.nodes: dict[str, NodeConfig] = {}
        self.states: dict[str, NodeSyncState] = {}
        self.local_stats = LocalStats()
        self._merge_lock = asyncio.Lock()
        self._limit = asyncio.Semaphore(max(1, max_concurrent))
        self._rng = random.Random(seed)
        self._last_merge_changes = 0
        self._last_merge_error = ""
        self._task: asyncio.Task[None] | None = None
        for node in nodes.values() if isinstance(nodes, Mapping) else nodes:
            self.add_node(node)

    # -- hooks (the architecture guide's subclass pattern) -----------------------
    async def _merge_databases(self, remote_db_path: Path) -> bool:
        """Merge the checked local copy of a node's database into the local database."""
        raise NotImplementedError

    def _update_local_stats(self) -> None:
        """Refresh ``self.local_stats`` (record count, content hash); runs in a thread."""
        raise NotImplementedError

    def _get_remote_db_path(self) -> str:
        """The database's path on a node, relative to the node's base_path."""
        raise NotImplementedError

    def _get_remote_count_query(self) -> str:
        """SQL returning one number: the records in a database (run on snapshots)."""
        raise NotImplementedError

    # -- nodes -------------------------------------------------------------------
    def add_node(self, node: NodeConfig) -> None:
        self.nodes[node.name] = node
        self.states.setdefault(node.name, NodeSyncState(node.name))
        self.router.add_node(node)

    def load_hosts_file(self, path: str | Path) -> list[str]:
        nodes = load_hosts(path)
        for node in nodes.values():
            self.add_node(node)
        return list(nodes)

    async def discover_nodes(self) -> list[str]:
        """Add peers listed by the nodes' HTTP agents (when ``peer_endpoint`` is set)."""
        if self.peer_endpoint is None:
            return []
        quick = TransportConfig.for_quick_requests()
        found: list[str] = []
        for node in list(self.nodes.values()):
            if self.router.is_disabled(node.name) or not self.router.transport.can_attempt(node):
                continue
            res = await self.router.transport.http_request_with_failover(
                node, self.peer_endpoint, config=quick
            )
            for peer in _peers(res.body) if res.success and res.status == 200 else []:
                if peer.get("name") not in self.nodes and isinstance(peer.get("hostname"), str):
                    new = _peer_config(node, peer)
                    self.add_node(new)
                    found.append(new.name)
        return found

    # -- one round -----------------------------------------------------------------
    async def sync_round(self) -> SyncRoundResult:
        """Sync every known node once (concurrently, merges one at a time)."""
        await self.discover_nodes()
        names = list(self.nodes)
        async with asyncio.TaskGroup() as tg:
            for name in names:
                tg.create_task(self._limited(self.sync_node(name)))
        await asyncio.to_thread(self._update_local_stats)
        return SyncRoundResult({n: self.states[n] for n in names}, self.local_stats)

    async def _limited(self, job: Awaitable[T]) -> T:
        async with self._limit:
            return await job

    async def sync_node(self, name: str) -> NodeSyncState:
        """Snapshot, pull, check and merge one node; never raises for node-side trouble."""
        state = self.states[name]
        state.attempts += 1
        state.changes, state.transport, state.error = 0, None, None
        try:
            state.outcome = await self._sync_from_node(self.nodes[name], state)
        except SyncError as exc:
            state.outcome, state.error = exc.outcome, exc.message
        except OSError as exc:  # local trouble (spool directory, permissions)
            state.outcome, state.error = "local_error", f"{type(exc).__name__}: {exc}"
        if state.outcome in ("ok", "no_database"):
            state.successes += 1
            state.consecutive_failures = 0
            state.last_success = self.router.clock.wall()
        else:
            state.consecutive_failures += 1
        return state

    async def _sync_from_node(self, node: NodeConfig, state: NodeSyncState) -> str:
        disabled = self.router.disabled_record(node.name)
        if disabled is not None:
            state.error = disabled.reason
            return "disabled"
        if not self.router.transport.can_attempt(node):
            return "breaker_open"
        snapshot: Snapshot | None = None
        remote = self._snapshot_name()
        try:
            snapshot = await self._take_snapshot(node, remote)
        except TransportError as exc:
            # No SSH route took the snapshot; the pull below still runs so the router's
            # escalation sees every transport (and disables the node if all are down).
            state.error = f"snapshot: {exc.message}"
        if snapshot is not None and snapshot.missing:
            return "no_database"
        workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, "", "sync-", self.spool_dir))
        try:
            return await self._pull_and_merge(node, state, remote, snapshot, workdir)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _pull_and_merge(
        self,
        node: NodeConfig,
        state: NodeSyncState,
        remote: str,
        snapshot: Snapshot | None,
        workdir: Path,
    ) -> str:
        local = workdir / f"{node.name}.db"
        try:
            result = await self.router.sync_to_node(
                node.name, local, remote_path=remote, direction="pull", config=self.config
            )
        finally:
            if snapshot is not None:
                await self._remove_snapshot(node, snapshot)
        state.transport = result.transport_used
        if not result.success:
            state.error = result.error if state.error is None else f"{state.error}; {result.error}"
            if self.router.is_disabled(node.name):
                return "disabled"
            return "pull_failed" if snapshot is not None else "unreachable"
        assert snapshot is not None  # a snapshot that was never made cannot be pulled
        state.remote_count = snapshot.count
        await self._check_copy(local, snapshot)
        async with self._merge_lock:
            merged = await _finish_even_if_cancelled(self._merge_databases(local))
            state.changes = self._last_merge_changes if merged else 0
        if not merged:
            raise SyncError(
                f"merge of {node.name}'s database into {self.local_db} failed and was rolled "
                f"back: {self._last_merge_error}",
                outcome="merge_failed",
                node=node.name,
            )
        return "ok"

    def _snapshot_name(self) -> str:
        directory, base = posixpath.split(self._get_remote_db_path())
        return posixpath.join(directory, f".{base}{SNAP_MARK}{uuid.uuid4().hex}")

    async def _check_copy(self, local: Path, snapshot: Snapshot) -> None:
        digest = await sha256_file(local)
        count, check = await asyncio.to_thread(_inspect, local, self._get_remote_count_query())
        if digest != snapshot.sha256 or check != "ok" or count != snapshot.count:
            raise SyncError(
                f"copy of the snapshot does not match it (sha256 {digest[:16]}… vs "
                f"{snapshot.sha256[:16]}…, quick_check {check!r}, {count} vs {snapshot.count} "
                "records); it was not merged",
                outcome="integrity_failed",
            )

    # -- remote commands (engine/sync_remote.py) -------------------------------------
    async def _take_snapshot(self, node: NodeConfig, remote: str) -> Snapshot:
        return await take_snapshot(
            node, self.config, self._get_remote_db_path(), remote, self._get_remote_count_query()
        )

    async def _remove_snapshot(self, node: NodeConfig, snapshot: Snapshot) -> None:
        await remove_snapshot(node, self.config, snapshot)

    async def run_forever(
        self,
        interval: float,
        *,
        jitter: float = 0.2,
        max_rounds: int | None = None,
        on_round: Callable[[SyncRoundResult], None] | None = None,
    ) -> None:
        """Sync rounds every ``interval`` s (± ``jitter`` of it) until cancelled."""
        rounds = 0
        while max_rounds is None or rounds < max_rounds:
            result = await self.sync_round()
            rounds += 1
            if on_round is not None:
                on_round(result)
            if max_rounds is not None and rounds >= max_rounds:
                break
            await asyncio.sleep(interval * (1 + self._rng.uniform(-jitter, jitter)))

    def start(
        self,
        interval: float,
        *,
        jitter: float = 0.2,
        on_round: Callable[[SyncRoundResult], None] | None = None,
    ) -> asyncio.Task[None]:
        """Run ``run_forever`` as a background task (one at a time)."""
        if self._task is None or self._task.done():
            loop = self.run_forever(interval, jitter=jitter, on_round=on_round)
            self._task = asyncio.create_task(loop)
        return self._task

    async def stop(self) -> None:
        """Cancel the loop and wait for it; a merge in progress finishes first."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _finish_even_if_cancelled(job: Awaitable[T]) -> T:
    """Await ``job``; if cancelled meanwhile, let it finish, then re-raise the cancellation."""
    fut = asyncio.ensure_future(job)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await fut
        raise


def read_only_uri(path: Path) -> str:
    return "file:" + urllib.parse.quote(str(path.absolute())) + "?mode=ro"


def _inspect(path: Path, count_query: str) -> tuple[int, str]:
    con = sqlite3.connect(read_only_uri(path), uri=True)
    try:
        check = str(con.execute("PRAGMA quick_check").fetchone()[0])
        return int(con.execute(count_query).fetchone()[0]), check
    except sqlite3.DatabaseError as exc:
        return -1, str(exc)
    finally:
        con.close()


_PEER_FIELDS = {"name", "hostname", "tailscale_ip", "ssh_port", "http_port", "p2p_port"}


def _peers(body: bytes) -> list[dict[str, Any]]:
    """``{"peers": [...]}`` or a bare list; anything else is no peers."""
    try:
        data = json.loads(body)
    except ValueError:
        return []
    items = data.get("peers") if isinstance(data, dict) else data
    return [p for p in items if isinstance(p, dict)] if isinstance(items, list) else []


def _peer_config(via: NodeConfig, peer: dict[str, Any]) -> NodeConfig:
    """A peer reached like the node that listed it (same credentials and base path)."""
    changes = {
        k: v
        for k, v in peer.items()
        if k in _PEER_FIELDS and isinstance(v, int | str) and not isinstance(v, bool)
    }
    changes.setdefault("name", changes["hostname"])
    return via.with_changes(**{"tailscale_ip": None, **changes})
