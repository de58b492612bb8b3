"""Remote paths stay under the node's base path: one rule, checked before any transport runs."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from netfault.engine import confine_remote_path
from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import BadRemotePathError, ConfigError
from netfault.engine.events import EventBus, EventRecorder, EventType
from netfault.engine.hosts import load_hosts
from netfault.engine.transport import ClusterTransport
from netfault.simulator.node import FakeNode

CONFIG = TransportConfig(connect_timeout=5.0, operation_timeout=30.0, http_timeout=10.0)
BASED = NodeConfig(hostname="n1", base_path="netfault")
NO_BASE = NodeConfig(hostname="n1", base_path="")
OPT_IN = NodeConfig(hostname="n1", base_path="netfault", allow_absolute_paths=True)
ALL = ["ssh", "tailscale", "rsync", "base64", "http"]
ESCAPED = Path("/tmp/nf-escape.bin")  # where both escaping paths below would land


@pytest.mark.parametrize(
    ("node", "given", "kept"),
    [
        pytest.param(BASED, "a.bin", "a.bin", id="plain"),
        pytest.param(BASED, "models/./v1/../v2/a.bin", "models/v2/a.bin", id="normalised"),
        pytest.param(BASED, "./a.bin", "a.bin", id="dot-slash"),
        pytest.param(BASED, "a/../b.bin", "b.bin", id="dotdot-that-stays-inside"),
        pytest.param(BASED, "-rf", "-rf", id="leading-dash-is-a-name"),
        pytest.param(NO_BASE, "/tmp/x.bin", "/tmp/x.bin", id="no-base-absolute"),
        pytest.param(NO_BASE, "../x.bin", "../x.bin", id="no-base-relative-to-login"),
        pytest.param(OPT_IN, "/srv/x.bin", "/srv/x.bin", id="opt-in-absolute"),
        pytest.param(OPT_IN, "in/x.bin", "in/x.bin", id="opt-in-relative"),
    ],
)
def test_paths_inside_the_base_are_kept_normalised(node: NodeConfig, given: str, kept: str) -> None:
    assert confine_remote_path(node, given) == kept


@pytest.mark.parametrize(
    ("node", "given", "words"),
    [
        pytest.param(BASED, "/tmp/x.bin", "is absolute", id="absolute"),
        pytest.param(BASED, "../x.bin", "leaves the node's base_path", id="dotdot"),
        pytest.param(BASED, "../../../../tmp/x.bin", "leaves", id="deep-dotdot"),
        pytest.param(BASED, "a/../../x.bin", "leaves", id="dotdot-after-a-name"),
        pytest.param(BASED, "..", "leaves", id="parent-itself"),
        pytest.param(BASED, ".", "names the base directory", id="base-itself"),
        pytest.param(BASED, "", "must name a file", id="empty"),
        pytest.param(BASED, "dir/", "must name a file", id="trailing-slash"),
        pytest.param(BASED, "a\x00b", "must name a file", id="nul"),
        pytest.param(BASED, "a\nb", "must name a file", id="newline"),
        pytest.param(OPT_IN, "../x.bin", "leaves", id="opt-in-still-confines-relative"),
        pytest.param(NO_BASE, "", "must name a file", id="no-base-empty"),
    ],
)
def test_paths_leaving_the_base_are_refused_with_a_request_error(
    node: NodeConfig, given: str, words: str
) -> None:
    with pytest.raises(BadRemotePathError) as info:
        confine_remote_path(node, given)
    assert info.value.kind == "bad_remote_path"
    assert words in info.value.message and repr(given) in info.value.message


def escaped() -> bool:
    return ESCAPED.exists()


@pytest.fixture
async def node() -> AsyncIterator[FakeNode]:
    async with FakeNode("node-p", host="127.0.0.13") as fake:
        yield fake


@pytest.mark.parametrize("transport", ALL)
@pytest.mark.parametrize("direction", ["push", "pull"])
@pytest.mark.parametrize("remote", ["../../../../tmp/nf-escape.bin", "/tmp/nf-escape.bin"])
async def test_an_escaping_path_is_refused_before_any_transport_runs(
    node: FakeNode, tmp_path: Path, transport: str, direction: str, remote: str
) -> None:
    local = tmp_path / "local.bin"
    if direction == "push":
        local.write_bytes(os.urandom(1024))
    bus, recorder = EventBus(), EventRecorder()
    bus.subscribe(recorder)
    async with ClusterTransport(config=CONFIG, events=bus) as ct:
        result = await ct.transfer_file(
            local,
            remote,
            node.node_config(tailscale_ip=node.host),
            direction,
            transports=[transport],
        )

    assert (result.success, result.error_kind, result.attempts) == (False, "bad_remote_path", [])
    assert recorder.of_type(EventType.ATTEMPT_STARTED) == []
    assert sorted(p.name for p in node.home.rglob("*") if p.is_file()) == []
    assert ct.get_health_summary().get(node.name, {}).get("failures", 0) == 0
    if direction == "pull":
        assert not local.exists()
    else:
        assert not escaped()


@pytest.mark.parametrize("transport", ["ssh", "tailscale", "rsync", "base64"])
async def test_an_absolute_path_lands_there_when_the_node_opts_in(
    node: FakeNode, tmp_path: Path, transport: str
) -> None:
    src, target = tmp_path / "src.bin", tmp_path / "remote" / "abs.bin"
    src.write_bytes(os.urandom(4096))
    cfg = node.node_config(tailscale_ip=node.host, allow_absolute_paths=True)
    async with ClusterTransport(config=CONFIG) as ct:
        result = await ct.transfer_file(src, str(target), cfg, transports=[transport])

    assert result.success, result.error
    assert target.read_bytes() == src.read_bytes()


async def test_http_refuses_an_absolute_path_even_when_the_node_opts_in(
    node: FakeNode, tmp_path: Path
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"x")
    cfg = node.node_config(allow_absolute_paths=True)
    async with ClusterTransport(config=CONFIG) as ct:
        result = await ct.transfer_file(
            src, str(tmp_path / "abs.bin"), cfg, transports=["http", "ssh"]
        )

    assert (result.success, result.error_kind) == (False, "bad_remote_path")
    assert [a.transport for a in result.attempts] == ["http"]
    assert not (tmp_path / "abs.bin").exists()


@pytest.mark.parametrize(("text", "allowed"), [("true", True), ("false", False)])
def test_hosts_file_opt_in_for_absolute_paths_is_a_boolean(text: str, allowed: bool) -> None:
    hosts = load_hosts("hosts.yaml", f"n1:\n  hostname: a\n  allow_absolute_paths: {text}\n")
    assert hosts["n1"].allow_absolute_paths is allowed


def test_hosts_file_opt_in_refuses_a_non_boolean() -> None:
    with pytest.raises(ConfigError, match="hosts.yaml:3: n1.allow_absolute_paths: expected true"):
        load_hosts("hosts.yaml", "n1:\n  hostname: a\n  allow_absolute_paths: yes please\n")
