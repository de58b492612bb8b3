"""The netfault command line against a real fake node: push, pull, probe, health, errors."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from netfault.simulator.cluster.routes import write_hosts_file
from netfault.simulator.node import FakeNode


@pytest_asyncio.fixture
async def node(tmp_path: Path) -> AsyncIterator[FakeNode]:
    async with FakeNode("cli-node", host="127.0.0.61") as fake:
        yield fake


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
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def hosts_for(node: FakeNode, path: Path, **changes: object) -> Path:
    write_hosts_file(path, {node.name: node.node_config(**changes)})
    return path


async def test_push_then_pull_moves_the_exact_bytes(node: FakeNode, tmp_path: Path) -> None:
    hosts = hosts_for(node, tmp_path / "hosts.yaml")
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(300_000))
    code, out, err = await netfault(
        "push", str(src), "cli-node:models/model.bin", "--hosts", str(hosts)
    )
    assert code == 0, err
    assert "via ssh" in out
    assert (node.home / "data" / "models" / "model.bin").read_bytes() == src.read_bytes()
    back = tmp_path / "back.bin"
    code, out, err = await netfault(
        "pull",
        "cli-node:models/model.bin",
        str(back),
        "--hosts",
        str(hosts),
        "--transports",
        "http",
    )
    assert code == 0, err
    assert "via http" in out and back.read_bytes() == src.read_bytes()


async def test_push_without_a_terminal_prints_one_line_per_attempt_as_it_happens(
    node: FakeNode, tmp_path: Path
) -> None:
    hosts = hosts_for(node, tmp_path / "hosts.yaml")
    src = tmp_path / "f.bin"
    src.write_bytes(bytes(range(256)) * 1000)
    node.faults.auth_refused = True
    code, out, err = await netfault("push", str(src), "cli-node:f.bin", "--hosts", str(hosts))
    assert code == 0, err
    lines = err.splitlines()
    assert out.startswith("pushed 256000 bytes via http in ")
    assert out.rstrip().endswith(f"({len(lines)} attempts)")
    assert lines[0].split()[2] == "ssh" and len(lines) >= 3
    for line in lines[:-1]:  # every SSH-based transport, each once
        assert " failed after " in line and "(auth): " in line and "ssh key refused" in line
    assert len({line.split()[2] for line in lines}) == len(lines)
    assert lines[-1].startswith("push cli-node: http ok, 256000 bytes in ")


async def test_probe_prints_a_row_per_transport_and_fails_when_one_fails(
    node: FakeNode, tmp_path: Path
) -> None:
    hosts = hosts_for(node, tmp_path / "hosts.yaml")
    code, out, _ = await netfault(
        "probe", "cli-node", "--hosts", str(hosts), "--transports", "ssh,base64,http"
    )
    assert code == 0
    assert out.count("OK") == 3
    node.faults.http_mode = "down"
    code, out, _ = await netfault(
        "probe", "cli-node", "--hosts", str(hosts), "--transports", "ssh,http"
    )
    assert code == 1
    assert "FAILED" in out and "OK" in out


async def test_probe_shows_a_route_that_cannot_connect_as_demoted(
    node: FakeNode, tmp_path: Path
) -> None:
    hosts = hosts_for(node, tmp_path / "hosts.yaml", tailscale_ip="127.0.0.62")
    code, out, _ = await netfault(
        "probe", "cli-node", "--hosts", str(hosts), "--transports", "tailscale,ssh"
    )
    assert code == 1  # nothing listens on the tailscale address
    assert "route tailscale demoted (connect)" in out
    assert "route hostname" not in out


async def test_health_reports_the_route_that_answered(node: FakeNode, tmp_path: Path) -> None:
    hosts = hosts_for(node, tmp_path / "hosts.yaml", tailscale_ip="127.0.0.62")
    code, out, err = await netfault("health", "cli-node", "--hosts", str(hosts))
    assert code == 0, err
    report = json.loads(out)
    assert report["route"] == "hostname"  # nothing listens on the tailscale address
    tried = [(r["route"], r["ok"]) for r in report["routes"]]
    assert tried == [("http:tailscale", False), ("http:hostname", True)], report
    assert "error" in report["routes"][0]
    assert isinstance(report["body"], dict)  # JSON once, not a JSON string inside JSON


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["push", "missing.bin", "cli-node:x"], "no such file", id="missing-local"),
        pytest.param(["push", "{src}", "no-colon"], "expected NODE:PATH", id="bad-remote"),
        pytest.param(["push", "{src}", "other:x"], "not in", id="unknown-node"),
    ],
)
async def test_bad_input_exits_2_with_a_clear_error(
    node: FakeNode, tmp_path: Path, args: list[str], message: str
) -> None:
    hosts = hosts_for(node, tmp_path / "hosts.yaml")
    src = tmp_path / "s.bin"
    src.write_bytes(b"x")
    code, _, err = await netfault(*[a.format(src=src) for a in args], "--hosts", str(hosts))
    assert code == 2
    assert message in err


async def test_bad_hosts_file_names_file_line_and_key(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text("nodes:\n  n1:\n    hostname: a\n    ssh_port: lots\n")
    code, _, err = await netfault("probe", "n1", "--hosts", str(hosts))
    assert code == 2
    assert f"{hosts}:4: n1.ssh_port" in " ".join(err.split())


async def test_demo_passes_every_case_against_its_embedded_node() -> None:
    code, out, err = await netfault("demo")  # COLUMNS=200: the table still keeps to 80
    assert code == 0, out + err
    assert out.count("pass") == 6 and "FAIL" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
