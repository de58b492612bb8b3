"""Commands a sync runs on a node over SSH: take and remove a database snapshot."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from shlex import quote

import asyncssh

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import NetfaultError, TransportError
from netfault.engine.transports import remote as rc
from netfault.engine.transports.failures import Tracker, boundary, exit_error
from netfault.engine.transports.sshconn import SshEndpoint, ssh_connection

logger = logging.getLogger("netfault.sync")
SNAP_MARK = ".nfsnap-"
STALE_SNAPSHOT_S = 600

# Runs on the node as ``python3 -c SCRIPT DB OUT COUNT_QUERY MARK STALE_S``; prints one JSON
# line. Snapshots older than STALE_S (left by an interrupted sync) are removed first.
SNAPSHOT_SCRIPT = """\
import glob, hashlib, json, os, sqlite3, sys, time
db, out, query, mark, stale = sys.argv[1:6]
for old in glob.glob(os.path.join(os.path.dirname(out), ".*" + mark + "*")):
    if time.time() - os.path.getmtime(old) > float(stale):
        os.remove(old)
if not os.path.isfile(db):
    print(json.dumps({"missing": True}))
    sys.exit(0)
tmp = out + ".part"
try:
    src = sqlite3.connect(db, timeout=30)
    dst = sqlite3.connect(tmp)
    src.backup(dst)
    count = dst.execute(query).fetchone()[0]
    dst.close()
    src.close()
    os.replace(tmp, out)
except Exception as exc:
    if os.path.exists(tmp):
        os.remove(tmp)
    sys.stderr.write("snapshot of " + db + " failed: " + str(exc) + "\\n")
    sys.exit(1)
h = hashlib.sha256()
with open(out, "rb") as fh:
    for block in iter(lambda: fh.read(1 << 20), b""):
        h.update(block)
print(json.dumps({"size": os.path.getsize(out), "sha256": h.hexdigest(), "count": count}))
"""


class SyncError(NetfaultError):
    """A node's database could not be snapshotted, checked or merged (not a transport failure).

    ``outcome`` is what the node's sync state reports: snapshot_failed, integrity_failed or
    merge_failed.
    """

    kind = "sync"

    def __init__(self, message: str, *, outcome: str, node: str | None = None) -> None:
        super().__init__(message, node=node)
        self.outcome = outcome


@dataclass(frozen=True)
class Snapshot:
    """A finished snapshot on the node: where it is and what it must look like here."""

    remote_path: str  # relative to the node's base_path, as the router expects
    size: int
    sha256: str
    count: int
    endpoint: SshEndpoint
    missing: bool = False


async def take_snapshot(
    node: NodeConfig, config: TransportConfig, db_path: str, remote: str, count_query: str
) -> Snapshot:
    """Snapshot the node's database (SQLite backup API) into ``remote``; describe it."""
    db = rc.remote_path_for(node, db_path)
    out = rc.remote_path_for(node, remote)
    query = count_query
    args = (SNAPSHOT_SCRIPT, db, out, query, SNAP_MARK, str(STALE_SNAPSHOT_S))
    command = "python3 -c " + " ".join(quote(a) for a in args)
    errors: list[TransportError] = []
    for endpoint in _endpoints(node):
        try:
            text = await run_remote(node, config, endpoint, command, "snapshot")
        except TransportError as exc:
            errors.append(exc)
            continue
        try:
            info = json.loads(text.strip().splitlines()[-1])
            if info.get("missing"):
                return Snapshot(remote, 0, "", 0, endpoint, missing=True)
            return Snapshot(remote, info["size"], info["sha256"], int(info["count"]), endpoint)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise SyncError(
                f"snapshot@{node.name}: unexpected output {text[:200]!r}",
                outcome="snapshot_failed",
                node=node.name,
            ) from exc
    raise errors[-1]


async def remove_snapshot(node: NodeConfig, config: TransportConfig, snapshot: Snapshot) -> None:
    """Best effort: a snapshot left behind is removed by a later snapshot once stale."""
    path = rc.remote_path_for(node, snapshot.remote_path)
    try:
        await run_remote(node, config, snapshot.endpoint, rc.cmd_remove(path), "cleanup")
    except (TransportError, SyncError) as exc:
        logger.info("could not remove %s on %s: %s", path, node.name, exc.message)


async def run_remote(
    node: NodeConfig, config: TransportConfig, endpoint: SshEndpoint, command: str, what: str
) -> str:
    """Run a command on the node; TransportError if the link failed, SyncError if it did."""
    attempt = Tracker(node, "ssh" if endpoint.host == node.hostname else "tailscale")
    with boundary(attempt):
        async with (
            asyncio.timeout(config.operation_timeout),
            ssh_connection(endpoint, config, attempt) as conn,
        ):
            res: asyncssh.SSHCompletedProcess = await conn.run(command, check=False)
    stdout = res.stdout if isinstance(res.stdout, str) else ""
    if res.exit_status == 0:
        return stdout
    stderr = res.stderr if isinstance(res.stderr, str) else ""
    if res.exit_status is None and not stderr:
        raise exit_error(stderr, None, attempt, what)
    detail = " ".join(stderr.split())[-300:] or f"exit status {res.exit_status}"
    raise SyncError(f"{what}@{node.name}: {detail}", outcome=f"{what}_failed", node=node.name)


# -- background loop -------------------------------------------------------------


def _endpoints(node: NodeConfig) -> list[SshEndpoint]:
    direct = SshEndpoint.direct(node)
    return [SshEndpoint.tailscale(node), direct] if node.tailscale_ip else [direct]
