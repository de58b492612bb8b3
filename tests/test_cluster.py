"""LocalCluster end to end: every named fault as the engine sees it, isolation and teardown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.hosts import load_hosts
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport
from netfault.simulator.cluster import FaultError, LocalCluster
from netfault.simulator.cluster.loop_thread import LoopThread

pytestmark = pytest.mark.asyncio(loop_scope="module")

CFG = TransportConfig(connect_timeout=3.0, operation_timeout=20.0, http_timeout=5.0)
# a blackhole is only noticed by a timeout: keep it short so the case stays quick
QUICK = TransportConfig(connect_timeout=1.0, operation_timeout=3.0, http_timeout=2.0)
DEFAULT_ORDER = ["tailscale", "ssh", "base64", "http"]
# > 64 KiB and every byte value, so a binary-only fault always has something to bite
PAYLOAD = bytes(range(256)) * 800


@pytest.fixture(scope="module")
def netfault_nodes() -> int:
    return 5


@pytest.fixture(scope="module")
def netfault_seed() -> int:
    return 1


@pytest.fixture
def cluster(netfault_cluster: LocalCluster) -> LocalCluster:
    """The plugin's module cluster; its faults are cleared after every test."""
    return netfault_cluster


@pytest_asyncio.fixture(loop_scope="module")
async def ct() -> AsyncIterator[ClusterTransport]:
    async with ClusterTransport(config=CFG, thresholds=Thresholds()) as transport:
        yield transport


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "src.bin"
    path.write_bytes(PAYLOAD)
    return path


# -- helpers ---------------------------------------------------------------------


def failed_transports(result: Any) -> list[str]:
    """Transports with at least one failed attempt, in the order they were tried."""
    seen: list[str] = []
    for a in result.attempts:
        if not a.success and a.transport not in seen:
            seen.append(a.transport)
    return seen


def failure_kinds(result: Any) -> set[str | None]:
    return {a.error_kind for a in result.attempts if not a.success}


def describe(result: Any) -> str:
    return "; ".join(
        f"{a.transport}:{'ok' if a.success else a.error_kind}:{a.message or ''}"
        for a in result.attempts
    )


def proxy_state(cluster: LocalCluster, node: str) -> dict[str, tuple[bool, list[str]]]:
    """{proxy name: (enabled, toxic names)} for the node's proxies, read with toxiproxy-python."""
    with cluster.faults.client() as tp:
        return {
            name: (proxy.enabled, sorted(proxy.toxics()))
            for name, proxy in tp.proxies().items()
            if name.startswith(f"{node}-")
        }


async def assert_node_clean(
    cluster: LocalCluster, ct: ClusterTransport, node: str, src: Path
) -> None:
    """No fault left anywhere on the node, and a transfer takes the first transport again."""
    assert cluster.faults.active == []
    state = await asyncio.to_thread(proxy_state, cluster, node)
    assert len(state) == 6
    assert state == {name: (True, []) for name in state}
    assert cluster.fake(node).faults.active() == {}
    ct.reset_circuit_breakers()
    result = await ct.transfer_file(src, "after-clear.bin", cluster.node(node), "push")
    assert result.success, describe(result)
    assert result.transports_tried == ["tailscale"]
    assert await cluster.read_remote(node, "after-clear.bin") == PAYLOAD


def children_of_this_process() -> set[int]:
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # it ended while we looked
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            found.add(int(entry))
    return found


async def refused(host: str, port: int) -> bool:
    """Whether nothing accepts connections on host:port."""
    try:
        async with asyncio.timeout(2):
            _, writer = await asyncio.open_connection(host, port)
    except (ConnectionRefusedError, ConnectionResetError):  # reset: closed while in backlog
        return True
    writer.close()
    return False


# -- every named fault, push and pull ------------------------------------------------


@dataclass(frozen=True)
class Case:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    order: list[str] | None = None
    winners: tuple[str | None, ...] = ("tailscale",)  # None: the operation fails
    failed: list[str] | None = field(default_factory=list)  # None: not checked
    kinds: frozenset[str] = frozenset()
    pull_winners: tuple[str | None, ...] | None = None  # default: as for push
    pull_failed: list[str] | None = None
    min_attempt_ms: float = 0.0
    config: TransportConfig = CFG


SSH_PATH = ["tailscale", "ssh", "base64"]
CASES = [
    pytest.param(
        Case(
            "reset",
            {"route": "tailscale"},
            winners=("ssh",),
            failed=["tailscale"],
            kinds=frozenset({"connect", "reset"}),
            pull_failed=[],  # the push demoted the tailscale route: the pull goes ssh first
        ),
        id="reset-tailscale-then-ssh",
    ),
    pytest.param(
        Case(
            "reset",
            {"service": "http"},
            ["http", "base64"],
            ("base64",),
            ["http"],
            frozenset({"reset"}),
        ),
        id="reset-http-is-a-reset-then-base64",
    ),
    pytest.param(
        Case(
            "reset",
            {"level": "ssh", "after_bytes": 65536},
            ["ssh", "rsync", "base64"],
            ("base64",),
            ["ssh", "rsync"],
            frozenset({"reset"}),
        ),
        id="reset-after-64k-ssh-level-then-base64",
    ),
    pytest.param(
        Case(
            "reset",
            {"route": "hostname", "service": "ssh", "after_bytes": 65536},
            ["ssh", "rsync", "http"],
            ("http",),
            ["ssh", "rsync"],
            frozenset({"reset"}),
        ),
        id="reset-after-64k-tcp-then-http",
    ),
    pytest.param(
        Case(
            "corrupt_binary",
            {"route": "tailscale", "probability": 0.01},
            winners=("ssh",),
            # the pull retries tailscale only when the push's damage came after the handshake
            # (a broken handshake demotes the route); which one depends on the seeded offsets
            failed=None,
        ),
        id="corrupt-tcp-tailscale-then-ssh",
    ),
    pytest.param(
        Case(
            "corrupt_binary",
            {"level": "ssh"},
            winners=("base64",),
            failed=["tailscale", "ssh"],
            kinds=frozenset({"integrity"}),
        ),
        id="corrupt-ssh-level-then-base64",
    ),
    pytest.param(
        Case(
            "timeout",
            {"route": "hostname", "service": "ssh"},
            ["ssh", "http"],
            ("http",),
            ["ssh"],
            frozenset({"timeout"}),
            config=QUICK,
        ),
        id="blackhole-ssh-times-out-then-http",
    ),
    pytest.param(Case("latency", {"latency_ms": 50}, min_attempt_ms=100), id="latency"),
    pytest.param(Case("bandwidth", {"rate_kbps": 500}, min_attempt_ms=300), id="bandwidth"),
    pytest.param(
        Case(
            "down",
            {"route": "tailscale"},
            winners=("ssh",),
            failed=["tailscale"],
            kinds=frozenset({"connect"}),
            pull_failed=[],  # the push demoted the tailscale route: the pull goes ssh first
        ),
        id="down-tailscale-refused-then-ssh",
    ),
    pytest.param(Case("slow_close", {"delay_ms": 300}), id="slow-close"),
    pytest.param(
        Case(
            "flapping",
            {"route": "tailscale", "schedule": "wall_clock", "period_s": 0.2},
            winners=("tailscale", "ssh"),
            failed=None,
        ),
        id="flapping-tailscale",
    ),
    pytest.param(
        Case("auth_refused", winners=("http",), failed=SSH_PATH, kinds=frozenset({"auth"})),
        id="auth-refused-then-http",
    ),
    pytest.param(
        Case("host_key_changed", winners=("http",), failed=SSH_PATH, kinds=frozenset({"auth"})),
        id="host-key-changed-then-http",
    ),
    pytest.param(
        Case(
            "disk_full",
            winners=(None,),
            failed=DEFAULT_ORDER,
            kinds=frozenset({"storage"}),
            pull_winners=("tailscale",),
            pull_failed=[],
        ),
        id="disk-full-push-fails-pull-works",
    ),
    pytest.param(
        Case(
            "http_down",
            {},
            ["http", "base64"],
            ("base64",),
            ["http"],
            frozenset({"connect", "reset"}),
        ),
        id="http-down-then-base64",
    ),
    pytest.param(
        Case("http_5xx", {}, ["http", "base64"], ("base64",), ["http"], frozenset({"http_5xx"})),
        id="http-5xx-then-base64",
    ),
]


def check(
    result: Any, winners: tuple[str | None, ...], failed: list[str] | None, case: Case
) -> None:
    assert result.transport_used in winners, describe(result)
    assert result.success is (result.transport_used is not None)
    if failed is not None:
        assert failed_transports(result) == failed, describe(result)
    if case.kinds:
        assert failure_kinds(result) <= case.kinds, describe(result)
    if result.transport_used is None:
        assert result.error_kind in case.kinds
    for attempt in result.attempts:
        assert attempt.duration_ms >= case.min_attempt_ms, describe(result)


@pytest.mark.parametrize("case", CASES)
async def test_named_fault_push_and_pull(
    cluster: LocalCluster, ct: ClusterTransport, src: Path, tmp_path: Path, case: Case
) -> None:
    node = "node-2"
    params = dict(case.params)
    where = {k: params.pop(k) for k in ("route", "service") if k in params}
    pulled_bytes = PAYLOAD[::-1]
    remote_src = cluster.home_path(node, "to-pull.bin")
    await asyncio.to_thread(remote_src.write_bytes, pulled_bytes)
    await asyncio.to_thread(cluster.home_path(node, "pushed.bin").unlink, True)

    fault = cluster.faults.apply(case.kind, node, **where, **params)
    assert cluster.faults.active == [fault]
    push = await ct.transfer_file(
        src, "pushed.bin", cluster.node(node), "push", case.config, transports=case.order
    )
    pull = await ct.transfer_file(
        tmp_path / "pulled.bin",
        "to-pull.bin",
        cluster.node(node),
        "pull",
        case.config,
        transports=case.order,
    )
    cluster.faults.clear(fault)

    check(push, case.winners, case.failed, case)
    expected_on_node = PAYLOAD if push.success else None
    assert await cluster.read_remote(node, "pushed.bin") == expected_on_node
    pull_failed = case.failed if case.pull_failed is None else case.pull_failed
    check(pull, case.pull_winners or case.winners, pull_failed, case)
    assert (tmp_path / "pulled.bin").read_bytes() == pulled_bytes
    assert fault.cleared
    await assert_node_clean(cluster, ct, node, src)


# -- faults that matter beyond one transfer ------------------------------------------


async def test_down_on_every_route_refuses_every_attempt_and_opens_the_breaker(
    cluster: LocalCluster, ct: ClusterTransport, src: Path
) -> None:
    node = cluster.node("node-3")
    cluster.faults.apply("down", "node-3")
    for _ in range(3):
        result = await ct.transfer_file(src, "down.bin", node, "push")
        assert not result.success
        assert result.transports_tried == DEFAULT_ORDER
        assert failure_kinds(result) == {"connect"}, describe(result)
    assert ct.get_health_summary()["node-3"]["state"] == "open"

    fourth = await ct.transfer_file(src, "down.bin", node, "push")
    assert fourth.attempts == []
    assert fourth.error_kind == "breaker_open"
    assert await cluster.read_remote("node-3", "down.bin") is None


async def test_down_refuses_http_on_both_routes(
    cluster: LocalCluster, ct: ClusterTransport
) -> None:
    cluster.faults.apply("down", "node-3", service="http")
    result = await ct.http_request_with_failover(cluster.node("node-3"), "/health")
    assert not result.success
    assert [(a.transport, a.error_kind) for a in result.attempts] == [
        ("http:tailscale", "connect"),
        ("http:hostname", "connect"),
    ]


async def test_reset_on_http_is_reported_as_reset_by_api_calls(
    cluster: LocalCluster, ct: ClusterTransport
) -> None:
    cluster.faults.apply("reset", "node-3", service="http")
    result = await ct.http_request_with_failover(cluster.node("node-3"), "/health")
    assert not result.success
    assert [(a.transport, a.error_kind) for a in result.attempts] == [
        ("http:tailscale", "reset"),
        ("http:hostname", "reset"),
    ], describe(result)


async def test_http_5xx_fails_api_calls_over_on_both_routes(
    cluster: LocalCluster, ct: ClusterTransport
) -> None:
    fault = cluster.faults.apply("http_5xx", "node-4")
    failing = await ct.http_request_with_failover(cluster.node("node-4"), "/health")
    cluster.faults.clear(fault)
    ok = await ct.http_request_with_failover(cluster.node("node-4"), "/health")
    assert failing.status == 503
    assert failure_kinds(failing) == {"http_5xx"}
    assert len(failing.attempts) == 2
    assert ok.success and ok.transport_used == "tailscale"


async def test_flapping_takes_a_route_down_and_up_until_cleared(cluster: LocalCluster) -> None:
    cfg = cluster.node("node-4")
    fault = cluster.faults.apply(
        "flapping",
        "node-4",
        route="hostname",
        service="http",
        schedule="wall_clock",
        period_s=0.05,
    )
    seen: set[bool] = set()
    async with asyncio.timeout(10):
        while seen != {True, False}:
            seen.add(await refused(cfg.hostname, cfg.http_port))
    cluster.faults.clear(fault)
    assert not any(t.name == f"flapping-{fault.id}" for t in threading.enumerate())
    assert [await refused(cfg.hostname, cfg.http_port) for _ in range(20)] == [False] * 20


async def test_slow_close_delays_the_end_of_a_response(cluster: LocalCluster) -> None:
    cfg = cluster.node("node-5")

    async def seconds_from_answer_to_eof() -> float:
        reader, writer = await asyncio.open_connection(cfg.hostname, cfg.http_port)
        writer.write(b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(5):
            first = await reader.read(1)
            started = asyncio.get_running_loop().time()
            rest = await reader.read()
        writer.close()
        assert (first + rest).startswith(b"HTTP/1.")
        return asyncio.get_running_loop().time() - started

    fault = cluster.faults.apply("slow_close", "node-5", delay_ms=400)
    slowed = await seconds_from_answer_to_eof()
    cluster.faults.clear(fault)
    assert slowed >= 0.3


# -- FaultController errors ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "node", "kwargs", "message"),
    [
        pytest.param(
            "meteor",
            "node-1",
            {},
            "unknown fault 'meteor' (known: reset, corrupt_binary,",
            id="unknown-fault",
        ),
        pytest.param(
            "down",
            "node-9",
            {},
            "unknown node 'node-9' (cluster has: node-1, node-2,",
            id="unknown-node",
        ),
        pytest.param(
            "latency",
            "node-1",
            {"delay": 5},
            "fault latency has no parameter 'delay' (known: latency_ms, jitter_ms)",
            id="unknown-param",
        ),
        pytest.param(
            "reset",
            "node-1",
            {"level": "bogus"},
            "fault reset: level 'bogus' is not one of: tcp, ssh",
            id="level-outside-its-choices",
        ),
        pytest.param(
            "latency",
            "node-1",
            {"latency_ms": "5"},
            "latency_ms must be int, got '5'",
            id="bad-type",
        ),
        pytest.param(
            "disk_full",
            "node-1",
            {"quota_bytes": True},
            "quota_bytes must be int, got True",
            id="bool-is-not-int",
        ),
        pytest.param(
            "down",
            "node-1",
            {"route": "wifi"},
            "unknown route 'wifi' (known: hostname, tailscale)",
            id="unknown-route",
        ),
        pytest.param(
            "down",
            "node-1",
            {"service": "ftp"},
            "unknown service 'ftp' (known: ssh, http, p2p)",
            id="unknown-service",
        ),
    ],
)
async def test_bad_fault_raises_and_changes_nothing(
    cluster: LocalCluster, kind: str, node: str, kwargs: dict[str, Any], message: str
) -> None:
    before = await asyncio.to_thread(proxy_state, cluster, "node-1")
    with pytest.raises(FaultError, match=re.escape(message)):
        cluster.faults.apply(kind, node, **kwargs)
    assert cluster.faults.active == []
    assert await asyncio.to_thread(proxy_state, cluster, "node-1") == before
    assert cluster.fake("node-1").faults.active() == {}


# -- the hosts file ------------------------------------------------------------------


async def test_hosts_file_loads_as_the_clusters_nodes(cluster: LocalCluster) -> None:
    loaded = await asyncio.to_thread(load_hosts, cluster.hosts_file)
    assert loaded == cluster.nodes
    assert list(loaded) == [f"node-{i}" for i in range(1, 6)]


# -- two clusters, teardown ------------------------------------------------------------


def endpoints(cfg: NodeConfig) -> set[tuple[str | None, int | None]]:
    return {
        (cfg.hostname, cfg.ssh_port),
        (cfg.hostname, cfg.http_port),
        (cfg.hostname, cfg.p2p_port),
        (cfg.tailscale_ip, cfg.tailscale_ssh_port),
        (cfg.tailscale_ip, cfg.tailscale_http_port),
    }


async def test_two_clusters_do_not_collide(src: Path) -> None:
    async with (
        LocalCluster(nodes=2, seed=1) as a,
        LocalCluster(nodes=2, seed=1) as b,
        ClusterTransport(config=CFG, thresholds=Thresholds()) as ct,
    ):
        a1, b1 = a.node("node-1"), b.node("node-1")
        a_eps = set().union(*(endpoints(c) for c in a.nodes.values()))
        b_eps = set().union(*(endpoints(c) for c in b.nodes.values()))
        assert len(a_eps) == len(b_eps) == 10
        assert a_eps.isdisjoint(b_eps)
        assert a1.http_token != b1.http_token
        assert a1.ssh_key != b1.ssh_key
        assert a1.ssh_key is not None and b1.ssh_key is not None
        assert a1.ssh_key.read_bytes() != b1.ssh_key.read_bytes()
        assert a1.known_hosts is not None and b1.known_hosts is not None
        a_keys = {line.split()[-1] for line in a1.known_hosts.read_text().splitlines()}
        b_keys = {line.split()[-1] for line in b1.known_hosts.read_text().splitlines()}
        assert a_keys.isdisjoint(b_keys)
        assert a.hosts_file != b.hosts_file

        a.faults.apply("down", "node-1")
        on_a = await ct.transfer_file(src, "x.bin", a1, "push")
        on_b = await ct.transfer_file(src, "x.bin", b1, "push")
        assert not on_a.success and failure_kinds(on_a) == {"connect"}
        assert on_b.success and on_b.transports_tried == ["tailscale"]
        assert await b.read_remote("node-1", "x.bin") == PAYLOAD
        assert await a.read_remote("node-1", "x.bin") is None
        assert b.faults.active == []


class Boom(Exception):
    pass


@pytest.mark.parametrize("body_raises", [False, True], ids=["clean-exit", "body-raised"])
async def test_teardown_leaves_no_port_directory_process_or_thread(
    src: Path, tmp_path: Path, body_raises: bool
) -> None:
    children_before = children_of_this_process()
    threads_before = set(threading.enumerate())
    cluster = LocalCluster(nodes=2, seed=3)
    with pytest.raises(Boom) if body_raises else contextlib.nullcontext():
        async with cluster, ClusterTransport(config=CFG, thresholds=Thresholds()) as ct:
            node = cluster.node("node-1")
            # exercise every kind of server and a subprocess on both ends (rsync)
            for order in (["ssh"], ["rsync"], ["http"]):
                result = await ct.transfer_file(src, "t.bin", node, "push", transports=order)
                assert result.success, describe(result)
            cluster.faults.apply("latency", "node-1", latency_ms=10)
            cluster.faults.apply("auth_refused", "node-2")
            ports = {(cluster.faults.api_host, cluster.faults.api_port)}
            with cluster.faults.client() as tp:
                for proxy in tp.proxies().values():
                    host, _, port = proxy.listen.rpartition(":")
                    ports.add((host, int(port)))
            for name in cluster.nodes:
                fake = cluster.fake(name)
                ports |= {(fake.host, fake.ssh_port), (fake.host, fake.http_port)}
            dirs = [cluster.workdir, *(cluster.fake(n).home.parent for n in cluster.nodes)]
            assert all(d is not None and d.is_dir() for d in dirs)
            new_threads = set(threading.enumerate()) - threads_before
            if body_raises:
                raise Boom()

    cluster_threads = [t for t in new_threads if t.name.startswith("netfault-cluster-")]
    assert len(cluster_threads) == 1
    assert not any(t.is_alive() for t in cluster_threads)
    assert all(d is not None and not d.exists() for d in dirs)
    results = await asyncio.gather(*(refused(h, p) for h, p in ports if h and p))
    assert len(results) == 1 + 2 * 6 + 2 * 2 and all(results)
    for _ in range(200):  # exited children may take a moment to be reaped
        if not children_of_this_process() - children_before:
            break
        await asyncio.sleep(0.05)
    assert children_of_this_process() - children_before == set()
    with pytest.raises(RuntimeError, match="not running"):
        cluster.faults.apply("down", "node-1")


async def test_stopping_the_cluster_loop_cancels_tasks_left_on_it() -> None:
    """A handler still waiting at stop must be cancelled (its finally runs), not destroyed."""
    loop_thread = LoopThread("netfault-test-loop")
    await asyncio.to_thread(loop_thread.start)
    finished = threading.Event()
    tasks: list[asyncio.Task[None]] = []

    async def left_behind() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            finished.set()

    await asyncio.to_thread(
        loop_thread.call,
        lambda: tasks.append(asyncio.get_running_loop().create_task(left_behind())),
    )
    await asyncio.to_thread(loop_thread.stop)
    assert finished.is_set()
