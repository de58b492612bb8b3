"""A FakeNode running the real OpenSSH sshd: sessions, lifecycle, cleanup and node faults."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import (
    AuthenticationError,
    IntegrityError,
    RemoteStorageError,
)
from netfault.engine.transports import Transport, default_transports
from netfault.simulator.node import FakeNode, NodeStartError, sshd_files
from netfault.simulator.node.faults import ChannelMangling, ChannelReset
from netfault.simulator.node.sshd import SshdFaults
from netfault.simulator.node.sshd_files import current_user

CONFIG = TransportConfig(connect_timeout=10.0, operation_timeout=60.0, http_timeout=10.0)
SSH_LIKE = ["ssh", "rsync", "base64"]
TIMEOUT = 30.0


@pytest.fixture
async def node() -> AsyncIterator[FakeNode]:
    async with FakeNode("ossh", host="127.0.0.42", ssh_server="openssh", admin_port=0) as fake:
        yield fake


def cfg(node: FakeNode) -> NodeConfig:
    return node.node_config()


def transport(name: str) -> Transport:
    return default_transports()[name]


def payload(size: int) -> bytes:
    head = bytes(range(256)) * 4
    return (head + os.urandom(max(0, size - len(head))))[:size]


def remote(node: FakeNode, name: str) -> Path:
    return node.home / "data" / name


async def ssh(node: FakeNode, command: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` on the node with OpenSSH's client."""
    argv = ["ssh", "-p", str(node.ssh_port), *node.openssh_options(), node.host, command]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def process_table() -> dict[int, int]:
    """pid -> parent pid of every live (non-zombie) process."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z":
                    table[int(entry)] = int(fields[1])
    return table


def sshd_tree(node: FakeNode) -> set[int]:
    """The node's sshd listener and every process below it."""
    config = str(node.ssh_log.parent / "sshd" / "sshd_config") if node.ssh_log else "?"
    table = process_table()
    tree = set()
    for pid in table:
        with contextlib.suppress(OSError):
            if config in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                tree.add(pid)
    while grown := {p for p, parent in table.items() if parent in tree} - tree:
        tree |= grown
    return tree


def refuses(host: str, port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


async def test_session_runs_in_the_node_home_as_the_current_user(node: FakeNode) -> None:
    result = await ssh(node, 'pwd; echo "$HOME"; id -un; echo oops >&2; exit 7')
    home = str(node.home)
    assert result.stdout.decode().split() == [home, home, current_user()]
    assert (result.returncode, result.stderr) == (7, b"oops\n")
    assert node.user == current_user() == cfg(node).ssh_user


async def test_sftp_subsystem_is_openssh_sftp_server_in_the_home(
    node: FakeNode, tmp_path: Path
) -> None:
    (node.home / "data" / "s.bin").write_bytes(b"via sftp")
    argv = ["sftp", "-P", str(node.ssh_port), *node.openssh_options(), "-b", "-", node.host]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate(f"pwd\nget data/s.bin {tmp_path}/s.bin\n".encode())
    assert proc.returncode == 0, err
    assert f"Remote working directory: {node.home}" in out.decode()
    assert (tmp_path / "s.bin").read_bytes() == b"via sftp"


async def test_sshd_log_records_each_login(node: FakeNode) -> None:
    assert (await ssh(node, "true")).returncode == 0
    assert node.ssh_log is not None
    log = node.ssh_log.read_text()
    assert "Server listening on 127.0.0.42" in log
    assert f"Accepted publickey for {current_user()}" in log


async def test_each_session_is_recorded_by_its_session_id(node: FakeNode) -> None:
    # What stop() kills by: the id of the session sshd made, whether the user's login shell
    # execs the wrapper (bash) or runs it as a child (dash as /bin/sh).
    result = await ssh(node, "cut -d' ' -f6 /proc/$$/stat")
    assert result.returncode == 0, result.stderr
    assert node.ssh_log is not None
    recorded = (node.ssh_log.parent / "sshd" / "sessions").read_text().split()
    assert result.stdout.decode().strip() in recorded


async def test_stop_leaves_no_process_port_or_temp_dir() -> None:
    node = FakeNode("ossh-life", host="127.0.0.43", ssh_server="openssh")
    await node.start()
    root = node.known_hosts_path.parent.parent
    # One command still running in its session, one orphaned (its shell already exited).
    argv = ["ssh", "-p", str(node.ssh_port), *node.openssh_options(), node.host]
    holder = await asyncio.create_subprocess_exec(
        *argv, "sleep 300 & echo $!; wait", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert holder.stdout is not None
    async with asyncio.timeout(TIMEOUT):
        running = int(await holder.stdout.readline())
    orphan = int((await ssh(node, "sleep 301 >/dev/null 2>&1 & echo $!")).stdout)
    tree = sshd_tree(node)
    assert len(tree) >= 3 and {running, orphan} <= set(process_table())
    await node.stop()
    async with asyncio.timeout(TIMEOUT):
        await holder.wait()
    assert not (tree | {running, orphan}) & set(process_table())
    assert refuses(node.host, node.ssh_port) and refuses(node.host, node.http_port)
    assert not root.exists() and not node.home.exists()


async def test_restart_keeps_port_and_host_key(tmp_path: Path) -> None:
    node = FakeNode("ossh-re", host="127.0.0.44", ssh_server="openssh", home=tmp_path / "h")
    await node.start()
    port = node.ssh_port
    try:
        await node.stop()
        await node.start()
        assert node.ssh_port == port
        result = await ssh(node, "echo again")  # StrictHostKeyChecking=yes, same known_hosts
        assert (result.returncode, result.stdout) == (0, b"again\n")
    finally:
        await node.stop()


async def test_missing_sshd_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sshd_files, "SBIN_PATH", "/nonexistent")
    node = FakeNode("ossh-none", host="127.0.0.45", ssh_server="openssh")
    with pytest.raises(NodeStartError, match="install the openssh-server package"):
        await node.start()
    await node.stop()


def test_openssh_node_refuses_a_user_it_cannot_log_in() -> None:
    with pytest.raises(ValueError, match="can only log in"):
        FakeNode("ossh-u", ssh_server="openssh", user="somebody-else")
    with pytest.raises(ValueError, match="asyncssh, openssh"):
        FakeNode("ossh-u", ssh_server="dropbear")


@pytest.mark.parametrize("fault", ["auth_refused", "host_key_changed"])
@pytest.mark.parametrize("name", SSH_LIKE)
async def test_auth_faults_refuse_logins_until_cleared(
    node: FakeNode, tmp_path: Path, name: str, fault: str
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"data")
    setattr(node.faults, fault, True)
    with pytest.raises(AuthenticationError):
        await transport(name).push(cfg(node), src, "auth.bin", CONFIG)
    assert not remote(node, "auth.bin").exists()
    node.faults.clear()
    await transport(name).push(cfg(node), src, "auth.bin", CONFIG)
    assert remote(node, "auth.bin").read_bytes() == b"data"


async def test_a_node_under_a_long_directory_path_logs_in_and_refuses(tmp_path: Path) -> None:
    # sshd's key query goes through a unix socket in the node's directory, and a socket
    # address holds 107 bytes: a long TMPDIR (a deep pytest tmp_path) must not stop the node.
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 5)
    node = FakeNode("ossh-deep", host="127.0.0.47", ssh_server="openssh", root=deep / "node")
    await node.start()
    try:
        assert len(str(deep / "node" / "sshd" / "auth.sock")) > 108
        assert (await ssh(node, "true")).returncode == 0
        node.faults.auth_refused = True
        refused = await ssh(node, "true")
        assert refused.returncode == 255 and b"Permission denied" in refused.stderr
        node.faults.auth_refused = False
        assert (await ssh(node, "true")).returncode == 0
    finally:
        await node.stop()


async def test_host_key_change_is_what_ssh_reports(node: FakeNode) -> None:
    node.faults.host_key_changed = True
    result = await ssh(node, "true")
    assert result.returncode == 255
    assert b"REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr


@pytest.mark.parametrize("direction", ["push", "pull"])
async def test_forced_pty_breaks_ssh_and_rsync_and_base64_delivers_identical_bytes(
    node: FakeNode, tmp_path: Path, direction: str
) -> None:
    data = payload(256 * 1024)
    old = b"previous content"
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    remote(node, "m.bin").write_bytes(old if direction == "push" else data)
    back.write_bytes(old)
    node.faults.binary_mangling = True
    for name in ["ssh", "rsync"]:
        with pytest.raises(IntegrityError):  # a damaged stream: fail over, resend once
            if direction == "push":
                await transport(name).push(cfg(node), src, "m.bin", CONFIG)
            else:
                await transport(name).pull(cfg(node), "m.bin", back, CONFIG)
        assert remote(node, "m.bin").read_bytes() == (old if direction == "push" else data)
        assert back.read_bytes() == old
    if direction == "push":
        await transport("base64").push(cfg(node), src, "m.bin", CONFIG)
        assert remote(node, "m.bin").read_bytes() == data
    else:
        await transport("base64").pull(cfg(node), "m.bin", back, CONFIG)
        assert back.read_bytes() == data


@pytest.mark.parametrize("openssh", [True, False], ids=["ssh-binary", "asyncssh-channel"])
@pytest.mark.parametrize(
    ("data", "words"),
    [
        pytest.param(b"abc\x03def\n" * 4096, "killed by SIGINT", id="ctrl-c-kills-the-writer"),
        pytest.param(bytes(range(256)) * 64, "a terminal on the channel", id="every-byte-value"),
        # ^\ kills the writer (SIGQUIT) or, landing before it started, cuts its input short
        pytest.param(b"abc\x1cdef\n" * 4096, None, id="ctrl-backslash"),
        pytest.param(b"x" * 20000, "fewer bytes", id="line-longer-than-the-tty-keeps"),
        pytest.param(b"a\n\x04" * 4096, "fewer bytes", id="ctrl-d-ends-input-early"),
        pytest.param(b"row\r\n" * 4096, "sha256 mismatch", id="cr-made-lf"),
    ],
)
async def test_forced_pty_damage_to_an_ssh_push_is_an_integrity_error_whatever_the_bytes(
    node: FakeNode, tmp_path: Path, data: bytes, words: str | None, openssh: bool
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    node.faults.binary_mangling = True
    t = transport("ssh")
    t.openssh = openssh  # type: ignore[attr-defined]
    with pytest.raises(IntegrityError) as failed:
        await t.push(cfg(node), src, "d.bin", CONFIG)
    assert failed.value.fails_over
    assert words is None or words in str(failed.value)
    assert not remote(node, "d.bin").exists()


async def test_forced_pty_is_a_real_terminal_and_clears(node: FakeNode) -> None:
    node.faults.binary_mangling = True
    on = await ssh(node, "tty; printf 'a\\nb'")
    node.faults.binary_mangling = False
    off = await ssh(node, "tty; printf 'a\\nb'")
    assert on.stdout.startswith(b"/dev/pts/") and on.stdout.endswith(b"a\r\nb")
    assert off.stdout == b"not a tty\na\nb"


@pytest.mark.parametrize(
    ("attr", "value"),
    [("channel_mangling", ChannelMangling("pty")), ("channel_reset", ChannelReset(10, "base64"))],
)
def test_exec_channel_faults_are_refused_rather_than_silently_ignored(
    attr: str, value: object
) -> None:
    faults = SshdFaults()
    with pytest.raises(ValueError, match="ssh_server 'asyncssh'"):
        setattr(faults, attr, value)
    assert getattr(faults, attr) is None and faults.active() == {}


async def test_asyncssh_only_fault_is_refused_naming_the_server(node: FakeNode) -> None:
    attr, value = "binary_reset_after", 4096
    with pytest.raises(ValueError, match="ssh_server 'asyncssh'"):
        setattr(node.faults, attr, value)
    assert getattr(node.faults, attr) is None
    url = f"http://{node.host}:{node.admin_port}/faults"
    auth = {"Authorization": f"Bearer {node.token}"}
    async with aiohttp.ClientSession(headers=auth) as session:
        async with session.put(url, json={"auth_refused": True, attr: value}) as resp:
            body = await resp.json()
            assert resp.status == 400 and "ssh_server 'asyncssh'" in body["error"]
        async with session.get(url) as resp:
            assert (await resp.json())["active"] == {}


async def test_forced_pty_base64_over_the_asyncssh_channel_keeps_lines_under_the_tty_limit(
    node: FakeNode, tmp_path: Path
) -> None:
    """Without the ssh binary, base64 chunks go over asyncssh: their lines must stay shorter
    than the 4,095 bytes a terminal keeps of one line."""
    data = payload(2 * 1024 * 1024 + 5)
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    node.faults.binary_mangling = True
    t = transport("base64")
    t.openssh = False  # type: ignore[attr-defined]
    await t.push(cfg(node), src, "a.bin", CONFIG)
    assert remote(node, "a.bin").read_bytes() == data
    await t.pull(cfg(node), "a.bin", back, CONFIG)
    assert back.read_bytes() == data


@pytest.mark.parametrize("name", [*SSH_LIKE, "http"])
async def test_disk_full_raises_storage_error_and_leaves_no_file(
    node: FakeNode, tmp_path: Path, name: str
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(2 * 1024 * 1024))
    node.faults.set_disk_full(256 * 1024)
    with pytest.raises(RemoteStorageError):
        await transport(name).push(cfg(node), src, "full.bin", CONFIG)
    assert not remote(node, "full.bin").exists()
    assert [p.name for p in (node.home / "data").iterdir()] == []
    node.faults.disk_quota = None
    await transport(name).push(cfg(node), src, "full.bin", CONFIG)
    assert remote(node, "full.bin").read_bytes() == src.read_bytes()


def test_rsync_file_io_exit_without_its_message_is_a_storage_error() -> None:
    """Against sshd the receiver's "File too large" can be lost; exit 11 still says enough."""
    from netfault.engine.transports.failures import Tracker, rsync_error

    attempt = Tracker(NodeConfig(hostname="127.0.0.1", name="n"), "rsync")
    assert isinstance(rsync_error(11, "", attempt), RemoteStorageError)
