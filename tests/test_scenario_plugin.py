"""The pytest plugin's fixtures, used as a user would: in a test file run by pytest."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example() -> str:
    section = README.read_text().split("### In Python tests", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return "import pytest\n\n" + match.group(1)


USER_TESTS = """
import pytest
from netfault.simulator.cluster import LocalCluster

SEEN: list[int] = []


@pytest.fixture(scope="module")
def netfault_nodes():
    return ["db", "web"]


def test_seed_option_reaches_the_fixture(netfault_seed: int, netfault_cluster: LocalCluster):
    assert netfault_seed == 7
    assert netfault_cluster.seed == 7


def test_a_fault_applied_by_one_test(netfault_cluster: LocalCluster, fault_controller):
    SEEN.append(id(netfault_cluster))
    fault_controller.apply("down", "db")
    fault_controller.apply("disk_full", "web", quota_bytes=10)
    assert len(netfault_cluster.faults.active) == 2
    assert netfault_cluster.fake("web").faults.disk_quota == 10


def test_is_gone_in_the_next_on_the_same_cluster(netfault_cluster: LocalCluster):
    assert SEEN == [id(netfault_cluster)]
    assert sorted(netfault_cluster.nodes) == ["db", "web"]
    assert netfault_cluster.faults.active == []
    assert netfault_cluster.fake("web").faults.disk_quota is None


async def test_router_and_breakers_start_clean(netfault_router, cluster_transport):
    assert netfault_router.get_disabled_nodes() == {}
    assert all(cluster_transport.can_attempt(n) for n in ("db", "web"))
"""


def test_fixtures_share_one_cluster_per_module_and_clear_faults_between_tests(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    (tmp_path / "test_readme_example.py").write_text(readme_example())
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--netfault-seed",
            "7",
            "-o",
            "asyncio_mode=auto",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "5 passed" in run.stdout
