"""Each error on each transport, against a real FakeNode: its kind, whether the operation
fails over to the next transport, and whether it counts against the node's breaker.

The chain is ``[transport under test, "fallback"]``, where ``fallback`` is a scripted
transport that always fails to connect: a path error reaches it (and the failed operation
is one breaker failure); a request error stops before it and counts for nothing.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from netfault.engine.clock import ManualClock
from netfault.engine.config import NodeConfig, TransportConfig, TransportSpec
from netfault.engine.errors import ConnectError
from netfault.engine.events import EventBus, EventRecorder, EventType
from netfault.engine.results import TransferResult
from netfault.engine.router import SyncRouter
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport
from netfault.engine.transports import default_transports
from netfault.simulator.node import FakeNode
from netfault.simulator.scripted import ScriptedTransport

CONFIG = TransportConfig(
    connect_timeout=5.0, operation_timeout=30.0, http_timeout=10.0, integrity_retries=0
)
SSH_LIKE = ("ssh", "tailscale", "rsync", "base64")
ALL = (*SSH_LIKE, "http")


@dataclass
class World:
    node: FakeNode
    tmp: Path

    @property
    def data(self) -> Path:
        return self.node.home / "data"

    def config(self) -> NodeConfig:
        return self.node.node_config(tailscale_ip=self.node.host)

    def local(self, size: int = 64 * 1024) -> Path:
        src = self.tmp / "src.bin"
        src.write_bytes(os.urandom(size))
        return src


Setup = Callable[[World], tuple[str, Path, str, NodeConfig]]
"""Prepares the fault; returns (direction, local path, remote path, node config)."""


def pull_missing(w: World) -> tuple[str, Path, str, NodeConfig]:
    return "pull", w.tmp / "out.bin", "no/such/file.bin", w.config()


def pull_directory(w: World) -> tuple[str, Path, str, NodeConfig]:
    (w.data / "adir").mkdir()
    return "pull", w.tmp / "out.bin", "adir", w.config()


def push_onto_directory(w: World) -> tuple[str, Path, str, NodeConfig]:
    (w.data / "adir").mkdir()
    return "push", w.local(), "adir", w.config()


def pull_into_missing_dir(w: World) -> tuple[str, Path, str, NodeConfig]:
    (w.data / "f.bin").write_bytes(b"x")
    return "pull", w.tmp / "no-dir" / "out.bin", "f.bin", w.config()


def push_missing_local(w: World) -> tuple[str, Path, str, NodeConfig]:
    return "push", w.tmp / "missing.bin", "f.bin", w.config()


def missing_key(w: World) -> tuple[str, Path, str, NodeConfig]:
    return "push", w.local(), "f.bin", w.config().with_changes(ssh_key=w.tmp / "id_missing")


def missing_known_hosts(w: World) -> tuple[str, Path, str, NodeConfig]:
    cfg = w.config().with_changes(known_hosts=w.tmp / "known_hosts_missing")
    return "push", w.local(), "f.bin", cfg


def escaping_path(w: World) -> tuple[str, Path, str, NodeConfig]:
    return "pull", w.tmp / "out.bin", "../../../../etc/hostname", w.config()


def nothing_listening(w: World) -> tuple[str, Path, str, NodeConfig]:
    cfg = w.config().with_changes(hostname="127.0.0.99", tailscale_ip="127.0.0.99")
    return "push", w.local(), "f.bin", cfg


def auth_refused(w: World) -> tuple[str, Path, str, NodeConfig]:
    w.node.faults.auth_refused = True
    return "push", w.local(), "f.bin", w.config().with_changes(http_token="wrong-token")


def host_key_changed(w: World) -> tuple[str, Path, str, NodeConfig]:
    w.node.faults.host_key_changed = True
    return "push", w.local(), "f.bin", w.config()


def disk_full(w: World) -> tuple[str, Path, str, NodeConfig]:
    w.node.faults.set_disk_full(256 * 1024)
    return "push", w.local(1024 * 1024), "f.bin", w.config()


def agent_5xx(w: World) -> tuple[str, Path, str, NodeConfig]:
    w.node.faults.http_mode = "5xx"
    return "push", w.local(), "f.bin", w.config()


def binary_mangled(w: World) -> tuple[str, Path, str, NodeConfig]:
    w.node.faults.binary_mangling = True
    return "push", w.local(), "f.bin", w.config()


@dataclass(frozen=True)
class Row:
    setup: Setup
    kinds: dict[str, str]  # transport -> expected kind
    fails_over: bool


def _every(kind: str, transports: tuple[str, ...] = ALL) -> dict[str, str]:
    return dict.fromkeys(transports, kind)


ROWS = {
    "pull-missing-remote-file": Row(pull_missing, _every("not_found"), False),
    "pull-remote-directory": Row(
        pull_directory, {**_every("is_directory", SSH_LIKE), "http": "not_found"}, False
    ),
    "push-onto-remote-directory": Row(push_onto_directory, _every("is_directory"), False),
    "pull-into-missing-local-dir": Row(pull_into_missing_dir, _every("not_found"), False),
    "push-missing-local-file": Row(push_missing_local, _every("not_found"), False),
    "missing-ssh-key": Row(missing_key, _every("missing_key", SSH_LIKE), False),
    "missing-known-hosts": Row(missing_known_hosts, _every("missing_key", SSH_LIKE), False),
    "remote-path-escapes-base": Row(escaping_path, _every("bad_remote_path"), False),
    "nothing-listening": Row(nothing_listening, _every("connect"), True),
    "auth-refused": Row(auth_refused, _every("auth"), True),
    "host-key-changed": Row(host_key_changed, _every("auth", SSH_LIKE), True),
    "remote-disk-full": Row(disk_full, _every("storage"), True),
    "agent-answers-5xx": Row(agent_5xx, {"http": "http_5xx"}, True),
    "binary-mangled-in-flight": Row(
        binary_mangled, {"ssh": "integrity", "tailscale": "integrity", "rsync": "integrity"}, True
    ),
}
CASES = [
    pytest.param(name, transport, id=f"{name}-{transport}")
    for name, row in ROWS.items()
    for transport in row.kinds
]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with FakeNode("node-e", host="127.0.0.12") as node:
        yield World(node, tmp_path)


async def run(
    world: World, transport: str, setup: Setup
) -> tuple[TransferResult, ClusterTransport, ScriptedTransport, EventRecorder]:
    fallback = ScriptedTransport(
        "fallback", policy=lambda node, op: ConnectError("fallback refused", node=node)
    )
    bus, recorder = EventBus(ManualClock()), EventRecorder()
    bus.subscribe(recorder)
    ct = ClusterTransport(
        {transport: default_transports()[transport], "fallback": fallback},
        config=CONFIG,
        clock=bus.clock,
        thresholds=Thresholds(),
        events=bus,
    )
    direction, local, remote, cfg = setup(world)
    async with ct:
        result = await ct.transfer_file(
            local, remote, cfg, direction, transports=[transport, "fallback"]
        )
    return result, ct, fallback, recorder


@pytest.mark.parametrize(("case", "transport"), CASES)
async def test_error_kind_failover_and_breaker_count(
    world: World, case: str, transport: str
) -> None:
    row = ROWS[case]

    result, ct, fallback, recorder = await run(world, transport, row.setup)

    assert result.success is False
    tried = [(a.transport, a.error_kind) for a in result.attempts]
    kind = row.kinds[transport]
    if row.fails_over:
        assert tried == [(transport, kind), ("fallback", "connect")], result.error
        assert ct.get_health_summary()["node-e"]["failures"] == 1
    else:
        assert result.error_kind == kind, result.error
        assert tried in ([], [(transport, kind)]), result.error
        assert fallback.calls == []
        assert ct.get_health_summary().get("node-e", {}).get("failures", 0) == 0
        [end] = recorder.of_type(EventType.OPERATION_FAILED)
        assert (end.outcome, end.error_kind) == ("rejected", kind)


@pytest.mark.parametrize("transport", ALL)
async def test_three_request_errors_leave_the_breaker_closed_for_a_valid_push(
    world: World, transport: str
) -> None:
    cfg, src = world.config(), world.local()
    async with ClusterTransport(config=CONFIG, thresholds=Thresholds()) as ct:
        for _ in range(3):
            missing = await ct.transfer_file(
                world.tmp / "out.bin", "missing.bin", cfg, "pull", transports=[transport]
            )
            assert missing.error_kind == "not_found"
        ok = await ct.transfer_file(src, "ok.bin", cfg, transports=[transport])
        health = ct.get_health_summary()["node-e"]

    assert (ok.success, ok.transport_used) == (True, transport)
    assert (world.data / "ok.bin").read_bytes() == src.read_bytes()
    assert (health["state"], health["failures"]) == ("closed", 0)


async def test_sync_pull_of_a_missing_remote_file_leaves_the_node_enabled(world: World) -> None:
    cfg = world.config().with_changes(
        transports=(TransportSpec("ssh"), TransportSpec("rsync"), TransportSpec("http"))
    )
    bus, recorder = EventBus(ManualClock()), EventRecorder()
    bus.subscribe(recorder)
    async with ClusterTransport(config=CONFIG, events=bus, clock=bus.clock) as ct:
        router = SyncRouter(ct, nodes=[cfg])
        result = await router.sync_to_node(
            cfg.name, world.tmp / "x.db", remote_path="does/not/exist.db", direction="pull"
        )

        assert (result.success, result.error_kind) == (False, "not_found")
        assert [a.transport for a in result.attempts] == ["ssh"]
        assert router.get_disabled_nodes() == {}
        assert recorder.of_type(EventType.SYNC_STALLED) == []
        assert recorder.of_type(EventType.NODE_DISABLED) == []
