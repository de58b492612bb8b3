"""Wall time of the whole scenario library, run as `netfault run` runs it (DEFAULT_JOBS at once).

Loads every ``scenarios/*.yaml``, runs each one on a fresh embedded cluster of its own, and
compares the total with a baseline: a clean one-node, one-transfer reference scenario run in
the same process, times the number of scenarios -- what the library would cost one by one if
every scenario were only cluster start-up plus one healthy transfer. The ratio is the price of
the faults themselves (real timeouts, bandwidth limits, retries). Prints one JSON line last:
``{"bench": "suite", "results": [{"name", "value", "unit", "baseline", "ratio", ...}]}``.
Usage: ``python bench/suite.py [--dir scenarios] [--quiet]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from netfault.engine.errors import ConfigError
from netfault.simulator.scenario.loader import load_scenario
from netfault.simulator.scenario.results import ScenarioResult
from netfault.simulator.scenario.runner import DEFAULT_JOBS, run_scenario, run_scenarios

TARGET_SECONDS = 60.0
REFERENCE = """
name: clean-transfer-reference
seed: 1
cluster:
  nodes: [{name: node-1}]
steps:
  - transfer:
      node: node-1
      path: data/reference.bin
      size: 64KiB
      expect: {success: true, transport_used: tailscale}
"""


async def run_reference(runs: int = 3) -> float:
    """Best of ``runs`` seconds for one clean scenario (cluster start, one transfer, teardown)."""
    scenario = load_scenario(Path("reference.yaml"), REFERENCE)
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        result = await run_scenario(scenario)
        best = min(best, time.perf_counter() - started)
        if not result.passed:
            raise RuntimeError("the clean reference scenario failed:\n" + result.report())
    return best


async def run_library(paths: list[Path], quiet: bool) -> tuple[float, list[dict[str, Any]]]:
    """Run every scenario file once as `netfault run` does (DEFAULT_JOBS at a time);
    (wall seconds, per-scenario rows in name order)."""
    rows: dict[str, dict[str, Any]] = {}
    scenarios = []
    for path in paths:
        try:
            scenarios.append(load_scenario(path))
        except ConfigError as exc:
            rows[path.name] = {"file": path.name, "passed": False, "seconds": 0.0}
            print(f"FAIL {path.name}: {exc}", file=sys.stderr)
    files = {s.name: s.path.name for s in scenarios}

    def finished(result: ScenarioResult) -> None:
        name = files[result.name]
        rows[name] = {"file": name, "passed": result.passed, "seconds": round(result.seconds, 3)}
        if not quiet:
            verdict = "PASS" if result.passed else "FAIL"
            print(f"{verdict} {result.seconds:6.2f}s {name}", file=sys.stderr)
            if not result.passed:
                print(result.report(), file=sys.stderr)

    started = time.perf_counter()
    await run_scenarios(scenarios, jobs=DEFAULT_JOBS, finished=finished)
    return time.perf_counter() - started, [rows[name] for name in sorted(rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(__file__).parent.parent / "scenarios")
    parser.add_argument("--quiet", action="store_true", help="no per-scenario lines on stderr")
    args = parser.parse_args()

    paths = sorted(args.dir.glob("*.yaml"))

    async def both() -> tuple[float, float, list[dict[str, Any]]]:
        reference = await run_reference()
        total, rows = await run_library(paths, args.quiet)
        return reference, total, rows

    reference, total, rows = asyncio.run(both())
    count = len(rows)
    passed = sum(1 for r in rows if r["passed"])
    baseline = reference * count
    results = [
        {
            "name": "library_wall_time",
            "value": round(total, 3),
            "unit": "s",
            "baseline": round(baseline, 3),
            "baseline_name": "best_of_3_clean_reference_scenario_seconds_x_count",
            "ratio": round(total / baseline, 3) if baseline else None,
            "target": TARGET_SECONDS,
            "meets": total <= TARGET_SECONDS,
            "scenarios": count,
            "slowest": sorted(rows, key=lambda r: -r["seconds"])[:3],
        },
        {
            "name": "scenarios_passed",
            "value": passed,
            "unit": "scenarios",
            "baseline": count,
            "ratio": round(passed / count, 3) if count else None,
            "target": count,
            "meets": passed == count,
            "failed": [r["file"] for r in rows if not r["passed"]],
        },
    ]
    print(json.dumps({"bench": "suite", "results": results}))


if __name__ == "__main__":
    main()
