"""YAML loading that remembers where every value came from, for errors that name file:line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from netfault.engine.errors import ConfigError


@dataclass
class Located:
    """A YAML value with its source position; mappings and lists hold Located children."""

    value: Any
    line: int
    file: str

    def error(self, message: str, key: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.file, line=self.line, key=key)

    def mapping(self, key: str | None = None) -> dict[str, Located]:
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {_kind(self.value)}", key)
        return self.value

    def sequence(self, key: str | None = None) -> list[Located]:
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, got {_kind(self.value)}", key)
        return self.value

    def plain(self) -> Any:
        """The value with positions stripped."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _convert(node: yaml.Node, file: str, loader: yaml.SafeLoader) -> Located:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Located] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                raise ConfigError(
                    "duplicate key", file=file, line=key_node.start_mark.line + 1, key=key
                )
            out[key] = _convert(value_node, file, loader)
        return Located(out, line, file)
    if isinstance(node, yaml.SequenceNode):
        return Located([_convert(child, file, loader) for child in node.value], line, file)
    return Located(loader.construct_object(node, deep=True), line, file)


def load_located(source: str | Path, text: str | None = None) -> Located:
    """Parse a YAML file (or ``text`` named ``source``) into Located values."""
    name = str(source)
    if text is None:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", file=name) from exc
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return Located({}, 1, name)
        return _convert(root, name, loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"invalid YAML: {exc.problem}", file=name, line=line) from exc
    finally:
        loader.dispose()
