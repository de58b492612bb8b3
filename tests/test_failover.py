"""The one failover loop (``engine.failover``) through ``transfer_file``'s escalation hook and
``http_request_with_failover``: permit taken once, events as they happen, one result."""

from __future__ import annotations

from pathlib import Path

import pytest

from netfault.engine import Escalation
from netfault.engine.clock import ManualClock
from netfault.engine.config import NodeConfig
from netfault.engine.errors import (
    ERROR_KINDS,
    TELLING_ORDER,
    AttemptError,
    AuthenticationError,
    ConnectError,
    ConnectionReset,
    IntegrityError,
    NotFoundError,
    RemoteStorageError,
    TransportTimeout,
    most_telling,
)
from netfault.engine.events import Event, EventBus, EventRecorder
from netfault.engine.results import Attempt
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport
from netfault.simulator.scripted import ScriptedTransport, scripted_transports

NAMES = ["ssh", "rsync", "base64", "http"]
NODE = NodeConfig(hostname="n1")


class Picker:
    """An escalation that names the next transport from a list, and logs what it saw."""

    def __init__(self, bus: EventBus, answers: list[str | None]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str | None]] = []
        self.events_seen: list[int] = []
        self._seen: list[Event] = []
        bus.subscribe(self._seen.append)

    def next_transport(self, failed: Attempt) -> str | None:
        self.asked.append((failed.transport, failed.error_kind))
        self.events_seen.append(len(self._seen))
        return self.answers.pop(0) if self.answers else None


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.bus = EventBus(ManualClock())
        self.recorder = EventRecorder()
        self.bus.subscribe(self.recorder)
        self.transports: dict[str, ScriptedTransport] = scripted_transports(NAMES)
        self.ct = ClusterTransport(
            self.transports, clock=self.bus.clock, thresholds=Thresholds(), events=self.bus
        )
        self.src = tmp_path / "a.bin"
        self.src.write_bytes(b"x" * 10)

    def fail(self, name: str, *errors: BaseException) -> None:
        self.transports[name].script["n1"] = list(errors)

    def seen(self) -> list[tuple[str, str | None, str | None]]:
        return [(str(e.type), e.transport, e.error_kind) for e in self.recorder.events]


def refused(name: str) -> ConnectError:
    return ConnectError(f"{name}@n1: refused", node="n1", transport=name)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


async def test_escalation_chooses_each_next_transport_after_the_failure_is_emitted(
    rig: Rig,
) -> None:
    rig.fail("ssh", refused("ssh"))
    rig.fail("base64", ConnectionReset("base64@n1: reset", node="n1"))
    picker = Picker(rig.bus, ["base64", "http"])
    escalation: Escalation = picker

    result = await rig.ct.transfer_file(
        rig.src, "a.bin", NODE, transports=NAMES, escalation=escalation
    )

    assert (result.success, result.transport_used) == (True, "http")
    assert picker.asked == [("ssh", "connect"), ("base64", "reset")]
    assert rig.seen() == [
        ("ATTEMPT_STARTED", "ssh", None),
        ("ATTEMPT_FAILED", "ssh", "connect"),
        ("ROUTE_DEMOTED", None, None),  # the hostname route refused ssh
        ("ATTEMPT_STARTED", "base64", None),
        ("ATTEMPT_FAILED", "base64", "reset"),
        ("ROUTE_RESTORED", None, None),  # base64's session was set up: the address works
        ("ATTEMPT_STARTED", "http", None),
        ("ATTEMPT_SUCCEEDED", "http", None),
        ("OPERATION_SUCCEEDED", "http", None),
    ]
    assert picker.events_seen == [3, 6]  # each failure was on the bus before the question
    assert [c.transport for c in rig.transports["ssh"].calls] == ["ssh", "base64", "http"]


async def test_escalation_that_stops_fails_the_operation_as_one_breaker_failure(
    rig: Rig,
) -> None:
    rig.fail("ssh", refused("ssh"), refused("ssh"))
    picker = Picker(rig.bus, ["ssh", None])

    result = await rig.ct.transfer_file(rig.src, "a.bin", NODE, transports=NAMES, escalation=picker)

    assert (result.success, result.error_kind) == (False, "connect")
    assert [a.transport for a in result.attempts] == ["ssh", "ssh"]
    assert rig.ct.get_health_summary()["n1"]["failures"] == 1


async def test_escalation_is_not_asked_after_a_request_error(rig: Rig) -> None:
    rig.fail("ssh", NotFoundError("ssh@n1: no such file", node="n1"))
    picker = Picker(rig.bus, ["rsync"])

    result = await rig.ct.transfer_file(
        rig.src, "a.bin", NODE, "pull", transports=NAMES, escalation=picker
    )

    assert (result.success, result.error_kind) == (False, "not_found")
    assert picker.asked == []
    assert rig.ct.get_health_summary()["n1"]["failures"] == 0


@pytest.mark.parametrize(
    ("tries", "integrity_retries", "calls"),
    [
        pytest.param(1, 0, ["ssh", "rsync"], id="once-each"),
        pytest.param(2, 0, ["ssh", "ssh", "rsync"], id="two-tries"),
    ],
)
async def test_chain_gives_each_transport_its_tries(
    rig: Rig, tries: int, integrity_retries: int, calls: list[str]
) -> None:
    rig.fail("ssh", refused("ssh"), refused("ssh"))

    result = await rig.ct.transfer_file(
        rig.src, "a.bin", NODE, transports=["ssh", "rsync"], attempts_per_transport=tries
    )

    assert (result.success, result.transport_used) == (True, "rsync")
    assert [c.transport for c in rig.transports["ssh"].calls] == calls


async def test_refused_http_call_emits_the_same_refusal_as_a_refused_transfer(rig: Rig) -> None:
    for _ in range(3):
        for name in NAMES:
            rig.fail(name, refused(name))
        await rig.ct.transfer_file(rig.src, "a.bin", NODE, transports=NAMES)
    rig.recorder.events.clear()

    transfer = await rig.ct.transfer_file(rig.src, "a.bin", NODE)
    call = await rig.ct.http_request_with_failover(NODE, "/status")
    await rig.ct.close()

    assert (transfer.error_kind, call.error_kind) == ("breaker_open", "breaker_open")
    refusals = [(str(e.type), e.node, e.outcome, e.error_kind) for e in rig.recorder.events]
    assert refusals == [("OPERATION_FAILED", "n1", "refused", "breaker_open")] * 2


def failing(kind: str, name: str) -> BaseException:
    errors: dict[str, type[AttemptError]] = {
        "timeout": TransportTimeout,
        "reset": ConnectionReset,
        "connect": ConnectError,
        "integrity": IntegrityError,
        "storage": RemoteStorageError,
        "auth": AuthenticationError,
    }
    return errors[kind](f"{name}@n1: {kind}", node="n1", transport=name)


@pytest.mark.parametrize(
    ("kinds", "reported"),
    [
        pytest.param(["timeout", "integrity", "reset", "connect"], "integrity", id="integrity"),
        pytest.param(["reset", "connect", "storage", "timeout"], "storage", id="storage"),
        pytest.param(["timeout", "auth", "reset", "reset"], "auth", id="auth"),
        pytest.param(["timeout", "connect", "reset", "timeout"], "reset", id="reset"),
        pytest.param(["timeout", "timeout", "connect", "timeout"], "connect", id="connect"),
        pytest.param(["timeout"] * 4, "timeout", id="all-timeouts"),
    ],
)
async def test_operation_reports_the_most_telling_kind_of_its_attempts(
    rig: Rig, kinds: list[str], reported: str
) -> None:
    for name, kind in zip(NAMES, kinds, strict=True):
        rig.fail(name, failing(kind, name), failing(kind, name))

    result = await rig.ct.transfer_file(rig.src, "a.bin", NODE, transports=NAMES)

    # each attempt keeps its own kind (damaged bytes are resent once on the same transport)
    tries = [k for k in kinds for _ in range(2 if k == "integrity" else 1)]
    assert [a.error_kind for a in result.attempts] == tries
    assert (result.success, result.error_kind) == (False, reported)
    assert rig.seen()[-1] == ("OPERATION_FAILED", None, reported)


async def test_a_request_error_after_path_failures_is_what_the_operation_reports(
    rig: Rig,
) -> None:
    rig.fail("ssh", failing("integrity", "ssh"), failing("integrity", "ssh"))
    rig.fail("rsync", NotFoundError("rsync@n1: no such file", node="n1"))

    result = await rig.ct.transfer_file(rig.src, "a.bin", NODE, transports=NAMES)

    # the request error stopped the operation: that, not the ranking, is its answer
    assert [a.error_kind for a in result.attempts] == ["integrity", "integrity", "not_found"]
    assert result.error_kind == "not_found"


def test_telling_order_ranks_every_attempt_kind_once() -> None:
    # every kind an attempt can fail with has a rank; no kind is ranked twice
    attempt_kinds = {k for k in ERROR_KINDS if k not in ("config", "breaker_open")}
    attempt_kinds -= {"node_disabled", "cancelled"}
    assert set(TELLING_ORDER) == attempt_kinds
    assert len(TELLING_ORDER) == len(set(TELLING_ORDER))
    assert most_telling([]) is None
    assert most_telling(["timeout", "cancelled", "connect"]) == "connect"
    assert most_telling(["cancelled", "unavailable"]) == "unavailable"
