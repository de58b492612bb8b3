"""Mistakes a new user makes on the command line: one-line errors naming the argument, exit 2,
nothing written."""

from __future__ import annotations

import argparse
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from netfault.simulator.cli import main

SCENARIO = """\
name: clean-push-over-ssh
seed: 1
cluster:
  nodes:
    - {name: node-1, tailscale: false}
steps:
  - transfer: {node: node-1, path: a.bin, size: 4KiB, expect: {success: true}}
"""


def netfault(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the ``netfault`` entry point in this process; (exit code, stdout, stderr)."""
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    (tmp_path / "existing").write_text("keep me")
    (tmp_path / "adir").mkdir()
    (tmp_path / "not-a-db").write_text("plain text\n")
    (tmp_path / "hosts.yaml").write_text("nodes:\n  n1:\n    hostname: 127.0.0.1\n")
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "garbage.jsonl").write_text(
        '{"type": "ATTEMPT_STARTED", "node": "n1"}\n\nnot json\n'
    )
    (tmp_path / "binary.jsonl").write_bytes(b"\x7fELF\x02\x01\x01\x00\xd0\xff" * 20)
    return tmp_path


SYNC = ["sync", "--hosts", "hosts.yaml", "--table", "t"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(
            ["run", "--timeline", "existing", "scenario.yaml"],
            ["--timeline", "existing is a file, not a directory"],
            id="timeline-onto-a-file",
        ),
        pytest.param(
            ["run", "--report", "json", "adir", "scenario.yaml"],
            ["--report", "adir is a directory"],
            id="report-onto-a-directory",
        ),
        pytest.param(
            ["run", "--report", "junit", "/proc/version", "scenario.yaml"],
            ["--report", "/proc/version is read-only"],
            id="report-onto-proc",
        ),
        pytest.param(
            ["run", "--report", "xml", "out.xml", "scenario.yaml"],
            ["--report", "unknown format 'xml' (known: json, junit)"],
            id="report-format-checked-before-running",
        ),
        pytest.param(
            ["run", "--report", "json", "existing/r.json", "scenario.yaml"],
            ["--report", "existing is not a directory"],
            id="report-under-a-file",
        ),
        pytest.param(
            ["run", "-j", "0", "scenario.yaml"],
            ["-j/--jobs", "expected a whole number above 0, got 0"],
            id="run-jobs-zero",
        ),
        pytest.param(
            ["replay", "empty.jsonl", "-o", "out.yaml"],
            ["empty.jsonl", "nothing to replay"],
            id="replay-empty-log",
        ),
        pytest.param(
            ["replay", "garbage.jsonl", "-o", "out.yaml"],
            ["garbage.jsonl:3:", "not an event record"],
            id="replay-garbage-names-the-line",
        ),
        pytest.param(
            ["replay", "binary.jsonl", "-o", "out.yaml"],
            ["binary.jsonl:1:", "not a text file"],
            id="replay-binary-file",
        ),
        pytest.param(
            ["replay", "garbage.jsonl", "-o", "existing"],
            ["-o existing", "--force"],
            id="replay-refuses-to-overwrite",
        ),
        pytest.param(
            ["node", "--name", "n", "--home", "existing"],
            ["--home", "existing is a file, not a directory"],
            id="node-home-is-a-file",
        ),
        pytest.param(
            [*SYNC, "--db", "adir"], ["--db", "adir is a directory"], id="sync-db-directory"
        ),
        pytest.param(
            [*SYNC, "--db", "not-a-db"],
            ["--db", "not-a-db is not an SQLite database"],
            id="sync-db-not-sqlite",
        ),
        pytest.param(
            [*SYNC, "--db", "new.db", "--interval", "0"],
            ["--interval", "above 0, got 0"],
            id="sync-interval-zero",
        ),
        pytest.param(
            [*SYNC, "--db", "new.db", "--interval", "-5"],
            ["--interval", "above 0, got -5"],
            id="sync-interval-negative",
        ),
        pytest.param(
            ["push", "existing", "n1:x", "--hosts", "hosts.yaml", "--transports", "carrier,http"],
            ["--transports", "unknown transport 'carrier'", "known: tailscale, ssh, rsync"],
            id="unknown-transport",
        ),
        pytest.param(
            ["push", "existing", "n1:two\nlines", "--hosts", "hosts.yaml"],
            ["contains a control character", "rename the file"],
            id="remote-name-with-a-newline",
        ),
        pytest.param(
            ["run", "-k", "NOMATCH", "scenario.yaml"],
            ["-k NOMATCH", "no scenario name matches"],
            id="keyword-matches-nothing",
        ),
        pytest.param(
            ["health", "n1", "--hosts", "hosts.yaml", "--large"],
            ["unrecognized arguments: --large"],
            id="health-refuses-transfer-flags",
        ),
    ],
)
def test_mistake_is_one_line_naming_the_argument_exit_2_nothing_written(
    work: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: list[str]
) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in work.iterdir()}

    code, out, err = netfault(capsys, *args)

    line = one_line_error(err)
    assert code == 2
    for word in words:
        assert word in line
    assert out == ""
    assert {p.name: p.stat().st_mtime_ns for p in work.iterdir()} == before
    assert (work / "existing").read_text() == "keep me"


def test_transport_names_are_accepted_in_any_case(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from netfault.engine.cli import build_parser

    args = build_parser().parse_args(["probe", "n1", "--transports", "SSH, Http"])

    assert args.transports == ["ssh", "http"]


def test_sync_accepts_an_existing_sqlite_database(work: Path) -> None:
    from netfault.engine.cli import build_parser

    sqlite3.connect(work / "local.db").close()  # an empty database has no header yet
    with sqlite3.connect(work / "full.db") as con:
        con.execute("create table t (id integer primary key)")
    for db in ("local.db", "full.db"):
        args = build_parser().parse_args([*SYNC, "--db", db])
        assert args.db == Path(db)


def test_help_imports_neither_the_network_stack_nor_rich() -> None:
    code = (
        "import sys\n"
        "from netfault.simulator.cli import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = {'asyncssh', 'aiohttp', 'rich', 'yaml', 'toxiproxy'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _parsers(sub)
    return found


def test_every_command_and_argument_has_help_text() -> None:
    from netfault.simulator.cli import build_parser

    missing = [
        f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
        for parser in _parsers(build_parser())
        for action in parser._actions
        if not action.help and not isinstance(action, argparse._SubParsersAction)
    ]
    undescribed = [p.prog for p in _parsers(build_parser())[1:] if not p.description]

    assert missing == []
    assert undescribed == []


LONG_NAME = "a-scenario-name-long-enough-that-a-table-in-eighty-columns-would-have-to-cut-it-short"


def test_run_without_a_terminal_prints_full_scenario_names(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (work / "long.yaml").write_text(SCENARIO.replace("clean-push-over-ssh", LONG_NAME))

    code, out, err = netfault(capsys, "run", "long.yaml")

    assert code == 0, out + err
    assert f"pass {LONG_NAME} " in out
    assert f"pass {LONG_NAME}  1 steps  " in out
    assert out.rstrip().splitlines()[-1].startswith("1 passed, 0 failed in ")


def test_ctrl_c_during_run_prints_the_summary_so_far(work: Path) -> None:
    for name in ("first", "second", "third"):
        (work / f"{name}.yaml").write_text(SCENARIO.replace("clean-push-over-ssh", name))
    proc = subprocess.Popen(
        [sys.executable, "-m", "netfault.simulator.cli", "run", "first.yaml", "second.yaml",
         "third.yaml"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=work,
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first scenario's line: the run is under way
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)

    assert first.startswith(("pass first ", "pass second "))  # two run at once
    assert proc.returncode == 130
    assert "interrupted after " in out and " of 3 scenarios" in out
    assert " passed, 0 failed in " in out
    assert "run cancelled (Ctrl-C)" in err and "Traceback" not in err
