"""Machine-readable run reports: one JSON document, or JUnit XML for CI dashboards."""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netfault.simulator.scenario.results import ScenarioResult
from netfault.simulator.scenario.trace import merged

SUITE_NAME = "netfault"
# characters XML 1.0 cannot carry at all; error messages quoting binary data may hold them
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def summary(results: Sequence[ScenarioResult]) -> dict[str, Any]:
    """Counts over a run: scenarios, passed, failed (an expectation), errors (a crash)."""
    errors = sum(1 for r in results if r.error is not None)
    failed = sum(1 for r in results if r.error is None and not r.passed)
    return {
        "total": len(results),
        "passed": sum(1 for r in results if r.passed),
        "failed": failed,
        "errors": errors,
        "seconds": round(sum(r.seconds for r in results), 3),
    }


def scenario_record(result: ScenarioResult) -> dict[str, Any]:
    """One scenario's outcome as plain JSON-able data."""
    return {
        "name": result.name,
        "file": str(result.scenario.path),
        "seed": result.seed,
        "passed": result.passed,
        "error": result.error,
        "seconds": round(result.seconds, 3),
        "failures": [
            {"where": str(f.where), "what": f.what, "message": f.message} for f in result.failures
        ],
        "steps": [
            {
                "index": s.index,
                "description": s.description,
                "where": str(s.where),
                "ok": s.ok,
                "virtual_time": s.virtual_time,
                "seconds": round(s.seconds, 3),
                "detail": s.detail,
            }
            for s in result.steps
        ],
        "timeline": result.timeline(),
        "events": merged(result.events, result.fault_trace),
    }


def write_json(results: Sequence[ScenarioResult], path: str | Path) -> Path:
    """Write ``{"summary": {...}, "scenarios": [...]}`` to ``path``; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    document = {"summary": summary(results), "scenarios": [scenario_record(r) for r in results]}
    target.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return target


def timeline_text(result: ScenarioResult) -> str:
    """Attempts, breaker transitions and route demotions, one line each, on the virtual
    clock (a route event names its route where an attempt names its transport)."""
    lines = []
    for entry in result.timeline():
        extra = entry.get("to") or entry.get("error_kind") or entry.get("outcome") or ""
        lines.append(
            f"t={entry['t']:>9.3f} {entry['type']:<20} {entry['node'] or '-':<12}"
            f" {entry['transport'] or entry.get('route') or '-':<14} {extra}".rstrip()
        )
    return "\n".join(lines)


def classname(result: ScenarioResult) -> str:
    """``scenarios/dir/x.yaml`` -> ``scenarios.dir.x``: CI tools group test cases by it.

    Paths outside the working directory keep only their folder and stem.
    """
    path = result.scenario.path.with_suffix("")
    try:
        parts = path.resolve().relative_to(Path.cwd().resolve()).parts
    except ValueError:
        parts = path.parts[-2:]
    return ".".join(p for p in parts if p not in ("", ".", "..", "/")) or result.name


def _testcase(suite: ET.Element, result: ScenarioResult) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "classname": classname(result),
            "name": result.name,
            "file": str(result.scenario.path),
            "time": f"{result.seconds:.3f}",
        },
    )
    if result.error is not None:
        node = ET.SubElement(
            case, "error", {"message": xml_safe(result.error), "type": "ScenarioError"}
        )
        node.text = xml_safe(result.report())
    elif not result.passed:
        first = str(result.failures[0]) if result.failures else "scenario failed"
        node = ET.SubElement(
            case, "failure", {"message": xml_safe(first), "type": "ScenarioFailure"}
        )
        node.text = xml_safe(result.report())
    out = ET.SubElement(case, "system-out")
    out.text = xml_safe(f"seed {result.seed}\n" + timeline_text(result))


def junit_tree(results: Sequence[ScenarioResult]) -> ET.ElementTree:
    """<testsuites><testsuite ...><testcase .../>...</testsuite></testsuites>."""
    counts = summary(results)
    attrs = {
        "name": SUITE_NAME,
        "tests": str(counts["total"]),
        "failures": str(counts["failed"]),
        "errors": str(counts["errors"]),
        "skipped": "0",
        "time": f"{counts['seconds']:.3f}",
    }
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(
        root,
        "testsuite",
        attrs | {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"), "hostname": "localhost"},
    )
    for result in results:
        _testcase(suite, result)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return tree


def write_junit(results: Sequence[ScenarioResult], path: str | Path) -> Path:
    """Write a JUnit XML report to ``path``; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(results).write(target, encoding="utf-8", xml_declaration=True)
    return target


__all__ = ["summary", "timeline_text", "write_json", "write_junit"]
