"""The v2 steps and checks can fail: each variant below breaks one expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from netfault.simulator.scenario.loader import load_scenario
from netfault.simulator.scenario.results import ScenarioResult
from netfault.simulator.scenario.runner import run_scenario
from netfault.simulator.scenario.steps.fault import FaultStep

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"


async def run_variant(name: str, *changes: tuple[str, str]) -> ScenarioResult:
    path = LIBRARY / f"{name}.yaml"
    text = path.read_text()
    for old, new in changes:
        assert text.count(old) == 1, f"{old!r} must occur once in {path.name}"
        text = text.replace(old, new)
    return await run_scenario(load_scenario(path, text))


async def test_parallel_counts_fail_when_more_than_one_probe_is_expected() -> None:
    result = await run_variant(
        "thundering-probes-against-a-half-open-breaker-send-one-probe",
        ("        succeeded: 1\n", "        succeeded: 2\n"),
    )
    assert not result.passed
    report = result.report()
    assert "step parallel 20 x transfer node-1 push data/burst.bin" in report
    assert "succeeded: expected 2, seen 1" in report
    assert "'error_kinds': {'breaker_open': 19}" in report


def test_parallel_child_cannot_carry_its_own_expect() -> None:
    text = (
        LIBRARY / "thundering-probes-against-a-half-open-breaker-send-one-probe.yaml"
    ).read_text()
    text = text.replace("size: 256KiB}", "size: 256KiB, expect: {success: true}}")
    with pytest.raises(Exception, match="has no expect: of its own"):
        load_scenario(LIBRARY / "x.yaml", text)


async def test_scoped_fault_is_still_active_inside_its_operations() -> None:
    result = await run_variant(
        "tailscale-down-for-two-operations-then-back", ("for_operations: 2", "for_operations: 3")
    )
    assert not result.passed
    assert "transport_used: expected 'tailscale', seen 'ssh'" in result.report()


async def test_scoped_fault_clears_itself_after_its_operations() -> None:
    result = await run_variant(
        "tailscale-down-for-two-operations-then-back",
        ("route: tailscale, for_operations: 2}", "route: tailscale, for_operations: 2, as: ts}"),
        ("expect:\n  files:", "  - clear: ts\nexpect:\n  files:"),
    )
    assert not result.passed
    assert "no active fault named 'ts' (have: [])" in result.report()


def test_percentage_is_resolved_against_each_operations_size() -> None:
    scenario = load_scenario(
        LIBRARY / "reset-at-sixty-percent-of-the-transfer-falls-back-to-base64.yaml"
    )
    step = scenario.steps[0]
    assert isinstance(step, FaultStep)
    assert step.fault.relative()
    assert step.fault.params(512 * 1024)["after_bytes"] == 314573
    assert step.fault.params(1000)["after_bytes"] == 600


async def test_per_attempt_expectation_names_the_attempt_that_differs() -> None:
    result = await run_variant(
        "checksum-mismatch-is-resent-once-on-the-same-transport",
        ("success: false, error_kind: integrity}", "success: false, error_kind: reset}"),
    )
    assert not result.passed
    assert "attempts[0] (http): error_kind expected 'reset', seen 'integrity'" in result.report()


async def test_probability_zero_at_ssh_level_corrupts_nothing() -> None:
    result = await run_variant(
        "pty-mangled-ssh-channel-falls-back-to-base64",
        ("level: ssh, mode: pty}", "level: ssh, mode: pty, probability: 0}"),
    )
    assert not result.passed
    assert "transport_used: expected 'base64', seen 'ssh'" in result.report()


async def test_base64_reset_leaves_the_ssh_channel_alone_and_cuts_base64() -> None:
    result = await run_variant(
        "base64-only-channel-reset-falls-over-to-http",
        ("transport: base64, after_bytes", "transport: ssh, after_bytes"),
    )
    assert not result.passed
    report = result.report()
    assert "step transfer node-1 push data/first.bin" in report
    assert "transport_used: expected 'ssh', seen 'base64'" in report


def test_mode_needs_the_ssh_level() -> None:
    text = (LIBRARY / "pty-mangled-ssh-channel-falls-back-to-base64.yaml").read_text()
    with pytest.raises(Exception, match="mode acts on the node's SSH channels; add level: ssh"):
        load_scenario(LIBRARY / "x.yaml", text.replace("level: ssh, mode: pty", "mode: pty"))


async def test_full_disk_is_reported_as_enospc_of_kind_storage_by_every_transport() -> None:
    path = LIBRARY / "failed-transfer-to-a-full-disk-leaves-no-partial-file.yaml"
    result = await run_scenario(load_scenario(path))
    assert result.passed, result.report()
    failed = [e for e in result.events if e.type == "ATTEMPT_FAILED"]
    assert [e.transport for e in failed] == ["ssh", "base64", "http"]
    assert all(e.error_kind == "storage" for e in failed)
    assert all(e.error and "No space left on device" in e.error for e in failed)


async def test_fault_set_member_scoped_to_operations_expires_alone(tmp_path: Path) -> None:
    library = tmp_path / "faults" / "lib.yaml"
    library.parent.mkdir()
    library.write_text(
        "sets:\n"
        "  flaky-tailscale:\n"
        "    - {kind: down, route: tailscale, for_operations: 1}\n"
        "    - {kind: latency, latency_ms: 1}\n"
    )
    text = (
        "name: set-scope\nseed: 3\nuse: [faults/lib.yaml]\n"
        "cluster: {nodes: [{name: node-1}], config: {route_cooldown: 0s}}\n"  # no route memory
        "steps:\n"
        "  - faults: {set: flaky-tailscale, node: node-1, as: flaky}\n"
        "  - transfer: {node: node-1, path: a.bin, size: 4KiB,"
        " expect: {success: true, transport_used: ssh}}\n"
        "  - transfer: {node: node-1, path: a.bin, size: 4KiB,"
        " expect: {success: true, transport_used: tailscale}}\n"
        "  - clear: flaky\n"
    )
    result = await run_scenario(load_scenario(tmp_path / "s.yaml", text))
    assert result.passed, result.report()
    trace = [(f.kind, f.fault) for f in result.fault_trace]
    assert trace == [
        ("applied", "down"),
        ("applied", "latency"),
        ("expired", "down"),
        ("cleared", "down"),
        ("cleared", "latency"),
    ]


RANKED = """\
name: mixed-failures-report-the-most-telling-kind
seed: 3
cluster:
  nodes: [{name: node-1, tailscale: false}]
steps:
  - fault: {kind: auth_refused, node: node-1}
  - fault: {kind: http_down, node: node-1}
  - transfer:
      node: node-1
      path: a.bin
      transports: [ssh, http]
      expect:
        success: false
        error_kind: KIND
        attempts: [{transport: ssh, error_kind: auth}, {transport: http, error_kind: reset}]
"""


@pytest.mark.parametrize(
    ("kind", "passes"),
    [pytest.param("auth", True, id="auth"), pytest.param("reset", False, id="last-kind")],
)
async def test_error_kind_expectation_is_the_operations_most_telling_kind(
    kind: str, passes: bool
) -> None:
    result = await run_scenario(load_scenario("ranked.yaml", RANKED.replace("KIND", kind)))
    assert result.passed is passes, result.report()
    if not passes:
        assert "error_kind: expected 'reset', seen 'auth'" in result.report()


FRESH = """\
name: a-first-push-starts-from-scratch
seed: 3
cluster:
  nodes: [{name: node-1, tailscale: false}]
steps:
  - transfer:
      node: node-1
      path: a.bin
      transports: [ssh]
      expect:
        attempts: [{transport: ssh, ATTEMPT}]
"""


@pytest.mark.parametrize(
    ("attempt", "problem"),
    [
        pytest.param("resumed: false, resumed_from: 0", None, id="fresh"),
        pytest.param(
            "resumed: true",
            "attempts[0] (ssh): resumed expected True, seen False",
            id="not-resumed",
        ),
        pytest.param(
            "resumed_from: 4096",
            "attempts[0] (ssh): resumed_from expected 4096, seen 0",
            id="offset",
        ),
    ],
)
async def test_per_attempt_resume_expectations(attempt: str, problem: str | None) -> None:
    # a real resume, with its offset and bytes, is in tests/test_attempt_resume.py
    result = await run_scenario(load_scenario("fresh.yaml", FRESH.replace("ATTEMPT", attempt)))
    assert result.passed is (problem is None), result.report()
    if problem is not None:
        assert problem in result.report()
