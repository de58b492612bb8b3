"""netfault's pytest plugin: scenario files as tests, cluster fixtures, schedules.

Registered under the ``pytest11`` entry point. ``pytest scenarios/`` collects every scenario
file (a YAML file with ``steps:``; fault libraries are skipped). Fixtures for tests written
in Python: ``netfault_cluster``, ``fault_controller``, ``manual_clock``, ``cluster_transport``;
override ``netfault_nodes`` / ``netfault_seed`` to change the cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from netfault.engine import ClusterTransport, ConfigError, ManualClock, TransportConfig

SCENARIO_SUFFIXES = (".yaml", ".yml")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netfault")
    group.addoption(
        "--netfault-backend",
        default="local",
        choices=("local", "docker"),
        help="cluster backend for scenario files (default: local)",
    )
    group.addoption(
        "--netfault-seed", type=int, default=None, help="override every scenario's seed"
    )


def _is_scenario(path: Path) -> bool:
    if path.suffix not in SCENARIO_SUFFIXES:
        return False
    try:
        head = path.read_text(encoding="utf-8")
    except OSError:
        return False
    return any(line.startswith("steps:") for line in head.splitlines())


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _is_scenario(file_path):
        collector: pytest.Collector = ScenarioFile.from_parent(parent, path=file_path)
        return collector
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield ScenarioItem.from_parent(self, name=self.path.stem)


class ScenarioFailed(Exception):
    def __init__(self, report: str) -> None:
        super().__init__(report)
        self.report = report


class ScenarioItem(pytest.Item):
    """One scenario file run against a fresh cluster."""

    def runtest(self) -> None:
        from netfault.simulator.scenario.loader import load_scenario
        from netfault.simulator.scenario.runner import run_scenario

        try:
            scenario = load_scenario(self.path)
        except ConfigError as exc:
            raise ScenarioFailed(f"invalid scenario: {exc}") from None
        backend = self.config.getoption("--netfault-backend", "local")
        seed = self.config.getoption("--netfault-seed", None)
        result = asyncio.run(run_scenario(scenario, backend=backend, seed=seed))
        self.user_properties.append(("netfault_seconds", round(result.seconds, 3)))
        if not result.passed:
            raise ScenarioFailed(result.report())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return excinfo.value.report
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario: {self.name}"


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture
def netfault_nodes() -> Any:
    """Nodes of ``netfault_cluster``: a count or a list of names/NodeSpec (override me)."""
    return 3


@pytest.fixture
def netfault_seed() -> int:
    return 0


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixtures need pytest-asyncio
    pass
else:

    @pytest_asyncio.fixture
    async def netfault_cluster(netfault_nodes: Any, netfault_seed: int) -> AsyncIterator[Any]:
        """A LocalCluster for one test; every fault is cleared and the cluster stopped after."""
        from netfault.simulator.cluster import LocalCluster

        async with LocalCluster(nodes=netfault_nodes, seed=netfault_seed) as cluster:
            yield cluster

    @pytest_asyncio.fixture
    async def fault_controller(netfault_cluster: Any) -> Any:
        return netfault_cluster.faults

    @pytest_asyncio.fixture
    async def cluster_transport(manual_clock: ManualClock) -> AsyncIterator[ClusterTransport]:
        """A ClusterTransport on the manual clock with small real socket timeouts."""
        config = TransportConfig(connect_timeout=3.0, operation_timeout=15.0, http_timeout=3.0)
        async with ClusterTransport(clock=manual_clock, config=config) as transport:
            yield transport
