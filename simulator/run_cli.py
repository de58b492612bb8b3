"""``netfault run``: the scenario library against a cluster, with reports and pictures."""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netfault.engine import ConfigError
from netfault.engine.cli_args import existing_text_file, output_dir, output_file, positive_int

if TYPE_CHECKING:  # imported when a command runs, so `netfault --help` stays fast
    from rich.console import Console

    from netfault.simulator.scenario.model import Scenario
    from netfault.simulator.scenario.results import ScenarioResult


@cache
def out() -> Console:
    from rich.console import Console

    return Console()


REPORT_FORMATS = ("json", "junit")


class ReportAction(argparse.Action):
    """``--report FORMAT FILE``: both checked while parsing, before any scenario runs."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        fmt, file = values
        if fmt not in REPORT_FORMATS:
            parser.error(f"argument --report: unknown format {fmt!r} (known: json, junit)")
        try:
            path = output_file(file)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"argument --report: {exc}")
        setattr(namespace, self.dest, (fmt, path))


def register(sub: Any) -> None:
    about = "run scenario files against a fake cluster"
    run = sub.add_parser("run", help=about, description=about[0].upper() + about[1:] + ".")
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
    run.add_argument(
        "-j",
        "--jobs",
        type=positive_int,
        default=2,
        metavar="N",
        help="scenarios run at once, each with a cluster of its own (default 2; 1: one by one)",
    )
    run.add_argument(
        "--backend",
        choices=("local", "docker"),
        default="local",
        help="where the cluster runs: in this process, or in Docker containers",
    )
    run.add_argument(
        "--report",
        nargs=2,
        action=ReportAction,
        metavar=("FORMAT", "FILE"),
        help="write a report: json FILE or junit FILE",
    )
    run.add_argument(
        "--timeline",
        type=output_dir,
        metavar="DIR",
        help="write an SVG timeline per scenario into DIR (created if missing)",
    )
    run.add_argument(
        "--trace",
        type=output_dir,
        metavar="DIR",
        help="write each scenario's full trace (engine and fault events) as DIR/NAME.jsonl",
    )
    run.set_defaults(handler=cmd_run)
    about = "print the JSON Schema of scenario files (for editors: VS Code YAML)"
    schema = sub.add_parser("schema", help=about, description=about[0].upper() + about[1:] + ".")
    schema.add_argument(
        "-o", "--output", type=output_file, metavar="FILE", help="write to FILE, not stdout"
    )
    schema.set_defaults(handler=cmd_schema)
    about = "turn an engine event log into a scenario file"
    replay = sub.add_parser("replay", help=about, description=about[0].upper() + about[1:] + ".")
    replay.add_argument(
        "events",
        type=existing_text_file,
        metavar="EVENTS.jsonl",
        help="event log written by --events or JsonlEventLog",
    )
    replay.add_argument(
        "-o",
        "--output",
        type=output_file,
        required=True,
        metavar="SCENARIO.yaml",
        help="scenario file to write (an existing one only with --force)",
    )
    replay.add_argument("--force", action="store_true", help="overwrite an existing --output")
    replay.add_argument("--name", help="scenario name (default: from the output file)")
    replay.set_defaults(handler=cmd_replay)


async def cmd_replay(args: argparse.Namespace) -> int:
    from netfault.simulator.scenario.loader import load_scenario
    from netfault.simulator.scenario.replay import replay_file

    if args.output.exists() and not args.force:
        raise ConfigError("exists; pass --force to overwrite it", key=f"-o {args.output}")
    try:
        replay_file(args.events, args.output, name=args.name)
    except ValueError as exc:  # an event log with nothing to replay
        raise ConfigError(str(exc)) from exc
    scenario = load_scenario(args.output)
    out().print(
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


async def cmd_schema(args: argparse.Namespace) -> int:
    from netfault.simulator.scenario.scenario_file import json_schema

    text = json_schema()
    if args.output is None:
        print(text, end="")
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


async def cmd_run(args: argparse.Namespace) -> int:
    from netfault.simulator.scenario.loader import load_scenario

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
        out().print(f"[red]invalid[/red] {problem}", soft_wrap=True)
    if not files:
        raise ConfigError("no scenario files there", file=" ".join(map(str, args.paths)))
    if not scenarios and args.keyword is not None and len(invalid) < len(files):
        raise ConfigError(
            f"no scenario name matches (of {len(files) - len(invalid)} valid scenarios); "
            "-k takes a substring or a glob of the name",
            key=f"-k {args.keyword}",
        )
    results: list[ScenarioResult] = []
    started = time.perf_counter()
    try:
        await _run_all(args, scenarios, results)
    except asyncio.CancelledError:  # Ctrl-C: show what ran, then let the cancellation go on
        _summary(results, len(invalid), time.perf_counter() - started)
        out().print(f"interrupted after {len(results)} of {len(scenarios)} scenarios")
        raise
    _summary(results, len(invalid), time.perf_counter() - started)
    _outputs(args, results)
    return 0 if results and all(r.passed for r in results) and not invalid else 1


async def _run_all(
    args: argparse.Namespace, scenarios: list[Scenario], results: list[ScenarioResult]
) -> None:
    """Run each scenario, appending its result; a bar on a terminal, a line each otherwise."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from netfault.simulator.scenario.runner import run_scenarios

    console = out()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns,
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("scenarios", total=len(scenarios))
        running: list[str] = []

        def starting(scenario: Scenario) -> None:
            running.append(scenario.name)
            bar.update(task, description=", ".join(running))

        def finished(result: ScenarioResult) -> None:
            running.remove(result.name)
            bar.update(task, description=", ".join(running))
            results.append(result)
            if not result.passed:
                console.print(result.report(), markup=False, highlight=False, soft_wrap=True)
            elif not console.is_terminal:
                console.print(f"pass {result.name} ({result.seconds:.2f}s)", highlight=False)
            bar.advance(task)

        ordered = await run_scenarios(
            scenarios,
            jobs=args.jobs,
            backend=args.backend,
            seed=args.seed,
            starting=starting,
            finished=finished,
        )
        results[:] = ordered  # the summary lists them in file order


def _summary(results: list[ScenarioResult], invalid: int, wall: float) -> None:
    """A table on a terminal; without one, full names, one line each (nothing cut short)."""
    from rich.table import Table

    console = out()
    if console.is_terminal:
        table = Table(title="netfault scenarios")
        table.add_column("scenario", overflow="fold")
        for column in ("result", "steps", "seconds", "first failure"):
            table.add_column(column)
        for r in results:
            verdict = "[green]pass[/green]" if r.passed else "[red]FAIL[/red]"
            table.add_row(r.name, verdict, str(len(r.steps)), f"{r.seconds:.2f}", _first(r))
        console.print(table)
    else:
        for r in results:
            verdict = "pass" if r.passed else "FAIL"
            line = f"{verdict} {r.name}  {len(r.steps)} steps  {r.seconds:.2f}s  {_first(r)}"
            console.print(line.rstrip(), soft_wrap=True, highlight=False, markup=False)
    passed = sum(r.passed for r in results)
    console.print(
        f"{passed} passed, {len(results) - passed} failed"
        + (f", {invalid} invalid" if invalid else "")
        + f" in {wall:.1f}s"
    )


def _first(result: ScenarioResult) -> str:
    return str(result.failures[0].message if result.failures else result.error or "")


def _outputs(args: argparse.Namespace, results: list[ScenarioResult]) -> None:
    if args.report:
        fmt, file = args.report
        from netfault.simulator.scenario import report

        writers = {"json": report.write_json, "junit": report.write_junit}
        writers[fmt](results, Path(file))  # the format was checked while parsing
        out().print(f"{fmt} report written to {file}")
    if args.timeline:
        from netfault.simulator.scenario.timeline import write_timeline_svg

        args.timeline.mkdir(parents=True, exist_ok=True)
        for r in results:
            write_timeline_svg(r, args.timeline / f"{r.name}.svg")
        out().print(f"{len(results)} timelines written to {args.timeline}/")
    if args.trace:
        from netfault.simulator.scenario.trace import write_trace

        args.trace.mkdir(parents=True, exist_ok=True)
        for r in results:
            write_trace(args.trace / f"{r.name}.jsonl", r.events, r.fault_trace)
        out().print(f"{len(results)} traces written to {args.trace}/")
