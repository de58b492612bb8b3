"""SyncRouter: the runbook's escalation chain, its API and its alerts, on a ManualClock."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from netfault.engine.breaker import BreakerState
from netfault.engine.clock import ManualClock
from netfault.engine.config import NodeConfig, TransportSpec
from netfault.engine.errors import ConnectError, ConnectionReset, IntegrityError
from netfault.engine.events import EventBus, EventRecorder, EventType
from netfault.engine.results import ProbeResult
from netfault.engine.router import SyncRouter, get_sync_router
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport
from netfault.simulator.scripted import ScriptedTransport, scripted_transports

CHAIN = ["p2p", "http", "rsync", "base64"]
HOUR = 3600.0
DAY = 24 * HOUR


class Rig:
    """A router over scripted transports, with its clock, events and call log at hand."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        thresholds: Thresholds | None = None,
        nodes: Iterable[NodeConfig] = (NodeConfig(hostname="n1"),),
        transports: dict[str, ScriptedTransport] | None = None,
        escalation_order: Iterable[str] = CHAIN,
    ) -> None:
        self.clock = ManualClock()
        self.bus = EventBus(self.clock)
        self.recorder = EventRecorder()
        self.bus.subscribe(self.recorder)
        self.thresholds = thresholds or Thresholds()
        self.transports = transports or scripted_transports(CHAIN)
        self.ct = ClusterTransport(
            transports=self.transports,
            clock=self.clock,
            thresholds=self.thresholds,
            events=self.bus,
        )
        self.router = SyncRouter(
            self.ct,
            nodes=list(nodes),
            thresholds=self.thresholds,
            escalation_order=escalation_order,
        )
        self.data = tmp_path / "canonical_hex8.db"
        self.data.write_bytes(b"games")

    @property
    def calls(self) -> list[tuple[str, str]]:
        first = next(iter(self.transports.values()))
        return [(c.transport, c.node) for c in first.calls]

    def script(self, node: str, **outcomes: list[BaseException | None]) -> None:
        for name, outcome in outcomes.items():
            self.transports[name].script[node] = list(outcome)

    def fail_all(self, node: str = "n1") -> None:
        for name in self.transports:
            self.transports[name].script[node] = [refused(name, node)]

    async def sync(self, node: str = "n1", force: str | None = None) -> bool:
        result = await self.router.sync_to_node(node, self.data, force_transport=force)
        return result.success

    def stall(self, node: str, transport: str) -> None:
        self.router.report_stall(node, transport, error="stalled")

    def alerts(self, metric: str) -> list[dict[str, Any]]:
        return [e.data for e in self.recorder.of_type(EventType.ALERT) if e.outcome == metric]


def refused(transport: str, node: str = "n1") -> ConnectError:
    return ConnectError(f"{transport}@{node}: connection refused", node=node, transport=transport)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


@pytest.fixture
def make_rig(tmp_path: Path) -> Callable[..., Rig]:
    return lambda **kwargs: Rig(tmp_path, **kwargs)


# -- stalls, escalation and disabling, in the order they happen ---------------------------------
def escalation(rig: Rig) -> list[tuple[str, str | None, str | None]]:
    kinds = (EventType.SYNC_STALLED, EventType.NODE_DISABLED)
    return [
        (str(e.type), e.transport, e.data.get("next_transport"))
        for e in rig.recorder.of_type(*kinds)
    ]


def test_reported_stalls_name_each_next_transport_then_disable_after_the_last(rig: Rig) -> None:
    decisions = [rig.router.report_stall("n1", transport) for transport in CHAIN]

    assert [d.next_transport for d in decisions] == ["http", "rsync", "base64", None]
    assert escalation(rig) == [
        ("SYNC_STALLED", "p2p", "http"),
        ("SYNC_STALLED", "http", "rsync"),
        ("SYNC_STALLED", "rsync", "base64"),
        ("SYNC_STALLED", "base64", None),
        ("NODE_DISABLED", None, None),
    ]
    info = rig.router.get_disabled_nodes()["n1"]
    assert info == {
        "disabled_at": rig.clock.wall(),
        "reason": "all_transports_exhausted",
        "failed_transports": CHAIN,
    }


def sync_story(rig: Rig) -> list[tuple[str, str | None]]:
    """Attempts, stalls, disabling and the operation's end, as they were emitted."""
    kinds = (
        EventType.ATTEMPT_STARTED,
        EventType.ATTEMPT_FAILED,
        EventType.ATTEMPT_SUCCEEDED,
        EventType.SYNC_STALLED,
        EventType.NODE_DISABLED,
        EventType.OPERATION_SUCCEEDED,
        EventType.OPERATION_FAILED,
    )
    return [(str(e.type), e.transport) for e in rig.recorder.of_type(*kinds)]


async def test_failed_then_escalated_sync_reads_stall_then_next_transport_then_success(
    rig: Rig,
) -> None:
    rig.script("n1", p2p=[refused("p2p")])

    assert await rig.sync() is True

    assert sync_story(rig) == [
        ("ATTEMPT_STARTED", "p2p"),
        ("ATTEMPT_FAILED", "p2p"),
        ("SYNC_STALLED", "p2p"),
        ("ATTEMPT_STARTED", "http"),
        ("ATTEMPT_SUCCEEDED", "http"),
        ("OPERATION_SUCCEEDED", "http"),
    ]
    [stall] = rig.recorder.of_type(EventType.SYNC_STALLED)
    assert (stall.error_kind, stall.data) == ("connect", {"next_transport": "http"})
    assert rig.router.get_stats()["escalations_today"] == 1


async def test_sync_through_a_failing_chain_disables_before_the_operation_fails(rig: Rig) -> None:
    rig.fail_all()

    assert await rig.sync() is False

    assert sync_story(rig) == [
        *[
            (kind, t)
            for t in CHAIN[:-1]
            for kind in ("ATTEMPT_STARTED", "ATTEMPT_FAILED", "SYNC_STALLED")
        ],
        ("ATTEMPT_STARTED", "base64"),
        ("ATTEMPT_FAILED", "base64"),
        ("SYNC_STALLED", "base64"),
        ("NODE_DISABLED", None),
        ("OPERATION_FAILED", None),
    ]
    assert rig.router.get_sync_nodes() == []


async def test_disabled_node_sync_calls_no_transport_until_reenabled(rig: Rig) -> None:
    rig.fail_all()
    await rig.sync()
    rig.transports["p2p"].calls.clear()

    result = await rig.router.sync_to_node("n1", rig.data)

    assert (result.success, result.error_kind, rig.calls) == (False, "node_disabled", [])
    rig.router.reenable_node("n1")
    assert await rig.sync() is True
    assert rig.calls == [("p2p", "n1")]
    assert [e.node for e in rig.recorder.of_type(EventType.NODE_REENABLED)] == ["n1"]


async def test_success_clears_failures_so_later_failures_start_the_chain_again(rig: Rig) -> None:
    rig.script("n1", p2p=[refused("p2p")], http=[refused("http")], rsync=[refused("rsync")])
    assert await rig.sync() is True  # base64 wins
    rig.script("n1", p2p=[refused("p2p")])

    assert await rig.sync() is True  # http wins
    assert rig.router.get_disabled_nodes() == {}


async def test_successful_sync_never_leaves_the_node_disabled(rig: Rig) -> None:
    """base64 failed on its own earlier; now p2p, http, rsync fail and base64 succeeds."""
    rig.script("n1", base64=[refused("base64")])
    await rig.sync(force="base64")
    rig.script("n1", p2p=[refused("p2p")], http=[refused("http")], rsync=[refused("rsync")])

    result = await rig.router.sync_to_node("n1", rig.data)

    assert (result.success, result.transport_used) == (True, "base64")
    assert rig.router.get_disabled_nodes() == {}
    assert rig.recorder.of_type(EventType.NODE_DISABLED) == []


def test_router_without_thresholds_uses_its_transports_thresholds() -> None:
    thresholds = Thresholds(sync_backup_transport="base64")
    ct = ClusterTransport(
        transports=scripted_transports(CHAIN), clock=ManualClock(), thresholds=thresholds
    )
    router = SyncRouter(ct, nodes=[NodeConfig(hostname="n1")])

    assert router.transport_order("n1") == ["p2p", "base64", "http", "rsync"]


# -- history and failure counts ------------------------------------------------------------------
async def test_transport_history_records_time_transport_result_and_error(rig: Rig) -> None:
    rig.script("n1", p2p=[refused("p2p")])
    await rig.sync()

    assert rig.router.get_transport_history("n1") == [
        {
            "time": rig.clock.wall(),
            "transport": "p2p",
            "result": "failure",
            "error": "p2p@n1: connection refused",
        },
        {"time": rig.clock.wall(), "transport": "http", "result": "success", "error": None},
    ]


async def test_transport_history_keeps_only_the_newest_entries(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(thresholds=Thresholds(transport_history_size=3))
    for _ in range(3):
        rig.script("n1", p2p=[refused("p2p")])
        await rig.sync()
        rig.clock.advance(1.0)

    history = rig.router.get_transport_history("n1")

    assert [(e["transport"], e["result"]) for e in history] == [
        ("http", "success"),
        ("p2p", "failure"),
        ("http", "success"),
    ]
    assert [e["time"] - history[0]["time"] for e in history] == [0.0, 1.0, 1.0]


async def test_transport_failures_count_every_failure_per_transport(rig: Rig) -> None:
    rig.script("n1", p2p=[refused("p2p")] * 2, http=[refused("http")])
    await rig.sync()
    await rig.sync()

    assert rig.router.get_transport_failures() == {"n1": {"p2p": 2, "http": 1}}
    rig.router.reset_transport_failures("n1")
    assert rig.router.get_transport_failures() == {}


# -- order: preferred, forced, backup, failover threshold ----------------------------------------
async def test_preferred_transport_is_tried_first(rig: Rig) -> None:
    rig.router.set_preferred_transport("n1", "rsync")
    rig.script("n1", rsync=[refused("rsync")])

    assert await rig.sync() is True

    assert rig.calls == [("rsync", "n1"), ("p2p", "n1")]


async def test_forced_transport_is_the_only_one_tried(rig: Rig) -> None:
    rig.script("n1", rsync=[refused("rsync")])

    result = await rig.router.sync_to_node("n1", rig.data, force_transport="rsync")

    assert (result.success, rig.calls) == (False, [("rsync", "n1")])
    assert rig.router.get_disabled_nodes() == {}


async def test_backup_transport_is_tried_second(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(thresholds=Thresholds(sync_backup_transport="base64"))
    rig.script("n1", p2p=[refused("p2p")], base64=[refused("base64")])

    assert await rig.sync() is True

    assert rig.calls == [("p2p", "n1"), ("base64", "n1"), ("http", "n1")]


async def test_failover_threshold_two_retries_a_transport_twice_before_moving_on(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(thresholds=Thresholds(sync_failover_threshold=2))
    rig.script("n1", p2p=[refused("p2p"), ConnectionReset("p2p@n1: reset")])

    assert await rig.sync() is True

    assert rig.calls == [("p2p", "n1"), ("p2p", "n1"), ("http", "n1")]
    stalled = [e.transport for e in rig.recorder.of_type(EventType.SYNC_STALLED)]
    assert stalled == ["p2p"]


async def test_failover_threshold_two_lets_a_second_try_succeed(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(thresholds=Thresholds(sync_failover_threshold=2))
    rig.script("n1", p2p=[refused("p2p")])

    result = await rig.router.sync_to_node("n1", rig.data)

    assert (result.transport_used, rig.calls) == ("p2p", [("p2p", "n1"), ("p2p", "n1")])
    assert rig.recorder.of_type(EventType.SYNC_STALLED) == []


def mismatch(transport: str) -> IntegrityError:
    return IntegrityError(f"{transport}@n1: sha256 mismatch", node="n1", transport=transport)


@pytest.mark.parametrize(
    ("p2p_outcomes", "calls", "stalled"),
    [
        pytest.param([mismatch("p2p")], ["p2p", "p2p"], [], id="one-mismatch-resent-on-p2p"),
        pytest.param(
            [mismatch("p2p")] * 2, ["p2p", "p2p", "http"], ["p2p"], id="second-mismatch-stalls"
        ),
    ],
)
async def test_checksum_mismatch_is_resent_once_on_the_same_transport_before_escalating(
    rig: Rig, p2p_outcomes: list[BaseException | None], calls: list[str], stalled: list[str]
) -> None:
    rig.script("n1", p2p=p2p_outcomes)

    assert await rig.sync() is True  # the default TransportConfig resends once

    assert [t for t, _ in rig.calls] == calls
    assert [e.transport for e in rig.recorder.of_type(EventType.SYNC_STALLED)] == stalled
    results = [e["result"] for e in rig.router.get_transport_history("n1")]
    assert results == ["failure"] * (len(calls) - 1) + ["success"]


# -- probing -------------------------------------------------------------------------------------
async def test_test_transport_reports_success_and_message(rig: Rig) -> None:
    result = await rig.router.test_transport("n1", "rsync")

    assert isinstance(result, ProbeResult)
    assert (result.success, result.message) == (True, "rsync ok")


async def test_failing_probes_never_disable_a_node_or_count_failures(rig: Rig) -> None:
    for name in CHAIN:
        rig.transports[name].script["n1"] = [refused(name)] * 3

    results = [await rig.router.test_transport("n1", t) for t in CHAIN * 3]

    assert [r.success for r in results] == [False] * 12
    assert results[0].message == "p2p@n1: connection refused"
    assert rig.router.get_disabled_nodes() == {}
    assert rig.router.get_transport_failures() == {}
    assert rig.ct.get_health_summary().get("n1", {}).get("failures", 0) == 0


# -- stats and alerts ----------------------------------------------------------------------------
def test_stats_report_active_transports_disabled_nodes_and_escalations(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(nodes=[NodeConfig(hostname="n1"), NodeConfig(hostname="n2")])
    rig.stall("n1", "p2p")
    for transport in CHAIN:
        rig.stall("n2", transport)

    stats = rig.router.get_stats()

    assert stats["active_transports"] == {"http": 1, "rsync": 1, "base64": 1}
    assert stats["disabled_node_count"] == 1
    assert stats["escalations_today"] == 4  # n1: 1, n2: 3 (the 4th stall disables it)


@pytest.mark.parametrize(
    ("elapsed", "counted"),
    [
        pytest.param(DAY - 1, 2, id="a-second-before-24h-still-today"),
        pytest.param(DAY, 0, id="exactly-24h-drops-out"),
        pytest.param(DAY + 1, 0, id="after-24h-drops-out"),
    ],
)
def test_escalations_older_than_a_day_drop_out_of_today(
    rig: Rig, elapsed: float, counted: int
) -> None:
    rig.stall("n1", "p2p")
    rig.stall("n1", "http")

    rig.clock.advance(elapsed)

    assert rig.router.get_stats()["escalations_today"] == counted


def test_more_than_five_failures_per_node_in_an_hour_alerts_once(rig: Rig) -> None:
    for _ in range(5):
        rig.stall("n1", "p2p")
    assert rig.alerts("transport_failures") == []

    rig.stall("n1", "p2p")
    rig.stall("n1", "p2p")

    [alert] = rig.alerts("transport_failures")
    assert alert == {"metric": "transport_failures", "node": "n1", "value": 6, "threshold": 5}


def test_failures_spread_over_more_than_an_hour_do_not_alert(rig: Rig) -> None:
    for _ in range(5):
        rig.stall("n1", "p2p")
    rig.clock.advance(HOUR)

    rig.stall("n1", "p2p")

    assert rig.alerts("transport_failures") == []


def test_more_than_a_fifth_of_nodes_disabled_alerts_once(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(nodes=[NodeConfig(hostname=f"n{i}") for i in range(5)])
    for transport in CHAIN:
        rig.stall("n0", transport)
    assert rig.alerts("disabled_nodes") == []  # 1 of 5 is exactly 20 %

    for node in ("n1", "n2"):
        for transport in CHAIN:
            rig.stall(node, transport)

    [alert] = rig.alerts("disabled_nodes")
    assert alert["value"] == pytest.approx(0.4)


def test_more_than_ten_escalations_in_an_hour_alerts_once(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(nodes=[NodeConfig(hostname=f"n{i}") for i in range(4)])
    stalls = [(f"n{i}", t) for t in ("p2p", "http", "rsync") for i in range(4)]
    for node, transport in stalls[:10]:
        rig.stall(node, transport)
    assert rig.alerts("escalation_count") == []

    for node, transport in stalls[10:]:
        rig.stall(node, transport)

    [alert] = rig.alerts("escalation_count")
    assert alert["value"] == 11
    assert rig.alerts("transport_failures") == []


# -- chains --------------------------------------------------------------------------------------
async def test_tailscale_is_not_in_the_chain_of_a_node_without_tailscale_ip(
    make_rig: Callable[..., Rig],
) -> None:
    transports = scripted_transports(CHAIN)
    calls = transports["p2p"].calls
    transports["tailscale"] = ScriptedTransport(
        "tailscale", calls=calls, available=lambda node: node.tailscale_ip is not None
    )
    rig = make_rig(
        nodes=[NodeConfig(hostname="plain"), NodeConfig(hostname="ts", tailscale_ip="100.64.0.9")],
        transports=transports,
        escalation_order=["tailscale", *CHAIN],
    )

    assert rig.router.chain("plain") == CHAIN
    assert rig.router.chain("ts") == ["tailscale", *CHAIN]
    rig.fail_all("plain")
    await rig.sync("plain")
    assert rig.router.get_disabled_nodes()["plain"]["failed_transports"] == CHAIN
    assert [t for t, _ in rig.calls] == CHAIN


def test_unavailable_transport_is_not_part_of_the_chain(make_rig: Callable[..., Rig]) -> None:
    transports = scripted_transports(CHAIN)
    transports["http"] = ScriptedTransport("http", calls=transports["p2p"].calls, available=False)
    rig = make_rig(transports=transports)

    assert rig.router.chain("n1") == ["p2p", "rsync", "base64"]
    for transport in ("p2p", "rsync", "base64"):
        rig.stall("n1", transport)
    assert rig.router.get_disabled_nodes()["n1"]["failed_transports"] == ["p2p", "rsync", "base64"]


def test_node_chain_follows_its_configured_transports(make_rig: Callable[..., Rig]) -> None:
    node = NodeConfig(
        hostname="n1",
        transports=(
            TransportSpec("base64", priority=3, last_resort=True),
            TransportSpec("rsync", priority=2),
            TransportSpec("p2p", priority=1),
        ),
    )
    rig = make_rig(nodes=[node])

    assert rig.router.chain("n1") == ["p2p", "rsync", "base64"]


# -- singleton and breaker accounting -------------------------------------------------------------
def test_get_sync_router_returns_one_router(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SyncRouter, "_instance", None)

    router = get_sync_router()

    assert router is get_sync_router() is SyncRouter.get_instance()


async def test_one_failed_over_sync_counts_as_one_breaker_failure(rig: Rig) -> None:
    breaker = rig.ct.breakers.get("n1")
    rig.fail_all()
    await rig.sync()

    assert len(rig.calls) == 4
    assert (breaker.state, breaker.failures) == (BreakerState.CLOSED, 1)

    for _ in range(2):
        rig.router.reenable_node("n1")
        rig.fail_all()
        await rig.sync()

    assert breaker.state is BreakerState.OPEN
    assert rig.ct.get_health_summary()["n1"]["state"] == "open"


async def test_disabled_count_follows_a_node_exhausted_before_its_last_transport_fails(
    rig: Rig,
) -> None:
    """base64 failed in a forced sync; then p2p, http, rsync and base64 fail in one sync."""
    rig.script("n1", base64=[refused("base64")])
    await rig.sync(force="base64")
    rig.fail_all()

    assert await rig.sync() is False

    stats = rig.router.get_stats()
    assert (stats["disabled_node_count"], stats["active_transports"]) == (1, {})
    rig.router.reenable_node("n1")
    stats = rig.router.get_stats()
    assert (stats["disabled_node_count"], stats["active_transports"]) == (
        0,
        dict.fromkeys(CHAIN, 1),
    )
