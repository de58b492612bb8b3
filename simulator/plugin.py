"""netfault's pytest plugin: scenario files as tests, cluster fixtures, schedules.

Registered under the ``pytest11`` entry point. ``pytest scenarios/`` collects every scenario
file (a YAML file with ``steps:``; fault libraries are skipped). Fixtures for tests written
in Python: ``netfault_cluster`` (one cluster per module, faults cleared after each test),
``fault_controller``, ``manual_clock``, ``cluster_transport``, ``netfault_router``; override
``netfault_nodes`` / ``netfault_seed`` (module scope) to change the cluster;
``--netfault-seed`` sets the seed of every cluster and scenario.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from netfault.engine import (
    ClusterTransport,
    ConfigError,
    ManualClock,
    SyncRouter,
    TransportConfig,
)
from netfault.simulator.cluster.controller import FaultController
from netfault.simulator.cluster.local import LocalCluster
from netfault.simulator.cluster.spec import NodeSpec

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
# As pytest-httpserver does it: one cluster per module (``netfault_cluster_module``, started
# once, stopped after the module's last test) and a function-scoped ``netfault_cluster`` that
# hands it to a test and, after the test, clears every fault it left. Breakers and router
# state live in ``cluster_transport`` / ``netfault_router``, built fresh for every test.
# The cluster runs on its own loop thread, so it serves tests on any event loop.

NodeSpecs = int | Sequence[NodeSpec | str]


@pytest.fixture(scope="module")
def netfault_nodes() -> NodeSpecs:
    """Nodes of the module's cluster: a count or names/NodeSpec (override, module scope)."""
    return 3


@pytest.fixture(scope="module")
def netfault_seed(request: pytest.FixtureRequest) -> int:
    """The cluster's seed: ``--netfault-seed`` when given, else 0 (override, module scope)."""
    seed: int | None = request.config.getoption("--netfault-seed", None)
    return 0 if seed is None else seed


@pytest.fixture(scope="module")
def netfault_cluster_module(
    netfault_nodes: NodeSpecs, netfault_seed: int
) -> Iterator[LocalCluster]:
    """One LocalCluster for the module; stopped (faults cleared, ports freed) after it."""
    cluster = LocalCluster(nodes=netfault_nodes, seed=netfault_seed)
    asyncio.run(cluster.start())
    try:
        yield cluster
    finally:
        asyncio.run(cluster.stop())


@pytest.fixture
def netfault_cluster(netfault_cluster_module: LocalCluster) -> Iterator[LocalCluster]:
    """The module's cluster for one test; every fault it applied is cleared after it."""
    try:
        yield netfault_cluster_module
    finally:
        netfault_cluster_module.faults.clear_all()


@pytest.fixture
def fault_controller(netfault_cluster: LocalCluster) -> FaultController:
    return netfault_cluster.faults


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()


SCENARIO_TIMEOUTS = TransportConfig(connect_timeout=3.0, operation_timeout=15.0, http_timeout=3.0)


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixture needs pytest-asyncio
    pass
else:

    @pytest_asyncio.fixture
    async def cluster_transport(manual_clock: ManualClock) -> AsyncIterator[ClusterTransport]:
        """A ClusterTransport on the manual clock with small real socket timeouts; its
        breakers are new for every test."""
        async with ClusterTransport(clock=manual_clock, config=SCENARIO_TIMEOUTS) as transport:
            yield transport


@pytest.fixture
def netfault_router(
    netfault_cluster: LocalCluster, cluster_transport: ClusterTransport
) -> SyncRouter:
    """A SyncRouter over the cluster's nodes, with no failures, preferences or disabled nodes."""
    return SyncRouter(cluster_transport, nodes=list(netfault_cluster.nodes.values()))
