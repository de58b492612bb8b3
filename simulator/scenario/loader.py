"""Load and validate scenario files; every error names file:line: key: what is wrong.

The YAML is read with positions (``load_located``), validated by the ``ScenarioFile`` model,
and each pydantic error's ``loc`` is walked through the positioned YAML to the line of the
value it blames. Every error of a file is reported at once (``ScenarioErrors``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from netfault.engine import ConfigError, Located, load_located
from netfault.simulator.scenario.model import Scenario, Where
from netfault.simulator.scenario.scenario_file import ClusterModel, FaultLibrary, ScenarioFile
from netfault.simulator.scenario.steps import STEP_KINDS, StepModel
from netfault.simulator.scenario.steps.fault import FaultBase


class ScenarioErrors(ConfigError):
    """Every error found in one file, in line order, one per line of the message."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors
        self.file, self.line, self.key = errors[0].file, errors[0].line, errors[0].key


def load_scenario(path: str | Path, text: str | None = None) -> Scenario:
    """Parse and validate one scenario file; raises ConfigError (ScenarioErrors) naming
    file:line: key for every mistake."""
    root = load_located(path, text)
    data = root.plain()
    if not isinstance(data, dict):
        raise root.error("a scenario is a mapping with name, cluster and steps")
    errors: list[ConfigError] = []
    nodes, openssh = _cluster_nodes(data)
    fault_sets = _fault_sets(Path(path), root, data, errors)
    context = {"nodes": nodes, "openssh": openssh, "fault_sets": fault_sets}
    try:
        model = ScenarioFile.model_validate(data, context=context)
    except ValidationError as exc:
        errors += [_config_error(root, e) for e in exc.errors()]
    if errors:
        unique = {str(e): e for e in errors}
        raise ScenarioErrors(sorted(unique.values(), key=lambda e: e.line or 0))
    return _scenario(Path(path), root, model, fault_sets)


def _cluster_nodes(data: dict[str, Any]) -> tuple[list[str] | None, list[str]]:
    """The node names, validated first: every other key is checked against them (None: the
    cluster is invalid, its own errors are reported, node names go unchecked); and the
    nodes running OpenSSH, which some faults cannot act on."""
    try:
        cluster = ClusterModel.model_validate(data.get("cluster"))
    except ValidationError:
        return None, []
    return cluster.node_names, cluster.openssh_nodes


def _fault_sets(
    path: Path, root: Located, data: dict[str, Any], errors: list[ConfigError]
) -> dict[str, list[FaultBase]]:
    sets: dict[str, list[FaultBase]] = {}
    use = data.get("use", [])
    entries = [use] if isinstance(use, str) else use if isinstance(use, list) else []
    for i, entry in enumerate(entries):
        library = (path.parent / str(entry)).resolve()
        try:
            located = load_located(library)
            model = FaultLibrary.model_validate(located.plain(), context={"nodes": []})
        except ConfigError as exc:
            item = _walk(root, ("use", i))[0]
            message = f"cannot load fault library {entry}: {exc}"
            errors.append(ConfigError(message, file=str(path), line=item.line, key=f"use[{i}]"))
            continue
        except ValidationError as exc:
            errors += [_config_error(located, e) for e in exc.errors()]
            continue
        sets.update(model.sets)
    return sets


def _walk(root: Located, loc: tuple[int | str, ...]) -> tuple[Located, str]:
    """The deepest YAML value ``loc`` reaches and its key path (tags in ``loc`` skipped)."""
    item, key = root, ""
    for part in loc:
        value = item.value
        if isinstance(value, dict) and isinstance(part, str) and part in value:
            item, key = value[part], f"{key}.{part}" if key else part
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            item, key = value[part], f"{key}[{part}]"
    return item, key


def _config_error(root: Located, error: ErrorDetails) -> ConfigError:
    item, key = _walk(root, tuple(error["loc"]))
    return ConfigError(_message(error), file=item.file, line=item.line, key=key or None)


def _message(error: ErrorDetails) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "unknown_step":
        return _unknown_step(error["input"])
    if kind == "missing":
        return f"missing required key {loc[-1]!r}"
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}"
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", ""))
        return f"{error['input']!r} is not one of: {_listed(expected)}"
    if kind == "enum":
        expected = str(error.get("ctx", {}).get("expected", ""))
        return f"{error['input']!r} is not one of: {_listed(expected)}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping, got {_shown(error['input'])}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_shown(error['input'])}"
    if kind == "list_type":
        return f"expected a list, got {_shown(error['input'])}"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return (
            f"unknown {ctx.get('discriminator', 'kind')} {ctx.get('tag')!r} (known: "
            + str(ctx.get("expected_tags", "")).replace("'", "")
            + ")"
        )
    return error["msg"]


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "true or false",
    "float_type": "a number",
}


def _unknown_step(value: Any) -> str:
    known = ", ".join(STEP_KINDS)
    if not isinstance(value, dict):
        return f"a step is a mapping with one key, got {_shown(value)} (steps: {known})"
    keys = [str(k) for k in value]
    if len(keys) == 1:
        return f"unknown step {keys[0]!r} (steps: {known})"
    return f"a step has exactly one key, the step kind; found {', '.join(keys)} (steps: {known})"


def _listed(expected: str) -> str:
    """pydantic's "'a', 'b' or 'c'" as "a, b, c"."""
    return expected.replace(" or ", ", ").replace("'", "")


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return f"a mapping with keys {', '.join(map(str, value)) or 'none'}"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _scenario(
    path: Path, root: Located, model: ScenarioFile, fault_sets: dict[str, list[FaultBase]]
) -> Scenario:
    counter = iter(range(1, 1_000_000))

    def place(step: StepModel, item: Located) -> None:
        step.place(Where(item.file, item.line), next(counter))
        (kind,) = item.mapping()
        for sub, child in step.children():
            place(child, _walk(item.mapping()[kind], sub)[0])

    for i, step in enumerate(model.steps):
        place(step, _walk(root, ("steps", i))[0])
    for key, conditions in (("always", model.always), ("eventually", model.eventually)):
        for i, condition in enumerate(conditions):
            item = _walk(root, (key, i))[0]
            condition.place(Where(item.file, item.line))
    expect_item = _walk(root, ("expect",))[0]
    return Scenario(
        name=model.name,
        description=model.description,
        path=path,
        seed=model.seed,
        cluster=model.cluster,
        steps=tuple(model.steps),
        expect=model.expect,
        always=tuple(model.always),
        eventually=tuple(model.eventually),
        tags=tuple(model.tags),
        expect_where=Where(str(path), expect_item.line),
        fault_sets=fault_sets,
    )
