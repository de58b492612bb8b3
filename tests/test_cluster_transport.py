"""ClusterTransport failover, breaker accounting and events, on a ManualClock.

File transfers go through scripted in-memory transports; ``http_request_with_failover``
goes to real aiohttp servers on 127.0.0.1 port 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from aiohttp import web

from netfault.engine.breaker import BreakerState
from netfault.engine.clock import ManualClock
from netfault.engine.config import NodeConfig
from netfault.engine.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionReset,
    IntegrityError,
    RemoteStorageError,
    TransportError,
    TransportTimeout,
)
from netfault.engine.events import (
    EventBus,
    EventRecorder,
    EventType,
    JsonlEventLog,
    read_event_log,
)
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport
from netfault.simulator.scripted import Call, Outcome, ScriptedTransport, scripted_transports

NAMES = ["tailscale", "ssh", "base64", "http"]
NODE = NodeConfig(hostname="n1", tailscale_ip="100.64.0.1")
RECOVERY = 300.0


class Rig:
    def __init__(self, tmp_path: Path, transports: dict[str, ScriptedTransport]) -> None:
        self.clock = ManualClock()
        self.bus = EventBus(self.clock)
        self.recorder = EventRecorder()
        self.bus.subscribe(self.recorder)
        self.transports = transports
        self.ct = ClusterTransport(
            transports=transports,
            clock=self.clock,
            thresholds=Thresholds(breaker_recovery_timeout=RECOVERY),
            events=self.bus,
        )
        self.data = tmp_path / "model.bin"
        self.data.write_bytes(b"weights" * 100)

    @property
    def calls(self) -> list[str]:
        return [c.transport for c in self.transports["ssh"].calls]

    def script(self, **outcomes: Sequence[Outcome]) -> None:
        for name, outcome in outcomes.items():
            self.transports[name].script[NODE.name] = list(outcome)

    async def push(self, node: NodeConfig = NODE) -> tuple[bool, str | None, str | None]:
        result = await self.ct.transfer_file(self.data, "models/model.bin", node)
        return result.success, result.transport_used, result.error_kind

    async def fail_operations(self, count: int) -> None:
        for _ in range(count):
            self.script(**{n: [err(ConnectError, n)] for n in NAMES})
            assert (await self.push())[0] is False

    @property
    def breaker_state(self) -> BreakerState:
        return self.ct.breakers.get(NODE.name).state


def err(kind: type[TransportError], transport: str) -> TransportError:
    return kind(f"{transport}@n1: {kind.__name__}", node="n1", transport=transport)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path, scripted_transports(NAMES))


# -- failover table ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("script", "winner", "attempts"),
    [
        pytest.param(
            {"tailscale": [ConnectError]},
            "ssh",
            [("tailscale", "connect"), ("ssh", None)],
            id="tailscale-refused-then-ssh",
        ),
        pytest.param(
            {"tailscale": [ConnectError], "ssh": [ConnectionReset]},
            "base64",
            [("tailscale", "connect"), ("ssh", "reset"), ("base64", None)],
            id="ssh-reset-then-base64",
        ),
        pytest.param(
            {"tailscale": [IntegrityError]},
            "tailscale",
            [("tailscale", "integrity"), ("tailscale", None)],
            id="integrity-once-then-same-transport",
        ),
        pytest.param(
            {"tailscale": [IntegrityError, IntegrityError]},
            "ssh",
            [("tailscale", "integrity"), ("tailscale", "integrity"), ("ssh", None)],
            id="integrity-twice-then-next-transport",
        ),
        pytest.param(
            {
                "tailscale": [TransportTimeout],
                "ssh": [AuthenticationError],
                "base64": [RemoteStorageError],
                "http": [ConnectError],
            },
            None,
            [
                ("tailscale", "timeout"),
                ("ssh", "auth"),
                ("base64", "storage"),
                ("http", "connect"),
            ],
            id="all-fail",
        ),
    ],
)
async def test_failover_table(
    rig: Rig,
    script: dict[str, list[type[TransportError]]],
    winner: str | None,
    attempts: list[tuple[str, str | None]],
) -> None:
    rig.script(**{name: [err(kind, name) for kind in kinds] for name, kinds in script.items()})

    result = await rig.ct.transfer_file(rig.data, "models/model.bin", NODE)

    assert (result.success, result.transport_used) == (winner is not None, winner)
    assert [(a.transport, a.error_kind) for a in result.attempts] == attempts
    assert rig.calls == [t for t, _ in attempts]
    if winner is None:
        assert result.error_kind == "storage"  # the most telling kind, not the last one
        assert all(f"{t}@n1" in (result.error or "") for t, _ in attempts)
    else:
        assert result.bytes_transferred == len(rig.data.read_bytes())
        assert rig.transports[winner].files[("n1", "models/model.bin")] == rig.data.read_bytes()


# -- breaker -------------------------------------------------------------------------------------
async def test_one_failed_over_operation_is_one_breaker_failure(rig: Rig) -> None:
    await rig.fail_operations(1)
    assert (rig.breaker_state, rig.ct.breakers.get("n1").failures) == (BreakerState.CLOSED, 1)

    await rig.fail_operations(2)
    assert rig.breaker_state is BreakerState.OPEN


async def test_open_breaker_skips_node_without_a_call(rig: Rig) -> None:
    await rig.fail_operations(3)
    rig.transports["ssh"].calls.clear()

    result = await rig.ct.transfer_file(rig.data, "models/model.bin", NODE)

    assert (result.success, result.error_kind, result.attempts) == (False, "breaker_open", [])
    assert rig.calls == []
    assert rig.ct.can_attempt("n1") is False


@pytest.mark.parametrize(
    ("wait", "calls", "outcome"),
    [
        pytest.param(RECOVERY - 0.001, [], (False, None, "breaker_open"), id="299.999s-refused"),
        pytest.param(RECOVERY, ["tailscale"], (True, "tailscale", None), id="300s-one-probe"),
    ],
)
async def test_half_open_admits_one_probe_exactly_at_recovery_timeout(
    rig: Rig, wait: float, calls: list[str], outcome: tuple[bool, str | None, str | None]
) -> None:
    await rig.fail_operations(3)
    rig.transports["ssh"].calls.clear()

    rig.clock.advance(wait)

    assert await rig.push() == outcome
    assert rig.calls == calls


async def test_half_open_refuses_a_second_caller_while_the_probe_runs(tmp_path: Path) -> None:
    rig = Rig(tmp_path, scripted_transports(NAMES))
    await rig.fail_operations(3)
    rig.clock.advance(RECOVERY)
    rig.transports["tailscale"].delay = 3600.0  # the probe hangs until cancelled
    started = asyncio.Event()
    rig.bus.subscribe(lambda e: started.set() if e.type is EventType.ATTEMPT_STARTED else None)

    probe = asyncio.create_task(rig.push())
    await started.wait()
    second = await rig.push()

    assert second == (False, None, "breaker_open")
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert rig.breaker_state is BreakerState.HALF_OPEN
    assert rig.ct.can_attempt("n1") is True


async def test_cancelled_operation_neither_fails_nor_succeeds_the_breaker(rig: Rig) -> None:
    await rig.fail_operations(2)
    rig.transports["tailscale"].delay = 3600.0
    started = asyncio.Event()
    rig.bus.subscribe(lambda e: started.set() if e.type is EventType.ATTEMPT_STARTED else None)

    task = asyncio.create_task(rig.push())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    breaker = rig.ct.breakers.get("n1")
    assert (breaker.state, breaker.failures) == (BreakerState.CLOSED, 2)
    rig.transports["tailscale"].delay = 0.0
    await rig.fail_operations(1)
    assert rig.breaker_state is BreakerState.OPEN


async def test_unavailable_transport_is_skipped_and_not_counted(tmp_path: Path) -> None:
    transports = scripted_transports(NAMES)
    transports["ssh"] = ScriptedTransport(
        "ssh", calls=transports["tailscale"].calls, available=False
    )
    rig = Rig(tmp_path, transports)
    rig.script(tailscale=[err(ConnectError, "tailscale")])

    result = await rig.ct.transfer_file(rig.data, "models/model.bin", NODE)

    assert (result.transport_used, result.transports_tried) == ("base64", ["tailscale", "base64"])
    skipped = [e.transport for e in rig.recorder.of_type(EventType.ATTEMPT_SKIPPED)]
    assert skipped == ["ssh"]


async def test_operation_with_no_available_transport_never_opens_the_breaker(
    tmp_path: Path,
) -> None:
    calls: list[Call] = []
    transports = {n: ScriptedTransport(n, calls=calls, available=False) for n in NAMES}
    rig = Rig(tmp_path, transports)

    results = [await rig.push() for _ in range(5)]

    assert results == [(False, None, "unavailable")] * 5
    assert calls == []
    assert rig.ct.get_health_summary()["n1"]["failures"] == 0
    assert rig.breaker_state is BreakerState.CLOSED


async def test_breaker_transitions_are_events_with_from_and_to(rig: Rig) -> None:
    await rig.fail_operations(3)
    rig.clock.advance(RECOVERY)
    await rig.push()

    transitions = rig.recorder.of_type(EventType.BREAKER_TRANSITION)
    assert [(e.node, e.data["from"], e.data["to"]) for e in transitions] == [
        ("n1", "closed", "open"),
        ("n1", "open", "half_open"),
        ("n1", "half_open", "closed"),
    ]
    assert [e.monotonic for e in transitions] == [0.0, RECOVERY, RECOVERY]


def test_health_summary_is_empty_before_any_operation(rig: Rig) -> None:
    assert rig.ct.get_health_summary() == {}


async def test_health_summary_reports_state_failures_opened_at_and_retry_in(rig: Rig) -> None:
    await rig.fail_operations(1)
    demoted = {"cooldown": 60.0, "retry_in": 60.0, "last_error": "connect"}
    assert rig.ct.get_health_summary() == {
        "n1": {
            "state": "closed",
            "failures": 1,
            "opened_at": None,
            "retry_in": 0.0,
            "demoted_routes": {
                "tailscale": {"failures": 1, **demoted},
                "hostname": {"failures": 3, **demoted},  # ssh, base64 and http refused
            },
        }
    }
    rig.clock.advance(10.0)
    await rig.fail_operations(2)
    rig.clock.advance(100.0)

    assert rig.ct.get_health_summary() == {
        "n1": {"state": "open", "failures": 3, "opened_at": 10.0, "retry_in": RECOVERY - 100.0}
    }


async def test_reset_circuit_breakers_closes_the_breaker_and_calls_again(rig: Rig) -> None:
    await rig.fail_operations(3)
    rig.transports["ssh"].calls.clear()

    rig.ct.reset_circuit_breakers()

    assert rig.ct.get_health_summary()["n1"]["state"] == "closed"
    assert await rig.push() == (True, "tailscale", None)
    assert rig.calls == ["tailscale"]


# -- events and their log ------------------------------------------------------------------------
async def test_each_attempt_and_the_operation_emit_events(rig: Rig) -> None:
    rig.script(tailscale=[err(ConnectError, "tailscale")])

    await rig.push()

    seen = [(str(e.type), e.transport, e.error_kind) for e in rig.recorder.events]
    assert seen == [
        ("ATTEMPT_STARTED", "tailscale", None),
        ("ATTEMPT_FAILED", "tailscale", "connect"),
        ("ROUTE_DEMOTED", None, None),
        ("ATTEMPT_STARTED", "ssh", None),
        ("ATTEMPT_SUCCEEDED", "ssh", None),
        ("OPERATION_SUCCEEDED", "ssh", None),
    ]
    done = rig.recorder.events[-1]
    assert (done.node, done.operation, done.bytes) == ("n1", "push", 700)


async def test_failed_operation_emits_operation_failed(rig: Rig) -> None:
    await rig.fail_operations(1)

    [failed] = rig.recorder.of_type(EventType.OPERATION_FAILED)
    assert (failed.node, failed.outcome, failed.error_kind) == ("n1", "failure", "connect")


async def test_jsonl_event_log_reads_back_equal(rig: Rig, tmp_path: Path) -> None:
    log = JsonlEventLog(tmp_path / "logs" / "events.jsonl")
    rig.bus.subscribe(log)
    rig.script(tailscale=[err(IntegrityError, "tailscale")], ssh=[err(ConnectionReset, "ssh")])
    await rig.push()
    await rig.fail_operations(3)
    rig.clock.advance(RECOVERY)
    await rig.push()
    log.close()

    assert read_event_log(log.path) == rig.recorder.events
    assert len(log.path.read_text().splitlines()) == len(rig.recorder.events)


async def test_push_of_a_missing_local_file_fails_at_once_without_calling(
    rig: Rig, tmp_path: Path
) -> None:
    result = await rig.ct.transfer_file(tmp_path / "missing.db", "missing.db", NODE)

    assert (result.success, result.error_kind, result.attempts) == (False, "not_found", [])
    assert "missing.db" in (result.error or "")
    assert rig.calls == []
    assert rig.ct.get_health_summary().get("n1", {}).get("failures", 0) == 0
    [failed] = rig.recorder.of_type(EventType.OPERATION_FAILED)
    assert (failed.outcome, failed.error_kind) == ("rejected", "not_found")


# -- HTTP failover against real servers ------------------------------------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
StartServer = Callable[[int], Awaitable["Server"]]


async def serve(handler: Handler) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


class Server:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.seen: list[tuple[str, str, str | None]] = []
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.path, request.headers.get("Authorization")))
        return web.json_response({"path": request.path}, status=self.status)


@pytest.fixture
async def servers() -> AsyncIterator[StartServer]:
    runners: list[web.AppRunner] = []
    started: list[Server] = []

    async def start(status: int) -> Server:
        server = Server(status)
        runner, server.port = await serve(server.handle)
        runners.append(runner)
        started.append(server)
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def http_ct() -> AsyncIterator[tuple[ClusterTransport, EventRecorder]]:
    clock = ManualClock()
    bus = EventBus(clock)
    recorder = EventRecorder()
    bus.subscribe(recorder)
    ct = ClusterTransport(transports={}, clock=clock, thresholds=Thresholds(), events=bus)
    yield ct, recorder
    await ct.close()


async def test_http_refused_tailscale_route_fails_over_to_hostname(
    servers: StartServer, http_ct: tuple[ClusterTransport, EventRecorder]
) -> None:
    ct, _ = http_ct
    server = await servers(200)
    node = NodeConfig(hostname="127.0.0.1", tailscale_ip="127.0.0.2")

    result = await ct.http_request_with_failover(node, "/status", port=server.port)

    assert (result.success, result.status, result.transport_used) == (True, 200, "hostname")
    assert result.json() == {"path": "/status"}
    kinds = [(a.transport, a.error_kind) for a in result.attempts]
    assert kinds == [("http:tailscale", "connect"), ("http:hostname", None)]
    assert server.seen == [("GET", "/status", None)]
    assert ct.get_health_summary()["127.0.0.1"]["failures"] == 0


async def test_http_5xx_on_the_first_route_fails_over(
    servers: StartServer, http_ct: tuple[ClusterTransport, EventRecorder]
) -> None:
    ct, recorder = http_ct
    broken = await servers(503)
    healthy = await servers(200)
    node = NodeConfig(
        hostname="127.0.0.1",
        tailscale_ip="127.0.0.1",
        tailscale_http_port=broken.port,
        http_port=healthy.port,
    )

    result = await ct.http_request_with_failover(node, "/api/sync", "POST", json={"a": 1})

    assert (result.success, result.status, result.transport_used) == (True, 200, "hostname")
    assert [(a.transport, a.error_kind) for a in result.attempts] == [
        ("http:tailscale", "http_5xx"),
        ("http:hostname", None),
    ]
    assert broken.seen == healthy.seen == [("POST", "/api/sync", None)]
    failed = recorder.of_type(EventType.ATTEMPT_FAILED)
    assert [(e.transport, e.error_kind) for e in failed] == [("http:tailscale", "http_5xx")]


async def test_http_all_routes_5xx_is_one_breaker_failure(
    servers: StartServer, http_ct: tuple[ClusterTransport, EventRecorder]
) -> None:
    ct, _ = http_ct
    broken = await servers(500)
    node = NodeConfig(hostname="127.0.0.1", tailscale_ip="127.0.0.1")

    result = await ct.http_request_with_failover(node, "/status", port=broken.port)

    assert (result.success, result.status, result.error_kind) == (False, 500, "http_5xx")
    assert len(broken.seen) == 2
    assert ct.get_health_summary()["127.0.0.1"]["failures"] == 1


async def test_http_sends_the_nodes_bearer_token(
    servers: StartServer, http_ct: tuple[ClusterTransport, EventRecorder]
) -> None:
    ct, _ = http_ct
    server = await servers(200)
    node = NodeConfig(hostname="127.0.0.1", http_port=server.port, http_token="s3cret")

    result = await ct.http_request_with_failover(node, "health")

    assert result.success
    assert server.seen == [("GET", "/health", "Bearer s3cret")]
