"""The timeouts of a scenario's operations: one precedence, each level proven, and the
library's large-preset scenario failing without its preset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netfault.engine import ConfigError
from netfault.simulator.scenario.loader import load_scenario
from netfault.simulator.scenario.presets import effective_config
from netfault.simulator.scenario.runner import run_scenario
from netfault.simulator.scenario.steps.transfer import TransferStep

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"


def operation_timeout(*levels: object) -> float:
    return effective_config(*levels).operation_timeout  # type: ignore[arg-type]


def test_built_in_defaults_apply_when_nothing_is_set() -> None:
    config = effective_config()
    assert (config.connect_timeout, config.operation_timeout, config.http_timeout) == (3, 15, 3)


def test_cluster_preset_beats_the_built_in_defaults() -> None:
    assert operation_timeout("large") == 600.0
    assert operation_timeout("quick") == 30.0


def test_cluster_config_beats_the_cluster_preset() -> None:
    assert operation_timeout("large", {"operation_timeout": 2.0}) == 2.0
    assert effective_config("large", {"operation_timeout": 2.0}).connect_timeout == 60.0


def test_step_preset_beats_the_cluster_config() -> None:
    config = effective_config("quick", {"operation_timeout": 2.0, "connect_timeout": 1.0}, "large")
    assert (config.connect_timeout, config.operation_timeout) == (60.0, 600.0)


def test_step_config_beats_the_step_preset() -> None:
    config = effective_config("quick", {"operation_timeout": 2.0}, "large", {"http_timeout": 5.0})
    assert (config.operation_timeout, config.http_timeout) == (600.0, 5.0)
    assert effective_config(None, {"operation_timeout": 2.0}, None, {"connect_timeout": 1.0}) == (
        effective_config(None, {"operation_timeout": 2.0, "connect_timeout": 1.0})
    )


def test_step_preset_and_config_are_loaded() -> None:
    scenario = load_scenario(
        "ok.yaml",
        "name: p\nseed: 1\ncluster: {nodes: 1, preset: quick, config: {operation_timeout: 2s}}\n"
        "steps:\n  - transfer: {node: node-1, path: a, preset: large, "
        "config: {connect_timeout: 500ms}}\n",
    )
    spec, step = scenario.cluster, scenario.steps[0]
    assert isinstance(step, TransferStep)
    args = step.transfer
    config = effective_config(
        spec.preset, spec.config.overrides(), args.preset, args.config.overrides()
    )
    assert (config.connect_timeout, config.operation_timeout) == (0.5, 600.0)


@pytest.mark.parametrize(
    ("preset", "cut_after"),
    [
        # as shipped (preset: large) it runs as a library scenario: not a third time here
        pytest.param("preset: quick", "30 s", id="quick"),
        pytest.param("", "2 s", id="cluster-2s"),
    ],
)
async def test_large_file_scenario_fails_without_its_large_preset(
    preset: str, cut_after: str
) -> None:
    path = LIBRARY / "large-file-with-large-preset-survives-bandwidth-limit.yaml"
    text = path.read_text()
    assert text.count("preset: large") == 1
    result = await run_scenario(load_scenario(path, text.replace("preset: large", preset)))
    assert not result.passed, result.report()
    failed = [json.loads(e.to_json()) for e in result.events if e.type.name == "ATTEMPT_FAILED"]
    assert [(e["transport"], e["error_kind"]) for e in failed] == [("tailscale", "timeout")]
    assert f"timed out after {cut_after}, " in failed[0]["error"]  # with bytes in: slow link
    # cut off on Tailscale, the file went over SSH instead
    assert "transport_used: expected 'tailscale', seen 'ssh'" in result.report()


def test_race_delay_follows_the_precedence_and_off_means_sequential() -> None:
    scenario = load_scenario(
        "race.yaml",
        "name: r\ncluster: {nodes: 1, config: {race_delay: off, route_cooldown: 30s}}\n"
        "steps:\n"
        "  - transfer: {node: node-1, path: a}\n"
        "  - transfer: {node: node-1, path: a, config: {race_delay: 100ms}}\n"
        "  - transfer: {node: node-1, path: a, preset: quick}\n",
    )
    spec = scenario.cluster
    assert spec.config.route_cooldown == 30.0
    assert spec.config.overrides() == {"race_delay": None}  # route_cooldown is no timeout
    delays = []
    for step in scenario.steps:
        assert isinstance(step, TransferStep)
        args = step.transfer
        config = effective_config(
            spec.preset, spec.config.overrides(), args.preset, args.config.overrides()
        )
        delays.append(config.race_delay)
    assert delays == [None, 0.1, 0.5]


def test_route_cooldown_is_set_on_the_cluster_only() -> None:
    with pytest.raises(ConfigError) as caught:
        load_scenario(
            "cool.yaml",
            "name: c\ncluster: {nodes: 1}\nsteps:\n"
            "  - transfer: {node: node-1, path: a, config: {route_cooldown: 5s}}\n",
        )
    assert str(caught.value) == (
        "cool.yaml:4: steps[0].transfer.config.route_cooldown: unknown key (known: "
        "connect_timeout, operation_timeout, http_timeout, integrity_retries, race_delay)"
    )


@pytest.mark.parametrize(
    ("value", "seen"), [("off", None), ("false", None), ("", None), ("250ms", 0.25), ("2", 2.0)]
)
def test_race_delay_values(value: str, seen: float | None) -> None:
    text = (
        f"name: r\ncluster: {{nodes: 1, config: {{race_delay: {value}}}}}\nsteps: [advance: 1s]\n"
    )
    assert load_scenario("r.yaml", text).cluster.config.overrides() == {"race_delay": seen}


def test_a_race_delay_that_is_neither_a_duration_nor_off_says_both() -> None:
    with pytest.raises(ConfigError) as caught:
        load_scenario(
            "r.yaml",
            "name: r\ncluster: {nodes: 1, config: {race_delay: soon}}\nsteps: [advance: 1s]\n",
        )
    assert str(caught.value) == (
        "r.yaml:2: cluster.config.race_delay: expected a duration like 300s, 5m or 250ms, "
        "got 'soon', or off for sequential failover"
    )
