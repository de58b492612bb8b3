"""Same scenario, same seed: the same fault decisions and the same engine event trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from netfault.simulator.scenario.loader import load_scenario
from netfault.simulator.scenario.runner import run_scenario
from netfault.simulator.scenario.trace import merged

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"

# A compact breaker scenario: opens, half-opens and closes a breaker.
BREAKER = """\
name: breaker-opens-then-a-probe-closes-it
seed: 5
cluster:
  nodes:
    - {name: node-1, tailscale: false, transports: [ssh, base64]}
steps:
  - fault: {kind: down, node: node-1, service: ssh}
  - repeat:
      times: 3
      steps:
        - transfer: {node: node-1, path: a.bin, size: 4KiB, expect: {success: false}}
  - transfer: {node: node-1, path: a.bin, expect: {success: false, error_kind: breaker_open}}
  - clear: all
  - advance: 300s
  - transfer: {node: node-1, path: a.bin, expect: {success: true, transport_used: ssh}}
expect:
  breaker: {node-1: [closed, open, half_open, closed]}
"""


def scenario_path(tmp_path: Path, name: str) -> Path:
    if name.endswith(".yaml"):
        return LIBRARY / name
    path = tmp_path / f"{name}.yaml"
    path.write_text(BREAKER)
    return path


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("reset-mid-transfer-falls-back-to-base64.yaml", id="reset-then-base64"),
        pytest.param("breaker", id="breaker-open-half-open-closed"),
    ],
)
async def test_same_seed_gives_the_same_event_trace(tmp_path: Path, name: str) -> None:
    scenario = load_scenario(scenario_path(tmp_path, name))
    first = await run_scenario(scenario, seed=17)
    second = await run_scenario(scenario, seed=17)

    assert first.passed, first.report()
    assert second.passed, second.report()
    assert first.trace(), "a scenario that emits no events proves nothing"
    assert first.trace() == second.trace()
    assert [s.detail for s in first.steps] == [s.detail for s in second.steps]


@pytest.mark.parametrize(
    "name",
    [
        "tailscale-down-for-two-operations-then-back",
        "tailscale-resets-for-two-connections-then-back",
        "pty-mangled-ssh-channel-falls-back-to-base64",
        "base64-only-channel-reset-falls-over-to-http",
        "reset-at-sixty-percent-of-the-transfer-falls-back-to-base64",
    ],
)
async def test_same_seed_gives_the_same_fault_and_engine_decisions(name: str) -> None:
    scenario = load_scenario(LIBRARY / f"{name}.yaml")
    first = await run_scenario(scenario, seed=23)
    second = await run_scenario(scenario, seed=23)

    assert first.passed and second.passed, first.report() + second.report()
    assert first.fault_trace, "the fault trace records every fault decision"
    assert first.decisions() == second.decisions()


async def test_a_fault_for_two_connections_expires_as_the_second_one_opens() -> None:
    result = await run_scenario(
        load_scenario(LIBRARY / "tailscale-resets-for-two-connections-then-back.yaml")
    )
    assert result.passed, result.report()
    records = merged(result.events, result.fault_trace)
    expired = [i for i, r in enumerate(records) if r["type"] == "FAULT_EXPIRED"]
    assert len(expired) == 1
    record = records[expired[0]]
    assert record["data"] == {
        "as": "reset",
        "for_connections": 2,
        "proxy": "node-1-tailscale-ssh",
        "connection": 1,  # the proxy's second connection since it started
    }
    # recorded the moment the proxy accepted it: inside the second Tailscale attempt
    around = [(r["type"], r.get("transport")) for r in records[expired[0] - 1 : expired[0] + 2]]
    assert around == [
        ("ATTEMPT_STARTED", "tailscale"),
        ("FAULT_EXPIRED", None),
        ("ATTEMPT_FAILED", "tailscale"),
    ]


async def test_trace_says_which_fields_of_a_fired_fault_are_exact() -> None:
    result = await run_scenario(
        load_scenario(LIBRARY / "base64-only-channel-reset-falls-over-to-http.yaml")
    )
    kinds = [(f.kind, f.fault) for f in result.fault_trace]
    assert kinds == [("applied", "reset"), ("fired", "reset")]
    fired = result.fault_trace[1]
    # the node counts the bytes it saw, but where the kernel cut them into chunks varies
    assert fired.inexact == ("offset",)
    assert fired.data["channel"] == "base64"
    assert fired.data["offset"] > 4096
    assert ("offset", fired.data["offset"]) not in fired.decision()[-1]


@pytest.mark.parametrize(
    ("name", "fault", "data"),
    [
        pytest.param(
            "base64-only-channel-reset-falls-over-to-http",
            "reset",
            {"channel": "base64"},
            id="channel-reset",
        ),
        pytest.param(
            "pty-mangled-ssh-channel-falls-back-to-base64",
            "corrupt_binary",
            {"mode": "pty", "direction": "outbound"},
            id="pty-mangling",
        ),
    ],
)
async def test_a_node_fault_is_traced_when_it_fires_inside_the_attempt_it_hit(
    name: str, fault: str, data: dict[str, str]
) -> None:
    result = await run_scenario(load_scenario(LIBRARY / f"{name}.yaml"))
    assert result.passed, result.report()
    records = merged(result.events, result.fault_trace)
    first = next(i for i, r in enumerate(records) if r["type"] == "FAULT_FIRED")
    fired = records[first]
    assert fired["fault"] == fault
    assert data.items() <= fired["data"].items()
    assert isinstance(fired["data"]["offset"], int)
    # between the attempt it hit starting and failing, not after the step's last event
    before, after = records[first - 1], records[first + 1]
    assert before["type"] == "ATTEMPT_STARTED"
    assert after["type"] == "ATTEMPT_FAILED"
    assert after["transport"] == before["transport"]
