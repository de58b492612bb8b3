"""Run reports (JSON, JUnit XML) and the timeline picture, parsed back and checked."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from netfault.engine.events import Event, EventType
from netfault.simulator.scenario.loader import load_scenario
from netfault.simulator.scenario.model import Where
from netfault.simulator.scenario.report import timeline_text, write_json, write_junit
from netfault.simulator.scenario.results import Failure, ScenarioResult, StepOutcome
from netfault.simulator.scenario.runner import run_scenario
from netfault.simulator.scenario.timeline import (
    BREAKER_COLOURS,
    SLOT,
    layout,
    write_timeline_svg,
)

SVG = "{http://www.w3.org/2000/svg}"
LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"
WRONG_WINNER = """\
name: expects-the-wrong-winner
seed: 4
cluster:
  nodes: [{name: node-1, tailscale: false, transports: [ssh, base64]}]
steps:
  - fault: {kind: reset, node: node-1, level: ssh}
  - transfer:
      node: node-1
      path: a.bin
      size: 8KiB
      expect: {success: true, transport_used: ssh}
"""


def scenario_file(tmp_path: Path, text: str, name: str = "case.yaml") -> Path:
    path = tmp_path / "scenarios" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def made_result(tmp_path: Path, *, ok: bool) -> ScenarioResult:
    """A result put together by hand: two nodes, a failover, a breaker that opens."""
    text = WRONG_WINNER.replace("expects-the-wrong-winner", "made-" + ("ok" if ok else "bad"))
    scenario = load_scenario(scenario_file(tmp_path, text, f"made-{ok}.yaml"))
    where = Where(str(scenario.path), 7)
    result = ScenarioResult(scenario, seed=4, seconds=0.25)
    result.steps.append(StepOutcome(1, "transfer node-1 push a.bin", where, ok, 0.0, 0.2))
    if not ok:
        result.failures.append(
            Failure(where, "step transfer", "transport_used: expected 'ssh', seen 'base64'")
        )

    def ev(kind: EventType, t: float, node: str = "node-1", **fields: Any) -> Event:
        return Event(kind, node=node, monotonic=t, **fields)

    result.events = [
        ev(EventType.ATTEMPT_FAILED, 0, transport="ssh", error_kind="reset", error="rst\x00"),
        ev(EventType.ATTEMPT_SUCCEEDED, 0, transport="base64"),
        ev(EventType.OPERATION_SUCCEEDED, 0, transport="base64"),
        ev(EventType.BREAKER_TRANSITION, 5, node="node-2", data={"to": "open"}),
        ev(EventType.OPERATION_FAILED, 6, node="node-2", outcome="refused"),
        ev(EventType.BREAKER_TRANSITION, 305, node="node-2", data={"to": "half_open"}),
        ev(
            EventType.ATTEMPT_FAILED,
            305,
            node="node-2",
            transport="tailscale",
            error_kind="timeout",
        ),
    ]
    return result


def test_json_report_counts_and_describes_every_scenario(tmp_path: Path) -> None:
    results = [made_result(tmp_path, ok=True), made_result(tmp_path, ok=False)]
    results[1].error = None
    out = write_json(results, tmp_path / "out" / "report.json")
    doc = json.loads(out.read_text())

    assert doc["summary"] == {"total": 2, "passed": 1, "failed": 1, "errors": 0, "seconds": 0.5}
    good, bad = doc["scenarios"]
    assert (good["name"], good["passed"], good["seed"]) == ("made-ok", True, 4)
    assert good["file"].endswith("made-True.yaml")
    assert bad["failures"][0]["message"] == "transport_used: expected 'ssh', seen 'base64'"
    assert bad["steps"][0]["ok"] is False
    assert [e["type"] for e in bad["timeline"]][:2] == ["ATTEMPT_FAILED", "ATTEMPT_SUCCEEDED"]


def test_junit_report_is_structurally_valid(tmp_path: Path) -> None:
    results = [made_result(tmp_path, ok=True), made_result(tmp_path, ok=False)]
    crashed = made_result(tmp_path, ok=True)
    crashed.error = "RuntimeError: the cluster did not start"
    results.append(crashed)
    root = ET.parse(write_junit(results, tmp_path / "junit.xml")).getroot()

    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert {k: suite.get(k) for k in ("tests", "failures", "errors")} == {
        "tests": "3",
        "failures": "1",
        "errors": "1",
    }
    assert float(suite.get("time", "x")) == pytest.approx(0.75)
    cases = suite.findall("testcase")
    assert len(cases) == 3
    for case in cases:
        assert case.get("name") and case.get("classname", "").startswith("scenarios.")
        assert float(case.get("time", "x")) >= 0
        assert case.find("system-out") is not None
        outcome = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        assert len(outcome) <= 1
    assert [c.tag for c in cases[1] if c.tag != "system-out"] == ["failure"]
    assert [c.tag for c in cases[2] if c.tag != "system-out"] == ["error"]
    assert "ATTEMPT_FAILED" in (cases[0].findtext("system-out") or "")


async def test_failing_scenario_junit_names_step_and_expected_vs_seen(tmp_path: Path) -> None:
    scenario = load_scenario(scenario_file(tmp_path, WRONG_WINNER))
    result = await run_scenario(scenario)
    assert not result.passed
    root = ET.parse(write_junit([result], tmp_path / "junit.xml")).getroot()

    case = root.find("testsuite/testcase")
    assert case is not None
    assert case.get("classname", "").endswith("scenarios.case")
    failure = case.find("failure")
    assert failure is not None
    text = failure.text or ""
    assert "step transfer node-1 push a.bin" in failure.get("message", "")
    assert "transport_used: expected 'ssh', seen 'base64'" in text
    assert "[BAD]" in text and "timeline" in text
    assert "ATTEMPT_FAILED" in (case.findtext("system-out") or "")


async def test_timeline_svg_has_a_lane_per_transport_tried_and_breaker_bands(
    tmp_path: Path,
) -> None:
    result = await run_scenario(load_scenario(scenario_file(tmp_path, WRONG_WINNER)))
    svg = ET.parse(write_timeline_svg(result, tmp_path / "pictures")).getroot()
    assert svg.tag == f"{SVG}svg"

    labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "lane-label"]
    assert labels == ["ssh", "base64"]
    failed = [c for c in svg.iter(f"{SVG}circle") if c.get("class") == "attempt_failed"]
    tips = [c.findtext(f"{SVG}title", "") for c in failed]
    assert len(tips) == 1 and "node-1 ssh push: reset" in tips[0]  # the error kind as tooltip
    assert (tmp_path / "pictures" / "expects-the-wrong-winner.svg").is_file()


def test_timeline_svg_colours_breaker_states_per_node(tmp_path: Path) -> None:
    svg = ET.parse(write_timeline_svg(made_result(tmp_path, ok=True), tmp_path / "t.svg"))
    rects = [r for r in svg.getroot().iter(f"{SVG}rect") if r.get("class", "").startswith("br")]
    states = [(r.findtext(f"{SVG}title"), r.get("fill")) for r in rects]
    assert states == [
        ("node-1 breaker closed", BREAKER_COLOURS["closed"]),
        ("node-2 breaker closed", BREAKER_COLOURS["closed"]),
        ("node-2 breaker open", BREAKER_COLOURS["open"]),
        ("node-2 breaker half_open", BREAKER_COLOURS["half_open"]),
    ]
    lanes = [t.text for t in svg.getroot().iter(f"{SVG}text") if t.get("class") == "lane-label"]
    assert lanes == ["ssh", "base64", "tailscale"]


async def test_json_report_and_trace_hold_every_engine_event_and_fault_decision(
    tmp_path: Path,
) -> None:
    from netfault.simulator.scenario.trace import write_trace

    result = await run_scenario(
        load_scenario(LIBRARY / "tailscale-down-for-two-operations-then-back.yaml")
    )
    assert result.passed, result.report()
    record = json.loads(write_json([result], tmp_path / "r.json").read_text())["scenarios"][0]
    types = [e["type"] for e in record["events"]]
    for kind in ("ATTEMPT_STARTED", "ATTEMPT_FAILED", "OPERATION_SUCCEEDED", "FAULT_APPLIED"):
        assert kind in types
    # the fault expires after the second operation, before the third starts
    expired = types.index("FAULT_EXPIRED")
    assert types[expired + 1] == "FAULT_CLEARED"
    assert types[:expired].count("OPERATION_SUCCEEDED") == 2
    assert types[expired:].count("OPERATION_SUCCEEDED") == 1
    lines = write_trace(tmp_path / "t.jsonl", result.events, result.fault_trace).read_text()
    assert [json.loads(line)["type"] for line in lines.splitlines()] == types


async def test_timeline_draws_alerts_and_refusals_and_explains_every_glyph(
    tmp_path: Path,
) -> None:
    alert = await run_scenario(
        load_scenario(
            LIBRARY / "disabling-over-a-fifth-of-the-cluster-raises-the-disabled-nodes-alert.yaml"
        )
    )
    refused = await run_scenario(
        load_scenario(LIBRARY / "failed-half-open-probe-reopens-the-breaker.yaml")
    )
    for result, kind in ((alert, "alert"), (refused, "operation_failed")):
        root = ET.parse(write_timeline_svg(result, tmp_path / f"{result.name}.svg")).getroot()
        legend = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "legend"]
        assert {"node disabled", "node re-enabled", "alert", "attempt failed"} <= set(legend)
        assert "operation refused (no attempt)" in legend
        drawn = [t for t in root.iter(f"{SVG}text") if t.get("class") == kind]
        assert drawn, f"{result.name}: no {kind} mark"
    # the alert scenario happens at one instant: only the order is left to draw
    assert "virtual time (s, ordinal)" in texts_of(alert, tmp_path)
    # the half-open probe comes 300 s after the breaker opened: to scale, 2.4 px a second
    assert "virtual time (s, to scale)" in texts_of(refused, tmp_path)


def texts_of(result: ScenarioResult, tmp_path: Path) -> list[str]:
    root = ET.parse(write_timeline_svg(result, tmp_path / f"{result.name}.svg")).getroot()
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


UNLEGENDED = {"lane", "lane-label", "row-label", "axis-label", "axis-note", "legend"}


@pytest.mark.parametrize(
    "name",
    [
        "disabling-over-a-fifth-of-the-cluster-raises-the-disabled-nodes-alert",
        "failed-half-open-probe-reopens-the-breaker",
        "checksum-mismatch-is-resent-once-on-the-same-transport",
        "flapping-link-eventually-delivers-the-file",
        "blackholed-tailscale-route-costs-one-race-delay-then-nothing",
    ],
)
async def test_the_legend_explains_every_kind_of_mark_drawn(tmp_path: Path, name: str) -> None:
    result = await run_scenario(load_scenario(LIBRARY / f"{name}.yaml"))
    root = ET.parse(write_timeline_svg(result, tmp_path / "t.svg")).getroot()
    keys = {e.get("data-key") for e in root.iter() if e.get("class") == "legend-key"}
    marks = [e for e in root.iter() if e.get("class") not in (*UNLEGENDED, "legend-key")]
    drawn = {e.get("class") for e in marks if e.get("class")}
    assert drawn, "nothing drawn"
    assert drawn <= keys, f"drawn without a legend key: {sorted(drawn - keys)}"
    # every shape is a mark with a class (the white background aside)
    shapes = [e for e in marks if e.tag.removeprefix(SVG) in ("circle", "polyline", "g", "rect")]
    assert all(e.get("class") for e in shapes[1:]) and shapes[0].get("fill") == "white"


def test_a_failed_step_is_drawn_in_its_own_colour_and_explained(tmp_path: Path) -> None:
    root = ET.parse(write_timeline_svg(made_result(tmp_path, ok=False), tmp_path / "t.svg"))
    steps = [g for g in root.getroot().iter(f"{SVG}g") if g.get("class") == "step-failed"]
    assert len(steps) == 1
    keys = {e.get("data-key"): e for e in root.getroot().iter() if e.get("data-key")}
    assert keys["step-failed"].get("stroke") == steps[0][0].get("stroke") == "#d62f2f"


def marks_at(*times: float) -> list[Event]:
    return [Event(EventType.ATTEMPT_FAILED, node="n", transport="ssh", monotonic=t) for t in times]


def test_an_axis_to_scale_puts_each_instant_at_its_virtual_time() -> None:
    lay = layout(marks_at(0, 0, 0, 10, 10))
    assert lay.to_scale and lay.scale == 72.0  # 720 px over 10 s; 4 slots need only 5.6 px/s
    assert [lay.xs[i] for i in range(5)] == [177.0, 191.0, 205.0, 897.0, 911.0]
    assert lay.x_at(5) == 170 + 5 * 72.0


def test_bursts_seconds_apart_in_an_hour_make_the_axis_ordinal() -> None:
    lay = layout(marks_at(*[0] * 10, *[1] * 10, 3600))
    # to scale, the 10 events at t=0 would need 154 px a second: 554,400 px for the hour
    assert not lay.to_scale
    assert lay.xs[0] == 177.0 and lay.xs[9] == 177.0 + 9 * SLOT
    assert lay.xs[10] == 170 + 10 * SLOT + SLOT + SLOT / 2  # a blank slot between instants
    assert lay.xs[20] == 170 + 20 * SLOT + 2 * SLOT + SLOT / 2
    assert lay.x_at(1) == lay.xs[10] - SLOT / 2


async def test_timeline_draws_an_attempt_that_lost_the_connection_race(tmp_path: Path) -> None:
    result = await run_scenario(
        load_scenario(LIBRARY / "blackholed-tailscale-route-costs-one-race-delay-then-nothing.yaml")
    )
    assert result.passed, result.report()
    root = ET.parse(write_timeline_svg(result, tmp_path / "race.svg")).getroot()
    cancelled = [c for c in root.iter(f"{SVG}circle") if c.get("class") == "attempt_cancelled"]
    assert len(cancelled) == 1
    assert "".join(cancelled[0].itertext()).endswith(
        "tailscale push: cancelled (lost the connection race)"
    )
    legend = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "legend"]
    assert "attempt cancelled" in legend
    lines = [" ".join(line.split()[2:]) for line in timeline_text(result).splitlines()]
    assert lines[:3] == [
        "ATTEMPT_CANCELLED node-1 tailscale cancelled",
        "ROUTE_DEMOTED node-1 tailscale demoted",
        "ATTEMPT_SUCCEEDED node-1 ssh success",
    ]


def test_run_writes_the_proxys_fault_decisions_into_the_trace_and_the_json_report(
    tmp_path: Path,
) -> None:
    from netfault.simulator.cli import main

    name = "checksum-mismatch-is-resent-once-on-the-same-transport"
    report = tmp_path / "report.json"
    argv = ["run", str(LIBRARY / f"{name}.yaml"), "--trace", str(tmp_path / "traces")]
    assert main([*argv, "--report", "json", str(report)]) == 0

    lines = (tmp_path / "traces" / f"{name}.jsonl").read_text().splitlines()
    trace = [json.loads(line) for line in lines]
    events = json.loads(report.read_text())["scenarios"][0]["events"]
    assert [r["type"] for r in events] == [r["type"] for r in trace]
    flips = [r for r in trace if r.get("action") == "bit_flipped"]
    assert flips, "the corrupt toxic's decision is missing from the trace"
    for flip in flips:
        # one line says what, where and whether the offset is exact
        assert {"proxy", "route", "node", "connection", "direction", "offset", "bit"} <= set(flip)
        assert flip["offset_exact"] is True
    assert [r for r in events if r.get("action") == "bit_flipped"] == flips


async def test_timeline_marks_where_a_fault_fired_and_names_it_in_the_tooltip(
    tmp_path: Path,
) -> None:
    result = await run_scenario(
        load_scenario(LIBRARY / "checksum-mismatch-is-resent-once-on-the-same-transport.yaml")
    )
    assert result.passed, result.report()
    root = ET.parse(write_timeline_svg(result, tmp_path / "t.svg")).getroot()
    legend = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "legend"]
    assert "fault fired (proxy toxic or node)" in legend
    marks = [t for t in root.iter(f"{SVG}text") if t.get("class") == "fault_fired"]
    assert len(marks) == 1  # the flips of the first upload, none on the clean resend
    tip = "".join(marks[0].itertext())
    assert "corrupt_binary bit_flipped" in tip and "node-1-hostname-http 0 upstream" in tip
    # half a slot before the failed first attempt it caused
    failed = [c for c in root.iter(f"{SVG}circle") if c.get("class") == "attempt_failed"]
    assert len(failed) == 1
    assert float(marks[0].get("x", "0")) == float(failed[0].get("cx", "0")) - SLOT / 2
