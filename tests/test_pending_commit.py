"""A push's commit starts beside its write and waits for the digest on stdin; a fresh pull
asks the source's size and sha256 in one session.

The commands run in a real ``sh`` on real files; ``PendingCommit`` runs on both SSH servers.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from node_clients import connect, node_on_thread

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import IntegrityError
from netfault.engine.transports import remote as rc
from netfault.engine.transports.failures import Tracker
from netfault.engine.transports.fenced import PendingCommit, remote_sha, written_error
from netfault.engine.transports.sshconn import Remote, SshEndpoint
from netfault.engine.transports.sshmux import OpenSshMaster
from netfault.simulator.node import FakeNode

DATA = bytes(range(256)) * 300 + b"\x00\r\n\x03"
DIGEST = hashlib.sha256(DATA).hexdigest()
FINAL = "sub/f i'le.bin"
TOKEN = "0a1b2c3d4e5f6789"
CONFIG = TransportConfig(connect_timeout=10.0, operation_timeout=60.0)


def sh(command: str, cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", command],
        cwd=cwd,
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """This attempt's whole copy, written under its own partial name."""
    own = tmp_path / rc.own_name(FINAL, TOKEN)
    own.parent.mkdir()
    own.write_bytes(DATA)
    return own


def test_the_digest_on_stdin_renames_a_matching_copy(tmp_path: Path, copy: Path) -> None:
    done = sh(
        rc.cmd_commit_on_input(str(copy.relative_to(tmp_path)), FINAL),
        tmp_path,
        f"{DIGEST}\n".encode(),
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / FINAL).read_bytes() == DATA
    assert not copy.exists()


def test_a_digest_that_does_not_match_removes_the_copy_and_names_the_real_one(
    tmp_path: Path, copy: Path
) -> None:
    wrong = hashlib.sha256(b"other").hexdigest()
    done = sh(
        rc.cmd_commit_on_input(str(copy.relative_to(tmp_path)), FINAL),
        tmp_path,
        f"{wrong}\n".encode(),
    )
    assert done.returncode == rc.MISMATCH_EXIT
    assert f"sha256 {DIGEST}" in done.stderr
    assert not copy.exists() and not (tmp_path / FINAL).exists()


@pytest.mark.parametrize(
    "stdin",
    [
        pytest.param(b"", id="no-input"),
        pytest.param(b"\n", id="empty-line"),
        pytest.param(DIGEST[:63].encode() + b"\n", id="63-digits"),
        pytest.param(DIGEST.upper().encode() + b"\n", id="upper-case"),
        pytest.param(b"$(touch pwned)\n", id="shell-text"),
        pytest.param(DIGEST.encode() + b" x\n", id="trailing-word"),
    ],
)
def test_a_commit_without_a_valid_digest_is_abandoned_and_touches_nothing(
    tmp_path: Path, copy: Path, stdin: bytes
) -> None:
    """The push failed (no digest came) or the line is not a digest: nothing is renamed or
    removed, so the push's own clean-up (``discard_own``) decides."""
    done = sh(rc.cmd_commit_on_input(str(copy.relative_to(tmp_path)), FINAL), tmp_path, stdin)
    assert done.returncode == rc.ABANDONED_EXIT
    assert copy.read_bytes() == DATA
    assert not (tmp_path / FINAL).exists() and not (tmp_path / "pwned").exists()


def test_an_abandoned_commit_that_is_read_anyway_is_an_integrity_error() -> None:
    tracker = Tracker(NodeConfig(hostname="127.0.0.1", name="n"), "ssh")
    error = written_error(rc.ABANDONED_EXIT, "", tracker, "verify and rename")
    assert type(error) is IntegrityError and error.fails_over


def test_size_and_digest_come_from_one_command(tmp_path: Path) -> None:
    (tmp_path / "a b.bin").write_bytes(DATA)
    done = sh(rc.cmd_stat_sha("a b.bin"), tmp_path)
    size, digest = done.stdout.split("\n", 1)
    assert done.returncode == 0
    assert rc.parse_size(size) == len(DATA) and rc.parse_sha(digest) == DIGEST


def test_a_missing_source_fails_before_any_digest(tmp_path: Path) -> None:
    done = sh(rc.cmd_stat_sha("gone.bin"), tmp_path)
    assert done.returncode == 2 and "no such file" in done.stderr and done.stdout == ""


@pytest.fixture(scope="module", params=["asyncssh", "openssh"])
def node(request: pytest.FixtureRequest) -> Iterator[FakeNode]:
    server = str(request.param)
    with node_on_thread(f"pending-{server}", "127.0.0.48", server) as fake:
        yield fake


@pytest.mark.parametrize("client", ["openssh-client", "asyncssh-client"])
async def test_a_pending_commit_renames_once_given_the_digest_and_not_when_abandoned(
    node: FakeNode, client: str
) -> None:
    config = node.node_config(base_path="data")
    tracker = Tracker(config, "ssh")
    data = node.home / "data"
    final, own = rc.remote_path_for(config, FINAL), rc.own_name(FINAL, TOKEN)
    own_path = data / own
    own_path.parent.mkdir(parents=True, exist_ok=True)
    if client == "openssh-client":
        master = await OpenSshMaster.open(SshEndpoint.direct(config), CONFIG, tracker)
        conn: Remote = master
        closing = master.close
    else:
        context = connect(node)
        conn = await context.__aenter__()

        async def closing() -> None:
            await context.__aexit__(None, None, None)

    try:
        own_path.write_bytes(DATA)
        abandoned = PendingCommit(conn, rc.own_name(final, TOKEN), final, tracker)
        await asyncio.sleep(0)  # its session is on its way
        abandoned.abandon()
        pending = PendingCommit(conn, rc.own_name(final, TOKEN), final, tracker)
        assert not (data / FINAL).exists()
        assert own_path.read_bytes() == DATA
        await pending.commit(DIGEST)
        assert (data / FINAL).read_bytes() == DATA
        assert not own_path.exists()
        tracker.total = None
        assert await remote_sha(conn, final, tracker) == DIGEST
        assert tracker.total == len(DATA)
    finally:
        await closing()
        for path in (data / FINAL, own_path):
            path.unlink(missing_ok=True)
