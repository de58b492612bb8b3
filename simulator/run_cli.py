"""``netfault run``: the scenario library against a cluster, with reports and pictures."""

from __future__ import annotations

import argparse
import fnmatch
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from netfault.engine import ConfigError
from netfault.simulator.scenario.results import ScenarioResult

console = Console()


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="run scenario files against a fake cluster")
    run.add_argument(
        "paths",
        nargs="*",
        type=Path,
        default=[Path("scenarios")],
        help="scenario files or directories (default: scenarios/)",
    )
    run.add_argument(
        "-k", dest="keyword", help="only scenarios whose name matches (glob or substring)"
    )
    run.add_argument("--seed", type=int, help="override every scenario's seed")
    run.add_argument("--backend", choices=("local", "docker"), default="local")
    run.add_argument(
        "--report",
        nargs=2,
        metavar=("FORMAT", "FILE"),
        help="write a report: json FILE or junit FILE",
    )
    run.add_argument(
        "--timeline", type=Path, metavar="DIR", help="write an SVG timeline per scenario into DIR"
    )
    run.set_defaults(handler=cmd_run)
    replay = sub.add_parser("replay", help="turn an engine event log into a scenario file")
    replay.add_argument("events", type=Path, metavar="EVENTS.jsonl")
    replay.add_argument("-o", "--output", type=Path, required=True, metavar="SCENARIO.yaml")
    replay.add_argument("--name", help="scenario name (default: from the output file)")
    replay.set_defaults(handler=cmd_replay)


async def cmd_replay(args: argparse.Namespace) -> int:
    from netfault.simulator.scenario.loader import load_scenario
    from netfault.simulator.scenario.replay import replay_file

    replay_file(args.events, args.output, name=args.name)
    scenario = load_scenario(args.output)
    console.print(
        f"wrote {args.output}: scenario {scenario.name} with "
        f"{len(scenario.steps)} steps; run it with: netfault run {args.output}"
    )
    return 0


def discover(paths: list[Path]) -> list[Path]:
    """Scenario files under the given paths (fault libraries skipped), sorted."""
    from netfault.simulator.plugin import _is_scenario

    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += [p for p in sorted(path.rglob("*.y*ml")) if _is_scenario(p)]
        elif path.exists():
            found.append(path)
        else:
            raise ConfigError("no such file or directory", file=str(path))
    return found


def _matches(name: str, keyword: str | None) -> bool:
    return keyword is None or keyword in name or fnmatch.fnmatch(name, keyword)


async def cmd_run(args: argparse.Namespace) -> int:
    from netfault.simulator.scenario.loader import load_scenario
    from netfault.simulator.scenario.runner import run_scenario

    files = discover(args.paths)
    scenarios, invalid = [], []
    for path in files:
        try:
            scenario = load_scenario(path)
        except ConfigError as exc:
            invalid.append(str(exc))
            continue
        if _matches(scenario.name, args.keyword):
            scenarios.append(scenario)
    for problem in invalid:
        console.print(f"[red]invalid[/red] {problem}")
    results: list[ScenarioResult] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("scenarios", total=len(scenarios))
        for scenario in scenarios:
            bar.update(task, description=scenario.name)
            result = await run_scenario(scenario, backend=args.backend, seed=args.seed)
            results.append(result)
            if not result.passed:
                console.print(result.report(), markup=False, highlight=False)
            bar.advance(task)
    _summary(results, len(invalid))
    _outputs(args, results)
    return 0 if results and all(r.passed for r in results) and not invalid else 1


def _summary(results: list[ScenarioResult], invalid: int) -> None:
    table = Table(title="netfault scenarios")
    for column in ("scenario", "result", "steps", "seconds", "first failure"):
        table.add_column(column)
    for r in results:
        first = str(r.failures[0].message if r.failures else r.error or "")
        table.add_row(
            r.name,
            "[green]pass[/green]" if r.passed else "[red]FAIL[/red]",
            str(len(r.steps)),
            f"{r.seconds:.2f}",
            first[:80],
        )
    console.print(table)
    passed = sum(r.passed for r in results)
    total = sum(r.seconds for r in results)
    console.print(
        f"{passed} passed, {len(results) - passed} failed"
        + (f", {invalid} invalid" if invalid else "")
        + f" in {total:.1f}s"
    )


def _outputs(args: argparse.Namespace, results: list[ScenarioResult]) -> None:
    if args.report:
        fmt, file = args.report
        from netfault.simulator.scenario import report

        writers = {"json": report.write_json, "junit": report.write_junit}
        if fmt not in writers:
            raise ConfigError(f"unknown report format {fmt!r} (json or junit)", key="--report")
        writers[fmt](results, Path(file))
        console.print(f"{fmt} report written to {file}")
    if args.timeline:
        from netfault.simulator.scenario.timeline import write_timeline_svg

        args.timeline.mkdir(parents=True, exist_ok=True)
        for r in results:
            write_timeline_svg(r, args.timeline / f"{r.name}.svg")
        console.print(f"{len(results)} timelines written to {args.timeline}/")
