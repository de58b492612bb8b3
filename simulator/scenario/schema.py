"""Small validators over Located YAML: each returns a plain value or raises file:line: key.

While a file loads under ``collecting()``, a mapping or a list records the error of each bad
entry and goes on with the next one, then raises ``Reported`` (already recorded) so that its
parent skips it too: one run reports every mistake of a file, each with its own file:line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from netfault.engine.errors import ConfigError
from netfault.engine.yamlsrc import Located
from netfault.simulator.scenario.units import parse_duration, parse_size

Validator = Callable[[Located, str], Any]
T = TypeVar("T")

_SINK: ContextVar[list[ConfigError] | None] = ContextVar("scenario_errors", default=None)


class Reported(ConfigError):
    """Raised by a container whose entries' errors are already recorded."""

    def __init__(self) -> None:
        super().__init__("see the errors recorded before this one")


class ScenarioErrors(ConfigError):
    """Every error found in one file, in line order, one per line of the message."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors
        self.file = errors[0].file
        self.line = errors[0].line
        self.key = errors[0].key


def record(exc: ConfigError) -> None:
    """Keep ``exc`` for the file's report; outside ``collecting()`` raise it at once."""
    sink = _SINK.get()
    if sink is None:
        raise exc
    if not isinstance(exc, Reported):
        sink.append(exc)


def attempt(call: Callable[[], T]) -> T | None:
    """``call()``, or None once its error is recorded."""
    try:
        return call()
    except ConfigError as exc:
        record(exc)
        return None


@contextmanager
def collecting() -> Iterator[None]:
    """Collect the errors recorded inside; raise them all together on leaving."""
    sink: list[ConfigError] = []
    token = _SINK.set(sink)
    try:
        yield
    except Reported:
        pass
    finally:
        _SINK.reset(token)
    if sink:
        unique = {str(e): e for e in sink}  # in the order found, one per message
        raise ScenarioErrors(sorted(unique.values(), key=lambda e: e.line or 0))


def fail(item: Located, key: str, message: str) -> ConfigError:
    return item.error(message, key)


def shown(item: Located) -> str:
    """A value as a user wrote it, for messages (never the Located wrapper)."""
    value = item.plain()
    if isinstance(value, dict):
        return f"a mapping with keys {', '.join(map(str, value)) or 'none'}"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def v_str(choices: Iterable[str] | None = None) -> Validator:
    allowed = tuple(choices) if choices is not None else None

    def check(item: Located, key: str) -> str:
        if not isinstance(item.value, str) or not item.value:
            raise fail(item, key, f"expected a string, got {shown(item)}")
        if allowed is not None and item.value not in allowed:
            raise fail(item, key, f"{item.value!r} is not one of: {', '.join(allowed)}")
        return item.value

    return check


def v_int(minimum: int = 0) -> Validator:
    def check(item: Located, key: str) -> int:
        value = item.value
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise fail(item, key, f"expected an integer >= {minimum}, got {shown(item)}")
        return value

    return check


def v_number(item: Located, key: str) -> float:
    value = item.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(item, key, f"expected a number, got {shown(item)}")
    return float(value)


def v_bool(item: Located, key: str) -> bool:
    if not isinstance(item.value, bool):
        raise fail(item, key, f"expected true or false, got {shown(item)}")
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
        out, failed = [], False
        for i, child in enumerate(item.sequence(key)):
            try:
                out.append(inner(child, f"{key}[{i}]"))
            except ConfigError as exc:
                record(exc)
                failed = True
        if failed:
            raise Reported()
        return out

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
        failed = False
        for name, child in entries.items():
            where = f"{key}.{name}" if key else name
            validator = fields.get(name, extra)
            try:
                if validator is None:
                    known = ", ".join(fields) or "none"
                    raise fail(child, where, f"unknown key (known: {known})")
                out[name] = validator(child, where)
            except ConfigError as exc:
                record(exc)
                failed = True
        for name in needed:
            if name not in entries:
                record(fail(item, key, f"missing required key '{name}'"))
                failed = True
        if failed:
            raise Reported()
        return out

    return check


def one_key(item: Located, key: str, choices: dict[str, Validator]) -> tuple[str, Any, Located]:
    """A mapping with exactly one key out of ``choices`` (a step or a condition)."""
    entries = item.mapping(key)
    picked = [k for k in entries if k in choices]
    unknown = [k for k in entries if k not in choices]
    for name in unknown:
        record(
            fail(
                entries[name],
                f"{key}.{name}" if key else name,
                f"unknown key (expected one of: {', '.join(choices)})",
            )
        )
    if unknown:
        raise Reported()
    if len(picked) != 1:
        raise fail(item, key, f"expected exactly one of: {', '.join(choices)}")
    name = picked[0]
    where = f"{key}.{name}" if key else name
    return name, choices[name](entries[name], where), entries[name]
