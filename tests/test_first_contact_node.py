"""``netfault node`` as a new user starts it: loopback and free ports by default, a hosts file
that works as printed, a p2p endpoint so a healthy node probes clean, clear bind errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import yaml

from netfault.simulator.node.sshd_files import current_user

TIMEOUT = 60


async def netfault(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "netfault.simulator.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class RunningNode:
    """``netfault node ARGS`` as a child process, stopped with SIGTERM like Ctrl-C would."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.ready: dict[str, Any] = {}
        self.stderr = ""
        self.code: int | None = None

    async def __aenter__(self) -> RunningNode:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "netfault.simulator.cli",
            "node",
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(TIMEOUT):
            line = await self.proc.stdout.readline()
        if not line:
            await self.__aexit__()
            raise AssertionError(f"node exited {self.code}: {self.stderr}")
        self.ready = json.loads(line)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(TIMEOUT):
            _, err = await self.proc.communicate()
        self.stderr = err.decode()
        self.code = self.proc.returncode


async def test_default_node_is_on_loopback_free_ports_and_its_hosts_file_probes_clean(
    tmp_path: Path,
) -> None:
    hosts = tmp_path / "hosts.yaml"
    async with RunningNode("--name", "first", "--hosts-out", str(hosts)) as node:
        ready = node.ready
        ports = [ready[k] for k in ("ssh_port", "http_port", "admin_port", "p2p_port")]
        entry = yaml.safe_load(hosts.read_text())["nodes"]["first"]
        code, out, err = await netfault("probe", "first", "--hosts", str(hosts))
        health = await netfault("health", "first", "--hosts", str(hosts))

    assert ready["host"] == "127.0.0.1"
    assert len(set(ports)) == 4 and not set(ports) & {0, 22, 8080, 8081}
    assert entry["hostname"] == "127.0.0.1" and entry["ssh_user"] == "netfault"
    assert entry["known_hosts"] == ready["known_hosts"]
    assert code == 0, out + err
    for transport in ("ssh", "rsync", "base64", "http", "p2p"):
        assert f"│ {transport} " in out
    assert "FAILED" not in out
    assert health[0] == 0, health
    answer = json.loads(health[1])
    assert answer["body"] == {"status": "ok", "node": "first"}  # not a JSON string
    assert answer["route"] == "hostname"
    assert answer["routes"][-1] == {"route": "http:hostname", "ok": True, "ms": ANY}
    assert node.code == 0
    assert f"hosts file written to {hosts}" in node.stderr
    assert "removing its temporary home" in node.stderr and "first stopped" in node.stderr
    assert not await asyncio.to_thread(Path(ready["home"]).exists)


async def test_non_loopback_address_needs_allow_remote() -> None:
    code, out, err = await netfault("node", "--name", "open", "--host", "0.0.0.0")

    assert code == 2
    assert "--host 0.0.0.0" in err and "--allow-remote" in err
    assert out == ""


async def test_allowed_remote_bind_warns_and_prints_a_hosts_entry() -> None:
    async with RunningNode("--name", "wide", "--host", "0.0.0.0", "--allow-remote") as node:
        ssh_port = node.ready["ssh_port"]

    assert "warning: listening on 0.0.0.0" in node.stderr
    entry = yaml.safe_load(node.stderr.split("a hosts file for it:\n", 1)[1].split("netfault")[0])
    assert entry["nodes"]["wide"]["ssh_port"] == ssh_port


async def test_port_in_use_is_named_in_the_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = await netfault("node", "--name", "clash", "--http-port", str(port))

    assert code == 1
    assert f"cannot listen for HTTP on 127.0.0.1 port {port}" in err
    assert "Address already in use" in err and "Traceback" not in err


async def test_openssh_node_prints_a_hosts_file_with_the_current_user_that_probes_clean(
    tmp_path: Path,
) -> None:
    hosts = tmp_path / "hosts.yaml"
    args = ("--name", "real", "--ssh-server", "openssh", "--hosts-out", str(hosts))
    async with RunningNode(*args) as node:
        entry = yaml.safe_load(hosts.read_text())["nodes"]["real"]
        code, out, err = await netfault("probe", "real", "--hosts", str(hosts))

    assert entry["ssh_user"] == node.ready["ssh_user"] == current_user()
    assert entry["ssh_port"] == node.ready["ssh_port"] and node.ready["p2p_port"] > 0
    assert code == 0, out + err
    for transport in ("ssh", "rsync", "base64", "http", "p2p"):
        assert f"│ {transport} " in out
    assert "FAILED" not in out and "demoted" not in out
    assert node.code == 0


async def test_openssh_node_refuses_another_user_in_one_line() -> None:
    code, out, err = await netfault(
        "node", "--name", "real", "--ssh-server", "openssh", "--user", "not-" + current_user()
    )

    assert code == 2
    assert err.count("\n") == 1 and "can only log in" in err and "Traceback" not in err
    assert out == ""
