"""The scenario library: every file validates, names are unique, and its checks can fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from netfault.simulator.scenario.loader import load_scenario
from netfault.simulator.scenario.results import ScenarioResult
from netfault.simulator.scenario.runner import run_scenario

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"
FILES = sorted(LIBRARY.glob("*.yaml"))
MIN_SCENARIOS = 26


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in FILES])
def test_scenario_file_loads_and_is_named_after_its_behaviour(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.description.strip(), "tell the incident in a user's words"
    assert scenario.steps


def test_library_has_enough_scenarios_with_unique_names() -> None:
    names = [load_scenario(p).name for p in FILES]
    assert len(names) >= MIN_SCENARIOS
    assert len(set(names)) == len(names)


def test_every_scenario_declares_its_seed() -> None:
    missing = [p.name for p in FILES if "\nseed:" not in p.read_text()]
    assert missing == []


async def run_variant(name: str, old: str, new: str) -> ScenarioResult:
    """Run library scenario ``name`` with ``old`` replaced by ``new`` (exactly once)."""
    path = LIBRARY / f"{name}.yaml"
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {path.name}"
    return await run_scenario(load_scenario(path, text.replace(old, new)))


async def test_wrong_transport_used_fails_naming_step_expected_and_seen() -> None:
    result = await run_variant(
        "reset-mid-transfer-falls-back-to-base64",
        "transport_used: base64",
        "transport_used: ssh",
    )
    assert not result.passed
    report = result.report()
    assert "step transfer node-1 push models/model.pth" in report
    assert "transport_used: expected 'ssh', seen 'base64'" in report
    assert "[BAD]" in report


async def test_wrong_breaker_sequence_fails_with_both_sequences() -> None:
    result = await run_variant(
        "breaker-opens-after-three-failed-operations",
        "breaker: {node-1: [closed, open]}",
        "breaker: {node-1: [closed]}",
    )
    assert not result.passed
    assert "breaker node-1: expected closed, seen closed -> open" in result.report()


async def test_wrong_disabled_transports_fail_with_the_list_seen() -> None:
    result = await run_variant(
        "all-transports-exhausted-disables-the-node",
        "failed_transports: [p2p, http, rsync, base64]",
        "failed_transports: [p2p, http]",
    )
    assert not result.passed
    report = result.report()
    assert "disabled vast-12345: failed_transports" in report
    assert "seen ['p2p', 'http', 'rsync', 'base64']" in report


async def test_expected_event_that_never_happened_fails_naming_it() -> None:
    result = await run_variant(
        "p2p-port-blocked-router-escalates-to-http",
        "    - {type: SYNC_STALLED, transport: p2p}\n",
        "    - {type: SYNC_STALLED, transport: http}\n",
    )
    assert not result.passed
    assert "events: missing SYNC_STALLED(transport=http)" in result.report()
