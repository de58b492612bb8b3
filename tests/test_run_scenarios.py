"""Scenarios run several at a time, each on a cluster of its own; results keep file order."""

from __future__ import annotations

from pathlib import Path

import pytest

from netfault.simulator.scenario.loader import load_scenario
from netfault.simulator.scenario.model import Scenario
from netfault.simulator.scenario.results import ScenarioResult
from netfault.simulator.scenario.runner import run_scenarios

TEMPLATE = """\
name: {name}
seed: 1
cluster:
  nodes: [{{name: node-1, tailscale: false}}]
steps:
  - transfer: {{node: node-1, path: a.bin, size: 4KiB, expect: {{success: true}}}}
"""


def scenarios(count: int) -> list[Scenario]:
    return [load_scenario(Path(f"s{i}.yaml"), TEMPLATE.format(name=f"s{i}")) for i in range(count)]


@pytest.mark.parametrize("jobs", [1, 2, 3])
async def test_at_most_jobs_run_at_once_and_results_keep_their_order(jobs: int) -> None:
    running: set[str] = set()
    most = 0
    finished: list[str] = []

    def start(scenario: Scenario) -> None:
        nonlocal most
        running.add(scenario.name)
        most = max(most, len(running))

    def end(result: ScenarioResult) -> None:
        running.discard(result.name)
        finished.append(result.name)

    results = await run_scenarios(scenarios(4), jobs=jobs, starting=start, finished=end)

    assert [r.name for r in results] == ["s0", "s1", "s2", "s3"]
    assert all(r.passed for r in results), [r.report() for r in results]
    assert sorted(finished) == ["s0", "s1", "s2", "s3"]
    assert most == jobs


async def test_jobs_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="jobs must be >= 1, not 0"):
        await run_scenarios(scenarios(1), jobs=0)
