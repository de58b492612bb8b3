"""OpenSSH nodes in a LocalCluster (through the fault proxy), in scenario files and on the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from netfault.engine.config import TransportConfig
from netfault.engine.errors import ConfigError
from netfault.engine.transports import default_transports
from netfault.simulator.cluster.faults import FaultError
from netfault.simulator.cluster.local import LocalCluster
from netfault.simulator.cluster.spec import NodeSpec
from netfault.simulator.node.sshd_files import current_user
from netfault.simulator.scenario.loader import load_scenario

CONFIG = TransportConfig(connect_timeout=10.0, operation_timeout=60.0, http_timeout=10.0)
TIMEOUT = 30.0


async def test_cluster_mixes_servers_and_reaches_openssh_through_every_proxy_route(
    tmp_path: Path,
) -> None:
    specs = [NodeSpec("old", ssh_server="asyncssh"), NodeSpec("real", ssh_server="openssh")]
    src = tmp_path / "src.bin"
    data = bytes(range(256)) * 4096
    src.write_bytes(data)
    async with LocalCluster(specs, seed=3) as cluster:
        assert cluster.node("real").ssh_user == current_user()
        assert cluster.node("old").ssh_user == "netfault"
        for name in ["ssh", "tailscale", "rsync", "base64"]:
            await default_transports()[name].push(cluster.node("real"), src, f"{name}.bin", CONFIG)
            assert await cluster.read_remote("real", f"{name}.bin") == data
        assert cluster.fake("real").ssh_log is not None and cluster.fake("old").ssh_log is None


async def test_cluster_refuses_an_asyncssh_only_fault_on_an_openssh_node() -> None:
    async with LocalCluster(1, ssh_server="openssh") as cluster:
        with pytest.raises(FaultError, match="ssh_server 'asyncssh'"):
            await asyncio.to_thread(
                cluster.faults.apply, "reset", "node-1", level="ssh", after_bytes=1024
            )
        assert cluster.faults.active == []
        applied = await asyncio.to_thread(cluster.faults.apply, "auth_refused", "node-1")
        assert cluster.fake("node-1").faults.auth_refused
        await asyncio.to_thread(cluster.faults.clear, applied)
        assert not cluster.fake("node-1").faults.auth_refused


def test_node_spec_rejects_an_unknown_server() -> None:
    with pytest.raises(ValueError, match="ssh_server must be one of asyncssh, openssh"):
        NodeSpec("n", ssh_server="dropbear")


def test_scenario_loader_checks_ssh_server_and_names_the_key(tmp_path: Path) -> None:
    text = """name: s
seed: 1
cluster:
  nodes:
    - name: node-1
      ssh_server: {server}
steps:
  - transfer: {{node: node-1, path: data/f, expect: {{success: true}}}}
"""
    path = tmp_path / "s.yaml"
    scenario = load_scenario(path, text.format(server="openssh"))
    assert scenario.cluster.nodes[0].ssh_server == "openssh"
    with pytest.raises(ConfigError, match="ssh_server"):
        load_scenario(path, text.format(server="dropbear"))


async def test_netfault_node_cli_runs_openssh_and_stops_on_sigterm(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    argv = [
        sys.executable, "-m", "netfault.simulator.node.serve", "--name", "cli",
        "--host", "127.0.0.46", "--ssh-port", "0", "--http-port", "0", "--admin-port", "-1",
        "--home", str(tmp_path / "home"), "--ssh-server", "openssh",
    ]  # fmt: skip
    env = {**os.environ, "TMPDIR": str(scratch)}
    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(TIMEOUT):
            ready = json.loads(await proc.stdout.readline())
        key, port = ready["client_key"], str(ready["ssh_port"])
        ssh = await asyncio.create_subprocess_exec(
            "ssh", "-p", port, "-i", key, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            f"{current_user()}@127.0.0.46", "pwd",
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        async with asyncio.timeout(TIMEOUT):
            out, _ = await ssh.communicate()
        assert out.decode().strip() == str(tmp_path / "home")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(TIMEOUT):
            code = await proc.wait()
    assert code == 0
    assert list(scratch.iterdir()) == []


def test_netfault_node_cli_refuses_another_user_for_openssh() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "netfault.simulator.node.serve", "--name", "x",
         "--ssh-server", "openssh", "--user", "somebody-else"],
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 2
    assert "can only log in" in done.stderr
