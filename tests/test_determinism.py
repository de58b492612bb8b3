"""Same scenario, same seed: the same fault decisions and the same engine event trace."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from netfault.simulator.proxy.toxics import Chunk, CorruptAttributes, CorruptToxic, ToxicState
from netfault.simulator.proxy.toxics.flap import FlapAttributes, flap_fate
from netfault.simulator.scenario.loader import load_scenario
from netfault.simulator.scenario.results import ScenarioResult
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
    assert {k: record.get(k) for k in ("as", "for_connections", "proxy", "connection")} == {
        "as": "reset",
        "for_connections": 2,
        "proxy": "node-1-tailscale-ssh",
        "connection": 1,  # the proxy's second connection since it started
    }
    assert (record["node"], record["route"], record["service"]) == ("node-1", "tailscale", "ssh")
    # recorded the moment the proxy accepted it: inside the second Tailscale attempt, and
    # the reset that connection still got is traced with it
    engine = [i for i, r in enumerate(records) if not r["type"].startswith("FAULT_")]
    before = max(i for i in engine if i < expired[0])
    after = min(i for i in engine if i > expired[0])
    assert (records[before]["type"], records[before]["transport"]) == (
        "ATTEMPT_STARTED",
        "tailscale",
    )
    assert (records[after]["type"], records[after]["transport"]) == ("ATTEMPT_FAILED", "tailscale")
    between = records[expired[0] + 1 : after]
    assert {(r["type"], r.get("action"), r.get("connection")) for r in between} >= {
        ("FAULT_FIRED", "reset", 1)
    }


async def test_trace_says_which_fields_of_a_fired_fault_are_exact() -> None:
    result = await run_scenario(
        load_scenario(LIBRARY / "base64-only-channel-reset-falls-over-to-http.yaml")
    )
    kinds = [(f.kind, f.fault) for f in result.fault_trace]
    assert kinds == [("applied", "reset"), ("fired", "reset")]
    fired = result.fault_trace[1]
    # the node counts the bytes it saw, but where the kernel cut them into chunks varies
    assert fired.inexact == ("offset",)
    assert not fired.offset_exact
    assert fired.channel == "base64"
    assert fired.offset is not None and fired.offset > 4096
    decision = fired.decision()
    assert decision is not None
    assert "offset" not in dict(decision)
    assert dict(decision)["channel"] == "base64"


async def test_a_proxy_reset_traces_each_connection_cut_and_flags_what_timing_decides() -> None:
    result = await run_scenario(
        load_scenario(LIBRARY / "tailscale-resets-for-two-connections-then-back.yaml")
    )
    assert result.passed, result.report()
    resets = [f for f in result.fault_trace if f.action == "reset"]
    # both Tailscale connections the fault lived for were cut, the third was not touched
    assert sorted({f.connection for f in resets}) == [0, 1]
    assert {f.connection for f in result.fault_trace if f.kind == "fired"} == {0, 1}
    for cut in resets:
        assert (cut.proxy, cut.route, cut.toxic_type, cut.name) == (
            "node-1-tailscale-ssh",
            "tailscale",
            "reset_peer",
            "reset",
        )
        # the bytes in flight when the timer fired, and the side it hit first, vary
        assert cut.inexact == ("offset", "direction")
        decision = cut.decision()
        assert decision is not None
        assert "offset" not in dict(decision) and "direction" not in dict(decision)
        assert dict(decision)["connection"] == cut.connection
    armed = [f for f in result.fault_trace if f.action == "reset_armed"]
    assert armed, "the reset is armed by the first bytes on a side"
    # whether the other side's first bytes arrive before the cut is a race: not compared
    assert all(f.decision() is None for f in armed)


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
    assert data.items() <= fired.items()
    assert isinstance(fired["offset"], int)
    assert fired["offset_exact"] is False
    # between the attempt it hit starting and failing, not after the step's last event
    before, after = records[first - 1], records[first + 1]
    assert before["type"] == "ATTEMPT_STARTED"
    assert after["type"] == "ATTEMPT_FAILED"
    assert after["transport"] == before["transport"]


@pytest.mark.parametrize(
    ("name", "action"),
    [
        pytest.param(
            "checksum-mismatch-is-resent-once-on-the-same-transport", "bit_flipped", id="corrupt"
        ),
        pytest.param("tailscale-resets-for-two-connections-then-back", "reset", id="proxy-reset"),
        pytest.param("reset-mid-transfer-falls-back-to-base64", "reset", id="node-reset"),
    ],
)
async def test_the_full_trace_repeats_with_the_scenarios_seed(name: str, action: str) -> None:
    scenario = load_scenario(LIBRARY / f"{name}.yaml")
    first = await run_scenario(scenario)
    second = await run_scenario(scenario)

    assert first.passed and second.passed, first.report() + second.report()
    assert [f for f in first.fault_trace if f.action == action], f"no {action} in the trace"
    assert first.decisions() == second.decisions()
    # event by event, the fields the trace calls exact are equal on both runs
    exact = [
        {k: v for k, v in f.record().items() if k not in f.inexact and k != "offset_exact"}
        for f in first.fault_trace
        if "occurrence" not in f.inexact and "direction" not in f.inexact
    ]
    again = [
        {k: v for k, v in f.record().items() if k not in f.inexact and k != "offset_exact"}
        for f in second.fault_trace
        if "occurrence" not in f.inexact and "direction" not in f.inexact
    ]
    assert exact == again


async def test_a_corrupt_toxics_flipped_bit_is_in_the_trace_inside_the_attempt_it_broke() -> None:
    result = await run_scenario(
        load_scenario(LIBRARY / "checksum-mismatch-is-resent-once-on-the-same-transport.yaml")
    )
    assert result.passed, result.report()
    records = merged(result.events, result.fault_trace)
    flips = [i for i, r in enumerate(records) if r.get("action") == "bit_flipped"]
    assert flips, "the flip that broke the first upload is not in the trace"
    for i in flips:
        flip = records[i]
        assert flip["type"] == "FAULT_FIRED"
        assert (flip["fault"], flip["toxic_type"], flip["as"]) == (
            "corrupt_binary",
            "corrupt",
            "corrupt_binary",
        )
        assert (flip["node"], flip["route"], flip["service"]) == ("node-1", "hostname", "http")
        assert (flip["proxy"], flip["connection"], flip["direction"]) == (
            "node-1-hostname-http",
            0,  # the first upload's connection; the resend on connection 1 went clean
            "upstream",
        )
        assert flip["bit"] in range(8)
        assert isinstance(flip["offset"], int) and flip["offset_exact"] is True
    # exactly the flips the corrupt toxic decides for that seed, toxic, connection and side
    flip = records[flips[0]]
    assert [(records[i]["offset"], records[i]["bit"]) for i in flips] == decided_flips(
        result.seed, flip["proxy"], flip["toxic"], 0, probability=0.000004
    )
    assert decided_flips(result.seed, flip["proxy"], flip["toxic"], 1, probability=0.000004) == []
    # between the first attempt starting and its integrity failure
    engine = [r for r in records if not r["type"].startswith("FAULT_")]
    first_failure = next(r for r in engine if r["type"] == "ATTEMPT_FAILED")
    assert first_failure["error_kind"] == "integrity"
    assert records[flips[0] - 1]["type"] == "ATTEMPT_STARTED"
    assert records[flips[-1] + 1] is first_failure


@dataclass
class UpstreamOf:
    """The side of a proxy connection a corrupt toxic is asked about (a LinkContext)."""

    seed: int
    proxy: str
    conn: int
    direction: str = "upstream"

    def now(self) -> float:
        return 0.0


def decided_flips(
    seed: int, proxy: str, toxic: str, conn: int, *, probability: float
) -> list[tuple[int, int]]:
    """(offset, bit) of every bit the corrupt toxic flips in an upload's first 320 KiB."""
    corrupt = CorruptToxic(CorruptAttributes(probability=probability))
    zeros = bytes(320 * 1024)
    link = UpstreamOf(seed, proxy, conn)
    [out] = corrupt.transform(Chunk(zeros, 0.0), link, ToxicState(name=toxic))
    return [(i, b.bit_length() - 1) for i, b in enumerate(out.data) if b]


async def test_a_flapping_link_refuses_and_cuts_the_same_connections_for_the_same_seed() -> None:
    scenario = load_scenario(LIBRARY / "flapping-link-eventually-delivers-the-file.yaml")
    first = await run_scenario(scenario, seed=304)
    second = await run_scenario(scenario, seed=304)
    other = await run_scenario(scenario, seed=305)
    assert first.passed and second.passed and other.passed, (
        first.report() + second.report() + other.report()
    )

    def fired(result: ScenarioResult) -> list[dict[str, object]]:
        return [f.record() for f in result.fault_trace if f.kind == "fired"]

    records = fired(first)
    assert {r["action"] for r in records} == {"refused", "cut"}
    # every field of a flap's firing is fixed by the seed: none is marked inexact
    assert all(f.inexact == () for f in first.fault_trace)
    # the same connections refused and cut at the same offsets, in the same order
    exact = ("action", "proxy", "connection", "direction", "offset", "offset_exact", "toxic")
    assert [{k: r[k] for k in exact} for r in records] == [
        {k: r[k] for k in exact} for r in fired(second)
    ]
    assert first.decisions() == second.decisions()
    # each firing is the fate the pure schedule gives that connection (the proxies carried
    # no connection before the fault, so its spells count from connection 0)
    attrs = FlapAttributes(up=2, down=3, cut=32768)
    for r in records:
        fate, offset = flap_fate(304, str(r["proxy"]), str(r["toxic"]), int(r["connection"]), attrs)
        assert (str(fate), offset or 0) == (r["action"], r["offset"])
    # another seed, other fates: other connections refused or cut, other engine decisions
    assert [{k: r[k] for k in exact} for r in fired(other)] != [
        {k: r[k] for k in exact} for r in records
    ]
    assert other.decisions() != first.decisions()


WALL_CLOCK_FLAP = """\
name: a-wall-clock-flap-says-its-switches-are-timing
seed: 3
cluster:
  nodes: [{name: node-1, tailscale: false, transports: [http]}]
  breaker: {failure_threshold: 1000}
steps:
  - fault: {kind: flapping, node: node-1, service: http, schedule: wall_clock, period_s: 0.05}
  - wait_for:
      event: {type: ATTEMPT_FAILED, node: node-1}
      within: 1h
      tick: 10s
      repeat:
        transfer: {node: node-1, path: a.bin, size: 4KiB}
  - clear: all
"""


async def test_a_wall_clock_flap_traces_its_switches_as_timing_dependent(tmp_path: Path) -> None:
    path = tmp_path / "wall-clock-flap.yaml"
    path.write_text(WALL_CLOCK_FLAP)
    result = await run_scenario(load_scenario(path))
    assert result.passed, result.report()
    switches = [f for f in result.fault_trace if f.kind == "fired"]
    # the proxy went down at least once before the attempt that failed
    assert "proxy_disabled" in {f.action for f in switches}
    for switch in switches:
        assert (switch.fault, switch.proxy, switch.service) == (
            "flapping",
            "node-1-hostname-http",
            "http",
        )
        assert switch.action in {"proxy_disabled", "proxy_enabled"}
        # how many switches happen, and between which engine events, is wall-clock timing
        assert switch.inexact == ("occurrence",)
        assert switch.record()["inexact"] == ["occurrence"]
        assert switch.decision() is None
