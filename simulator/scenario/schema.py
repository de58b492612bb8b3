"""Small validators over Located YAML: each returns a plain value or raises file:line: key."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from netfault.engine.errors import ConfigError
from netfault.engine.yamlsrc import Located
from netfault.simulator.scenario.units import parse_duration, parse_size

Validator = Callable[[Located, str], Any]


def fail(item: Located, key: str, message: str) -> ConfigError:
    return item.error(message, key)


def v_str(choices: Iterable[str] | None = None) -> Validator:
    allowed = tuple(choices) if choices is not None else None

    def check(item: Located, key: str) -> str:
        if not isinstance(item.value, str) or not item.value:
            raise fail(item, key, f"expected a string, got {item.value!r}")
        if allowed is not None and item.value not in allowed:
            raise fail(item, key, f"{item.value!r} is not one of: {', '.join(allowed)}")
        return item.value

    return check


def v_int(minimum: int = 0) -> Validator:
    def check(item: Located, key: str) -> int:
        value = item.value
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise fail(item, key, f"expected an integer >= {minimum}, got {value!r}")
        return value

    return check


def v_number(item: Located, key: str) -> float:
    value = item.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(item, key, f"expected a number, got {value!r}")
    return float(value)


def v_bool(item: Located, key: str) -> bool:
    if not isinstance(item.value, bool):
        raise fail(item, key, f"expected true or false, got {item.value!r}")
    return item.value


def v_duration(item: Located, key: str) -> float:
    try:
        return parse_duration(item.value)
    except ValueError as exc:
        raise fail(item, key, str(exc)) from None


def v_size(item: Located, key: str) -> int:
    try:
        return parse_size(item.value)
    except ValueError as exc:
        raise fail(item, key, str(exc)) from None


def v_any(item: Located, key: str) -> Any:
    return item.plain()


def v_optional(inner: Validator) -> Validator:
    def check(item: Located, key: str) -> Any:
        return None if item.value is None else inner(item, key)

    return check


def v_list(inner: Validator) -> Validator:
    def check(item: Located, key: str) -> list[Any]:
        return [inner(child, f"{key}[{i}]") for i, child in enumerate(item.sequence(key))]

    return check


def v_str_or_list(inner: Validator) -> Validator:
    def check(item: Located, key: str) -> list[Any]:
        if isinstance(item.value, list):
            items: list[Any] = v_list(inner)(item, key)
            return items
        return [inner(item, key)]

    return check


def v_map(
    fields: dict[str, Validator],
    required: Iterable[str] = (),
    extra: Validator | None = None,
) -> Validator:
    """A mapping with known keys (``extra`` validates any other key's value, if allowed)."""
    needed = tuple(required)

    def check(item: Located, key: str) -> dict[str, Any]:
        entries = item.mapping(key)
        out: dict[str, Any] = {}
        for name, child in entries.items():
            where = f"{key}.{name}" if key else name
            validator = fields.get(name, extra)
            if validator is None:
                known = ", ".join(fields) or "none"
                raise fail(child, where, f"unknown key (known: {known})")
            out[name] = validator(child, where)
        for name in needed:
            if name not in entries:
                raise fail(item, key, f"missing required key '{name}'")
        return out

    return check


def one_key(item: Located, key: str, choices: dict[str, Validator]) -> tuple[str, Any, Located]:
    """A mapping with exactly one key out of ``choices`` (a step or a condition)."""
    entries = item.mapping(key)
    picked = [k for k in entries if k in choices]
    unknown = [k for k in entries if k not in choices]
    if unknown:
        child = entries[unknown[0]]
        raise fail(
            child,
            f"{key}.{unknown[0]}" if key else unknown[0],
            f"unknown key (expected one of: {', '.join(choices)})",
        )
    if len(picked) != 1:
        raise fail(item, key, f"expected exactly one of: {', '.join(choices)}")
    name = picked[0]
    where = f"{key}.{name}" if key else name
    return name, choices[name](entries[name], where), entries[name]
