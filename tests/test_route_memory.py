"""Route memory on the manual clock: demotion, cooldown edges, lengthening, reset, events."""

from __future__ import annotations

from pathlib import Path

import pytest

from netfault.engine.clock import ManualClock
from netfault.engine.config import TransportConfig
from netfault.engine.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionReset,
    IntegrityError,
    TransportTimeout,
    TransportUnavailable,
)
from netfault.engine.events import EventBus, EventRecorder, EventType
from netfault.engine.route_memory import (
    RouteMemory,
    RouteName,
    RouteStatus,
    connect_failure,
    route_of,
)
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport
from netfault.simulator.cluster import LocalCluster

TS, HOST = RouteName.TAILSCALE, RouteName.HOSTNAME
TICK = 0.001
ORDER = ["tailscale", "ssh", "base64", "http"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def recorder() -> EventRecorder:
    return EventRecorder()


@pytest.fixture
def memory(clock: ManualClock, recorder: EventRecorder) -> RouteMemory:
    bus = EventBus(clock)
    bus.subscribe(recorder)
    return RouteMemory(cooldown=60.0, max_cooldown=240.0, clock=clock, events=bus)


def route_events(recorder: EventRecorder) -> list[tuple[str, str, str, float]]:
    return [
        (str(e.type), e.data["route"], e.data["reason"], e.monotonic)
        for e in recorder.of_type(EventType.ROUTE_DEMOTED, EventType.ROUTE_RESTORED)
    ]


@pytest.mark.parametrize(
    ("candidate", "route"),
    [
        ("tailscale", TS),
        ("http:tailscale", TS),
        ("ssh", HOST),
        ("rsync", HOST),
        ("base64", HOST),
        ("scp", HOST),
        ("http", HOST),
        ("http:hostname", HOST),
    ],
)
def test_each_transport_rides_its_nodes_route(candidate: str, route: RouteName) -> None:
    assert route_of(candidate) is route


def test_healthy_node_keeps_its_configured_order(memory: RouteMemory) -> None:
    assert memory.order("n1", ORDER, route_of) == ORDER


def test_demoted_tailscale_route_moves_after_the_hostname_transports(
    memory: RouteMemory,
) -> None:
    memory.record_failure("n1", TS, "timeout")
    assert memory.order("n1", ORDER, route_of) == ["ssh", "base64", "http", "tailscale"]
    assert memory.order("n2", ORDER, route_of) == ORDER  # other nodes unaffected


def test_demotion_never_drops_a_candidate_when_every_route_is_demoted(
    memory: RouteMemory,
) -> None:
    memory.record_failure("n1", HOST, "connect")
    memory.record_failure("n1", TS, "connect")
    assert memory.order("n1", ORDER, route_of) == ORDER


def test_cooldown_ends_exactly_at_its_length(memory: RouteMemory, clock: ManualClock) -> None:
    memory.record_failure("n1", TS, "connect")
    clock.advance(60.0 - TICK)
    assert memory.is_demoted("n1", TS)
    clock.advance(TICK)
    assert not memory.is_demoted("n1", TS)
    assert memory.order("n1", ORDER, route_of) == ORDER


def test_repeat_failures_double_the_cooldown_up_to_the_cap(
    memory: RouteMemory, clock: ManualClock
) -> None:
    lengths = []
    for _ in range(5):
        memory.record_failure("n1", TS, "timeout")
        lengths.append(memory.summary()["n1"]["tailscale"].cooldown)
        clock.advance(lengths[-1])
    assert lengths == [60.0, 120.0, 240.0, 240.0, 240.0]


def test_second_cooldown_straddles_its_doubled_length(
    memory: RouteMemory, clock: ManualClock
) -> None:
    memory.record_failure("n1", TS, "timeout")
    clock.advance(60.0)
    memory.record_failure("n1", TS, "timeout")
    clock.advance(120.0 - TICK)
    assert memory.is_demoted("n1", TS)
    clock.advance(TICK)
    assert not memory.is_demoted("n1", TS)


def test_success_resets_the_cooldown_to_its_base(memory: RouteMemory, clock: ManualClock) -> None:
    memory.record_failure("n1", TS, "timeout")
    clock.advance(60.0)
    memory.record_failure("n1", TS, "timeout")
    memory.record_success("n1", TS)
    assert not memory.is_demoted("n1", TS)
    memory.record_failure("n1", TS, "timeout")
    assert memory.summary()["n1"]["tailscale"].cooldown == 60.0


def test_failure_while_demoted_restarts_the_cooldown_without_doubling_or_an_event(
    memory: RouteMemory, clock: ManualClock, recorder: EventRecorder
) -> None:
    memory.record_failure("n1", TS, "timeout")
    clock.advance(10.0)
    memory.record_failure("n1", TS, "connect")
    assert memory.summary() == {"n1": {"tailscale": RouteStatus(2, 60.0, 60.0, "connect")}}
    assert route_events(recorder) == [("ROUTE_DEMOTED", "tailscale", "timeout", 0.0)]


def test_events_mark_each_change_of_state_in_order(
    memory: RouteMemory, clock: ManualClock, recorder: EventRecorder
) -> None:
    memory.record_failure("n1", TS, "timeout")
    clock.advance(60.0)
    memory.order("n1", ORDER, route_of)
    memory.record_failure("n1", TS, "connect")
    clock.advance(5.0)
    memory.record_success("n1", TS)
    memory.record_success("n1", TS)  # already healthy: no event
    assert route_events(recorder) == [
        ("ROUTE_DEMOTED", "tailscale", "timeout", 0.0),
        ("ROUTE_RESTORED", "tailscale", "cooldown expired", 60.0),
        ("ROUTE_DEMOTED", "tailscale", "connect", 60.0),
        ("ROUTE_RESTORED", "tailscale", "connected", 65.0),
    ]
    assert all(e.node == "n1" for e in recorder.events)


def test_summary_lists_only_demoted_routes_with_time_left(
    memory: RouteMemory, clock: ManualClock
) -> None:
    assert memory.summary() == {}
    memory.record_failure("n1", TS, "timeout")
    memory.record_failure("n2", HOST, "connect")
    clock.advance(45.0)
    assert memory.summary() == {
        "n1": {"tailscale": RouteStatus(1, 60.0, 15.0, "timeout")},
        "n2": {"hostname": RouteStatus(1, 60.0, 15.0, "connect")},
    }
    clock.advance(15.0)
    assert memory.summary() == {}


def during_setup(error: ConnectionReset) -> ConnectionReset:
    error.connecting = True
    return error


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        pytest.param(ConnectError("refused"), "connect", id="refused"),
        pytest.param(TransportTimeout("no handshake"), "timeout", id="connect-timeout"),
        pytest.param(during_setup(ConnectionReset("rst")), "reset", id="reset-in-handshake"),
        pytest.param(ConnectionReset("rst"), None, id="reset-after-setup-before-data"),
        pytest.param(ConnectionReset("rst", bytes_done=4096), None, id="reset-mid-file"),
        pytest.param(TransportTimeout("stall", bytes_done=1), None, id="stall-mid-file"),
        pytest.param(AuthenticationError("key refused"), None, id="auth"),
        pytest.param(IntegrityError("sha256"), None, id="integrity"),
        pytest.param(ValueError("bug"), None, id="not-a-transport-error"),
    ],
)
def test_only_failures_to_set_up_a_connection_demote_a_route(
    error: Exception, kind: str | None
) -> None:
    assert connect_failure(error) == kind


def test_cooldown_longer_than_its_cap_is_rejected(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="max_cooldown"):
        RouteMemory(cooldown=60.0, max_cooldown=30.0, clock=clock)


def test_default_cap_is_ten_times_the_cooldown(clock: ManualClock) -> None:
    memory = RouteMemory(cooldown=90.0, clock=clock)
    for _ in range(6):
        memory.record_failure("n1", TS, "timeout")
        clock.advance(memory.summary()["n1"]["tailscale"].cooldown)
    memory.record_failure("n1", TS, "timeout")
    assert memory.summary()["n1"]["tailscale"].cooldown == 900.0


@pytest.mark.parametrize(
    ("error", "demoted"),
    [
        pytest.param(TransportTimeout("no handshake"), True, id="connect-timeout-demotes"),
        pytest.param(ConnectionReset("rst", bytes_done=10), False, id="reset-mid-file-restores"),
        pytest.param(None, False, id="success-restores"),
    ],
)
def test_an_attempts_outcome_demotes_or_restores_its_route(
    memory: RouteMemory, error: Exception | None, demoted: bool
) -> None:
    memory.record_failure("n1", HOST, "connect")
    memory.record_attempt("n1", HOST, error)
    assert memory.is_demoted("n1", HOST) is demoted


def test_unavailable_transport_leaves_its_route_as_it_was(memory: RouteMemory) -> None:
    memory.record_failure("n1", TS, "connect")
    memory.record_attempt("n1", TS, TransportUnavailable("no tailscale_ip"))
    assert memory.summary()["n1"]["tailscale"].failures == 1


def test_route_cooldown_and_race_delay_come_from_the_environment() -> None:
    from netfault.engine.config import TransportConfig
    from netfault.engine.thresholds import load_thresholds

    t = load_thresholds({"NETFAULT_ROUTE_COOLDOWN": "15", "NETFAULT_RACE_DELAY": "0.25"})
    assert (t.route_cooldown, TransportConfig.from_thresholds(t).race_delay) == (15.0, 0.25)
    off = load_thresholds({"NETFAULT_RACE_DELAY": "off"})
    assert TransportConfig.from_thresholds(off).race_delay is None
    assert load_thresholds({}).race_delay == 0.5


def test_reset_forgets_one_nodes_routes_and_says_so(
    memory: RouteMemory, clock: ManualClock, recorder: EventRecorder
) -> None:
    memory.record_failure("n1", TS, "timeout")
    memory.record_failure("n2", TS, "timeout")
    clock.advance(1.0)
    memory.reset("n1")
    assert list(memory.summary()) == ["n2"]
    assert route_events(recorder)[-1] == ("ROUTE_RESTORED", "tailscale", "reset", 1.0)
    memory.reset()
    assert memory.summary() == {}


# -- route memory in ClusterTransport.transfer_file, on a LocalCluster ---------------------------


async def test_refused_tailscale_route_is_skipped_until_its_cooldown_ends(tmp_path: Path) -> None:
    clock = ManualClock()
    bus = EventBus(clock)
    recorder = EventRecorder()
    bus.subscribe(recorder)
    src = tmp_path / "src.bin"
    src.write_bytes(bytes(range(256)) * 400)
    config = TransportConfig(connect_timeout=3.0, operation_timeout=20.0, http_timeout=5.0)
    async with (
        LocalCluster(nodes=1, seed=1) as cluster,
        ClusterTransport(config=config, clock=clock, thresholds=Thresholds(), events=bus) as ct,
    ):
        node = cluster.node("node-1")
        fault = cluster.faults.apply("down", "node-1", route="tailscale")

        async def push(name: str) -> list[tuple[str, str | None]]:
            result = await ct.transfer_file(src, name, node)
            assert result.success
            return [(a.transport, a.error_kind) for a in result.attempts]

        assert await push("a.bin") == [("tailscale", "connect"), ("ssh", None)]
        assert await push("b.bin") == [("ssh", None)]
        health = ct.get_health_summary()["node-1"]
        assert health["demoted_routes"]["tailscale"]["retry_in"] == 60.0
        cluster.faults.clear(fault)
        clock.advance(60.0 - TICK)
        assert await push("c.bin") == [("ssh", None)]
        clock.advance(TICK)
        assert await push("d.bin") == [("tailscale", None)]
        assert await cluster.read_remote("node-1", "d.bin") == src.read_bytes()

    assert route_events(recorder) == [
        ("ROUTE_DEMOTED", "tailscale", "connect", 0.0),
        ("ROUTE_RESTORED", "tailscale", "cooldown expired", 60.0),
    ]
    assert "demoted_routes" not in ct.get_health_summary()["node-1"]
