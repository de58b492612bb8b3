"""`netfault run` and `pytest` on scenario files: a bad file fails alone, reports are written."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

GOOD = """\
name: clean-push-over-ssh
seed: 1
cluster:
  nodes:
    - {name: node-1, tailscale: false}
steps:
  - transfer: {node: node-1, path: a.bin, size: 4KiB, expect: {success: true, transport_used: ssh}}
"""

BAD = """\
name: broken
cluster: {nodes: 1}
steps:
  - transfer: {node: node-7, path: a.bin}
"""

FAILING = GOOD.replace("name: clean-push-over-ssh", "name: expects-http").replace(
    "transport_used: ssh", "transport_used: http"
)


async def run(*args: str, cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "240"},
    )
    async with asyncio.timeout(120):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def write(directory: Path, **files: str) -> Path:
    directory.mkdir()
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text)
    return directory


async def test_bad_file_is_reported_with_its_line_and_the_rest_still_run(tmp_path: Path) -> None:
    scenarios = write(tmp_path / "s", good=GOOD, bad=BAD)
    code, out = await run(
        sys.executable, "-m", "netfault.simulator.cli", "run", str(scenarios), cwd=tmp_path
    )
    assert code == 1
    assert "bad.yaml:4: steps[0].transfer.node: unknown node 'node-7'" in out
    assert "1 passed, 0 failed, 1 invalid" in out


async def test_json_and_junit_reports_and_timelines_are_written(tmp_path: Path) -> None:
    scenarios = write(tmp_path / "s", good=GOOD, failing=FAILING)
    code, out = await run(
        sys.executable,
        "-m",
        "netfault.simulator.cli",
        "run",
        str(scenarios),
        "--report",
        "junit",
        "r.xml",
        "--timeline",
        "pics",
        cwd=tmp_path,
    )
    assert code == 1
    assert "transport_used: expected 'http', seen 'ssh'" in " ".join(out.split())
    suite = ET.parse(tmp_path / "r.xml").getroot().iter("testsuite").__next__()
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    assert sorted(p.name for p in (tmp_path / "pics").iterdir()) == [
        "clean-push-over-ssh.svg",
        "expects-http.svg",
    ]
    code, _ = await run(
        sys.executable,
        "-m",
        "netfault.simulator.cli",
        "run",
        str(scenarios),
        "-k",
        "clean",
        "--report",
        "json",
        "r.json",
        cwd=tmp_path,
    )
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert [s["name"] for s in report["scenarios"]] == ["clean-push-over-ssh"]


async def test_pytest_collects_scenario_files_and_reports_the_failing_step(
    tmp_path: Path,
) -> None:
    scenarios = write(tmp_path / "s", good=GOOD, failing=FAILING, bad=BAD)
    code, out = await run(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(scenarios), cwd=tmp_path
    )
    assert code == 1
    assert "1 passed" in out and "2 failed" in out
    assert "unknown node 'node-7'" in out
    assert "FAILED" in out and "transport_used: expected 'http', seen 'ssh'" in out
