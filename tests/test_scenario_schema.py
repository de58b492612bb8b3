"""The committed JSON Schema is the models' schema, and every library file satisfies it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from netfault.simulator.cli import main
from netfault.simulator.scenario.scenario_file import json_schema

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "scenarios" / "scenario.schema.json"


def test_committed_schema_is_current() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == json_schema(), (
        "regenerate it: netfault schema -o scenarios/scenario.schema.json"
    )


def test_schema_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json_schema())


@pytest.mark.parametrize(
    "path", [pytest.param(p, id=p.stem) for p in sorted((ROOT / "scenarios").glob("*.yaml"))]
)
def test_every_library_scenario_satisfies_the_schema(path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(yaml.safe_load(path.read_text()), json.loads(json_schema()))


def test_schema_rejects_a_typo_an_editor_should_flag() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    text = (ROOT / "scenarios" / "reset-mid-transfer-falls-back-to-base64.yaml").read_text()
    bad = yaml.safe_load(text.replace("transport_used: base64", "transport_used: base46"))
    with pytest.raises(jsonschema.ValidationError, match="base46"):
        jsonschema.validate(bad, json.loads(json_schema()))
