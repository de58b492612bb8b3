"""The Docker backend, as far as it runs without a Docker engine.

Checked here: the generated compose layout, the checked-in compose files, the node image's
build file against serve.py's argument parser, the clear error when no engine answers, the
HTTP fault switchboard against a real FakeNode, and serve.py as a real process. Not run here:
anything that needs an engine (image build, containers, the real Toxiproxy).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import asyncssh
import pytest
import yaml

from netfault.engine import cli_args
from netfault.simulator.cluster.compose import (
    NODE_ADMIN_PORT,
    TOXIPROXY_API_PORT,
    TOXIPROXY_IMAGE,
    compose_config,
    dump_yaml,
    toxiproxy_config,
    write_compose,
)
from netfault.simulator.cluster.compose import main as compose_main
from netfault.simulator.cluster.controller import FaultController
from netfault.simulator.cluster.docker import DockerBackendError, DockerCluster
from netfault.simulator.cluster.docker_engine import secrets_tar
from netfault.simulator.cluster.faults import FaultError
from netfault.simulator.cluster.spec import NodeSpec
from netfault.simulator.cluster.switchboard import (
    AdminEndpoint,
    HttpSwitchboard,
    RemoteFaultError,
)
from netfault.simulator.node import ClientKey, FakeNode
from netfault.simulator.node.serve import build_parser, register

DOCKER_DIR = Path(__file__).resolve().parent.parent / "docker"
TIMEOUT = 30.0


def published(port_spec: str) -> tuple[str, int, int]:
    host, host_port, container_port = port_spec.split(":")
    return host, int(host_port), int(container_port)


# -- compose -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tailscale", [pytest.param(True, id="tailscale"), pytest.param(False, id="hostname-only")]
)
def test_compose_config_runs_every_node_behind_toxiproxy_on_a_private_network(
    tailscale: bool,
) -> None:
    config = yaml.safe_load(dump_yaml(compose_config(4, tailscale=tailscale)))
    services = config["services"]
    assert set(services) == {"toxiproxy", "node-1", "node-2", "node-3", "node-4"}
    assert config["networks"] == {"netfault": {"driver": "bridge"}}
    proxy = services["toxiproxy"]
    assert proxy["image"] == TOXIPROXY_IMAGE == "ghcr.io/shopify/toxiproxy:2.12.0"
    assert "-host=0.0.0.0" in proxy["command"]
    assert proxy["networks"] == ["netfault"]
    entries = json.loads(
        json.dumps(toxiproxy_config([NodeSpec(f"node-{i}", tailscale) for i in range(1, 5)]))
    )
    listen_ports = {int(e["listen"].rpartition(":")[2]) for e in entries}
    assert len(entries) == 4 * (6 if tailscale else 3) == len(listen_ports)
    proxy_ports = {published(p) for p in proxy["ports"]}
    assert {c for _h, _p, c in proxy_ports} == listen_ports | {TOXIPROXY_API_PORT}
    host_ports: list[int] = [p for _h, p, _c in proxy_ports]
    for i in range(1, 5):
        node = services[f"node-{i}"]
        assert node["networks"] == ["netfault"]
        assert node["command"] == ["--name", f"node-{i}"]
        assert node["volumes"] == [f"./secrets/node-{i}:/etc/netfault:ro"]
        assert node["build"]["dockerfile"] == "docker/node.Dockerfile"
        [(host, admin_port, container)] = [published(p) for p in node["ports"]]
        assert (host, container) == ("127.0.0.1", NODE_ADMIN_PORT)
        host_ports.append(admin_port)
        for service, port in (("ssh", 22), ("http", 8080), ("p2p", 8080)):
            names = {e["name"]: e["upstream"] for e in entries}
            assert names[f"node-{i}-hostname-{service}"] == f"node-{i}:{port}"
            assert (f"node-{i}-tailscale-{service}" in names) == tailscale
    every_port = [p for s in services.values() for p in s.get("ports", [])]
    assert all(p.startswith("127.0.0.1:") for p in every_port), "published beyond loopback"
    assert len(host_ports) == len(set(host_ports)), "two services publish the same host port"


def test_compose_config_has_no_yaml_aliases_and_rejects_unusable_names() -> None:
    assert "&id" not in dump_yaml(compose_config(3))
    with pytest.raises(ValueError, match="toxiproxy"):
        compose_config(["node-1", "toxiproxy"])
    with pytest.raises(ValueError, match="cannot name a container"):
        compose_config(["Node One"])


def test_checked_in_compose_files_are_the_generated_ones_for_three_nodes() -> None:
    assert (DOCKER_DIR / "compose.yaml").read_text() == dump_yaml(compose_config(3))
    on_disk = json.loads((DOCKER_DIR / "toxiproxy.json").read_text())
    assert on_disk == toxiproxy_config([NodeSpec(f"node-{i}") for i in (1, 2, 3)])


def test_write_compose_with_secrets_gives_each_node_its_own_key_and_token(tmp_path: Path) -> None:
    write_compose(tmp_path, 2, with_secrets=True)
    secrets = tmp_path / "secrets"
    tokens = {(secrets / n / "token").read_text() for n in ("node-1", "node-2")}
    host_keys = {(secrets / n / "ssh_host_ed25519_key").read_bytes() for n in ("node-1", "node-2")}
    assert len(tokens) == 2 and len(host_keys) == 2
    public = (secrets / "client" / "id_ed25519.pub").read_text()
    assert (secrets / "node-1" / "authorized_keys").read_text() == public
    hosts = yaml.safe_load((tmp_path / "hosts.yaml").read_text())["nodes"]
    assert hosts["node-1"]["hostname"] == "127.0.0.1"
    assert hosts["node-2"]["ssh_port"] == 20006 and hosts["node-2"]["tailscale_ssh_port"] == 20009
    known = (secrets / "known_hosts").read_text().splitlines()
    assert len(known) == 4 and known[0].startswith("[127.0.0.1]:20000 ssh-ed25519 ")
    before = {n: (secrets / n / "token").read_text() for n in ("node-1", "node-2")}
    write_compose(tmp_path, 2, with_secrets=True)
    assert before == {n: (secrets / n / "token").read_text() for n in ("node-1", "node-2")}


# -- the node image ------------------------------------------------------------------------
def dockerfile_instruction(name: str) -> list[str]:
    lines = (DOCKER_DIR / "node.Dockerfile").read_text().splitlines()
    [line] = [x for x in lines if x.startswith(f"{name} ")]
    value: list[str] = json.loads(line[len(name) + 1 :])
    return value


@pytest.fixture
def container_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse a container's command line here: its paths (``--home /home/netfault``) belong to
    the image's file system, so the host's "could this directory be created?" check is off."""
    monkeypatch.setattr(cli_args, "_writable_dir", lambda path, what: None)


def test_node_image_installs_what_the_transports_run_on_the_node() -> None:
    text = (DOCKER_DIR / "node.Dockerfile").read_text()
    assert "FROM debian:bookworm-slim" in text
    installed = text.split("apt-get install", 1)[1].split("&&", 1)[0].split()
    for package in ("python3", "openssh-client", "openssh-server", "rsync", "coreutils"):
        assert package in installed
    assert "util-linux" in installed  # flock, prlimit
    assert "useradd" in text and "--uid 1000" in text and "USER netfault" in text
    assert "pip install --no-cache-dir /src" in text
    exposed = [x for x in text.splitlines() if x.startswith("EXPOSE ")]
    assert exposed == ["EXPOSE 22 8080 8081"]


@pytest.mark.usefixtures("container_paths")
def test_node_image_entrypoint_and_compose_command_parse_with_serve_flags() -> None:
    entrypoint = dockerfile_instruction("ENTRYPOINT")
    assert entrypoint[1:3] == ["-m", "netfault.simulator.node.serve"]
    node_service = compose_config(3)["services"]["node-2"]
    for tail in (dockerfile_instruction("CMD"), node_service["command"]):
        args = build_parser().parse_args(entrypoint[3:] + tail)
        assert (args.host, args.ssh_port, args.http_port, args.admin_port) == (
            "0.0.0.0",
            22,
            8080,
            NODE_ADMIN_PORT,
        )
        assert str(args.token_file).startswith("/etc/netfault/")
        assert str(args.authorized_key_file).startswith("/etc/netfault/")
        assert str(args.host_key_dir) == "/etc/netfault"
    assert build_parser().parse_args(entrypoint[3:] + node_service["command"]).name == "node-2"


@pytest.mark.usefixtures("container_paths")
def test_compose_config_runs_openssh_nodes_with_the_real_sshd_and_leaves_others_alone(
    tmp_path: Path,
) -> None:
    """``ssh_server: openssh`` reaches the node's command line; the image's user runs sshd and
    is the user every NodeConfig logs in as."""
    specs = [NodeSpec("real", ssh_server="openssh"), NodeSpec("stand-in")]
    services = yaml.safe_load(dump_yaml(compose_config(specs)))["services"]
    entrypoint = dockerfile_instruction("ENTRYPOINT")[3:]
    real = build_parser().parse_args(entrypoint + services["real"]["command"])
    stand_in = build_parser().parse_args(entrypoint + services["stand-in"]["command"])
    assert (real.name, real.ssh_server, real.user) == ("real", "openssh", None)
    assert (stand_in.name, stand_in.ssh_server) == ("stand-in", "asyncssh")
    assert services["stand-in"]["command"] == ["--name", "stand-in"]
    every = yaml.safe_load(dump_yaml(compose_config(2, ssh_server="openssh")))["services"]
    assert [every[n]["command"][-2:] for n in ("node-1", "node-2")] == [
        ["--ssh-server", "openssh"]
    ] * 2
    assert compose_main(["--nodes", "2", "--out", str(tmp_path), "--ssh-server", "openssh"]) == 0
    written = yaml.safe_load((tmp_path / "compose.yaml").read_text())["services"]
    assert written["node-2"]["command"] == ["--name", "node-2", "--ssh-server", "openssh"]


@pytest.mark.usefixtures("container_paths")
def test_node_subcommand_takes_the_same_flags() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["node", *dockerfile_instruction("ENTRYPOINT")[3:], "--name", "n"])
    assert args.command == "node" and args.name == "n" and args.ssh_port == 22


def test_secrets_tar_is_owned_by_the_image_user_with_a_private_host_key() -> None:
    data = secrets_tar({"token": b"t\n", "authorized_keys": b"k\n", "ssh_host_ed25519_key": b"x"})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert {m.uid for m in members.values()} == {1000}
    assert members["ssh_host_ed25519_key"].mode == 0o600
    assert members["token"].mode == 0o644


# -- without an engine ---------------------------------------------------------------------
async def test_docker_cluster_without_an_engine_fails_fast_and_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cluster = DockerCluster(nodes=2, seed=1, engine_timeout=3)
    # bounded: a missing engine must fail, not hang
    async with asyncio.timeout(20):
        with pytest.raises(DockerBackendError, match="no Docker engine answers") as info:
            async with cluster:
                pytest.fail("the body must not run without an engine")
    assert "DOCKER_HOST" in str(info.value)
    assert cluster.workdir is None
    assert await asyncio.to_thread(os.listdir, tmp_path) == []


async def test_docker_cluster_without_the_sdk_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)  # makes `import docker` fail
    with pytest.raises(DockerBackendError, match=r"pip install 'netfault\[docker\]'"):
        async with DockerCluster(nodes=1):
            pass


# -- node-level faults over HTTP -----------------------------------------------------------
async def ssh_login(node: FakeNode) -> bytes:
    async with asyncio.timeout(TIMEOUT):
        async with asyncssh.connect(
            node.host,
            node.ssh_port,
            username="netfault",
            client_keys=[str(node.client_key.private_path)],
            known_hosts=str(node.known_hosts_path),
        ) as conn:
            result = await conn.run("echo logged-in", check=True)
    out = result.stdout
    return out if isinstance(out, bytes) else str(out).encode()


async def test_http_switchboard_applies_and_clears_node_faults_on_a_real_node() -> None:
    async with FakeNode("remote", host="127.0.0.42", admin_port=0) as node:
        board = HttpSwitchboard(
            {"remote": AdminEndpoint(f"http://{node.host}:{node.admin_port}", node.token)}
        )
        controller = FaultController("127.0.0.1", 1, lambda *_: [], board, lambda: ["remote"])
        fault = await asyncio.to_thread(controller.apply, "auth_refused", "remote")
        assert node.faults.auth_refused
        with pytest.raises(asyncssh.PermissionDenied):
            await ssh_login(node)
        await asyncio.to_thread(controller.clear, fault)
        assert await ssh_login(node) == b"logged-in\n"

        down = await asyncio.to_thread(controller.apply, "http_down", "remote")
        assert node.faults.http_mode == "down"
        disk = await asyncio.to_thread(controller.apply, "disk_full", "remote", quota_bytes=0)
        assert node.faults.disk_quota == 0
        await asyncio.to_thread(controller.clear, down)
        assert node.faults.http_mode == "up" and node.faults.disk_quota == 0
        await asyncio.to_thread(controller.clear, disk)
        assert node.faults.disk_quota is None

        node.faults.binary_mangling = True
        await asyncio.to_thread(board, "remote", lambda f: f.clear())
        assert node.faults.active() == {}


async def test_http_switchboard_reports_a_refused_change_and_an_unreachable_node() -> None:
    async with FakeNode("remote", host="127.0.0.42", admin_port=0) as node:
        good = AdminEndpoint(f"http://{node.host}:{node.admin_port}", node.token)
        board = HttpSwitchboard({"remote": good, "gone": AdminEndpoint("http://127.0.0.42:1", "t")})

        def set_bad(faults: Any) -> None:
            faults.http_mode = "sideways"

        with pytest.raises(RemoteFaultError, match="400"):
            await asyncio.to_thread(board, "remote", set_bad)
        with pytest.raises(RemoteFaultError, match="unreachable"):
            await asyncio.to_thread(board, "gone", lambda f: f.clear())


# -- serve.py as the container runs it -----------------------------------------------------
async def test_serve_runs_a_node_that_answers_http_and_ssh_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    key = ClientKey.generate(tmp_path / "client")
    secrets = tmp_path / "etc"
    secrets.mkdir()
    (secrets / "authorized_keys").write_text(key.public_key + "\n")
    (secrets / "token").write_text("s3cret\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    argv = [
        sys.executable, "-m", "netfault.simulator.node.serve", "--name", "served",
        "--host", "127.0.0.43", "--ssh-port", "0", "--http-port", "0", "--admin-port", "0",
        "--home", str(tmp_path / "home"), "--authorized-key-file", str(secrets / "authorized_keys"),
        "--token-file", str(secrets / "token"), "--host-key-dir", str(secrets),
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(TIMEOUT):
            ready = json.loads(await proc.stdout.readline())
        assert ready["event"] == "ready" and ready["node"] == "served"
        assert "token" not in ready and "client_key" not in ready
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
            async with http.get(f"http://127.0.0.43:{ready['http_port']}/health") as resp:
                assert (await resp.json())["node"] == "served"
            auth = {"Authorization": "Bearer s3cret"}
            url = f"http://127.0.0.43:{ready['admin_port']}/faults"
            async with http.get(url, headers=auth) as resp:
                assert resp.status == 200
        host_key = asyncssh.read_private_key(secrets / "ssh_host_ed25519_key")
        known = asyncssh.import_known_hosts(
            f"[127.0.0.43]:{ready['ssh_port']} " + host_key.export_public_key("openssh").decode()
        )
        async with asyncio.timeout(TIMEOUT):
            async with asyncssh.connect(
                "127.0.0.43",
                ready["ssh_port"],
                username="netfault",
                client_keys=[str(key.private_path)],
                known_hosts=known,
            ) as conn:
                result = await conn.run("pwd", check=True)
        assert str(result.stdout).strip() == str(tmp_path / "home")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(TIMEOUT):
            code = await proc.wait()
    assert code == 0
    assert list(scratch.iterdir()) == []
    assert (tmp_path / "home" / "data").is_dir()


def test_serve_exits_2_on_a_missing_token_file(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "netfault.simulator.node.serve", "--name", "x", "--host",
         "127.0.0.43", "--token-file", str(tmp_path / "missing")],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "missing" in done.stderr


def test_for_connections_is_refused_where_the_proxy_is_the_real_toxiproxy() -> None:
    # Toxiproxy ignores a toxic's "connections": the fault would never end by itself
    controller = FaultController(
        "127.0.0.1",
        1,
        lambda *_: ["x"],
        lambda *_: None,
        lambda: ["n"],
        counts_connections=False,
    )
    with pytest.raises(FaultError, match="needs the local backend, where netfault's own fault"):
        controller.apply("latency", "n", for_connections=2)
    with pytest.raises(FaultError, match="needs the local backend, where the nodes in process"):
        controller.apply("auth_refused", "n", for_connections=2)
    assert controller.active == []
