"""The scenario vocabularies come from the engine, and stay complete as it grows."""

from __future__ import annotations

import re
from pathlib import Path

from netfault.engine import ClusterTransport, NetfaultError, SyncRouter
from netfault.simulator.scenario import vocab
from netfault.simulator.scenario.checks import stats_mismatch

ENGINE = Path(__file__).resolve().parent.parent / "engine"


def test_every_error_kind_the_engine_writes_is_in_the_vocabulary() -> None:
    written = set()
    for source in ENGINE.rglob("*.py"):
        text = source.read_text()
        written |= set(re.findall(r'\bkind = "(\w+)"', text))
        written |= set(re.findall(r'error_kind="(\w+)"', text))
        written |= set(re.findall(r'Attempt\([^)]*?, "(\w+)",', text))
    assert written
    # the base class's kind is never written: every error is classified to a specific kind
    assert written - {NetfaultError.kind} <= set(vocab.error_kinds())


def test_request_and_race_kinds_are_in_the_vocabulary() -> None:
    assert {"not_found", "bad_remote_path", "cancelled", "http_5xx"} <= set(vocab.error_kinds())
    assert "error" not in vocab.error_kinds()


def test_route_and_race_events_are_in_the_vocabulary() -> None:
    assert {"ROUTE_DEMOTED", "ROUTE_RESTORED", "ATTEMPT_CANCELLED"} <= set(vocab.EVENT_TYPES)


def test_alert_names_are_the_routers_metrics() -> None:
    assert vocab.alert_names() == ("transport_failures", "disabled_nodes", "escalation_count")


def test_stats_keys_are_those_of_get_stats() -> None:
    router = SyncRouter(ClusterTransport(), nodes=[])
    assert tuple(router.get_stats()) == vocab.stats_keys()


def test_transports_and_attempt_names() -> None:
    assert vocab.transports() == ("tailscale", "ssh", "rsync", "base64", "http", "p2p")
    assert vocab.attempt_names()[-2:] == ("http:tailscale", "http:hostname")


def test_stats_alerts_are_compared_by_name() -> None:
    stats = {"alerts": [{"metric": "disabled_nodes", "value": 0.5, "threshold": 0.2}]}
    assert stats_mismatch({"alerts": ["disabled_nodes"]}, stats) is None
    assert stats_mismatch({"alerts": []}, stats) == ("alerts: expected [], seen ['disabled_nodes']")
    assert stats_mismatch({"alerts": ["escalation_count"]}, stats) == (
        "alerts: expected ['escalation_count'], seen ['disabled_nodes']"
    )
