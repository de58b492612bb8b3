"""Request bodies decoded the way Toxiproxy's Go decoder does, with its error texts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from netfault.simulator.proxy import errors
from netfault.simulator.proxy.spec import ToxicSpec
from netfault.simulator.proxy.toxics import REGISTRY
from netfault.simulator.proxy.toxics.base import json_kind

_GO = {str: "string", bool: "bool", float: "float32", int: "int"}


@dataclass(slots=True)
class ProxyConfig:
    """One proxy as POST /proxies or /populate describes it."""

    name: str
    upstream: str
    listen: str = ""
    enabled: bool = True
    toxics: list[ToxicSpec] = field(default_factory=list)


def decode(body: bytes) -> Any:
    """The first JSON value in `body`; trailing bytes are ignored as Go's Decoder does."""
    text = body.decode("utf-8", errors="replace").lstrip()
    if not text:
        raise errors.bad_request_body("EOF")
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            raise errors.bad_request_body("unexpected EOF") from exc
        char = text[exc.pos]
        detail = f"invalid character {char!r} looking for beginning of value"
        raise errors.bad_request_body(detail) from exc
    return value


def _get(obj: dict[str, Any], key: str, kind: type, struct: str) -> Any:
    """obj[key] (matched case-insensitively, as Go does) checked against `kind`; None if absent."""
    value = obj.get(key)
    if value is None:
        for other, candidate in obj.items():
            if other.lower() == key:
                value = candidate
    if value is None:
        return None
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok:
        raise errors.bad_request_body(
            f"json: cannot unmarshal {json_kind(value)} into Go struct field "
            f"{struct}.{key} of type {_GO[kind]}"
        )
    return value


def _object(value: Any, go_type: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.bad_request_body(
            f"json: cannot unmarshal {json_kind(value)} into Go value of type {go_type}"
        )
    return value


def proxy_fields(value: Any) -> dict[str, Any]:
    """name/listen/upstream/enabled present in a proxy object, type-checked."""
    obj = _object(value, "toxiproxy.Proxy")
    out: dict[str, Any] = {}
    for key, kind in (("name", str), ("listen", str), ("upstream", str), ("enabled", bool)):
        got = _get(obj, key, kind, "Proxy")
        if got is not None:
            out[key] = got
    return out


def proxy_create(value: Any, where: str = "") -> ProxyConfig:
    """POST /proxies body (also one /populate entry; `where` is ` at proxy N`)."""
    fields = proxy_fields(value)
    if not fields.get("name"):
        raise errors.missing_field(f"name{where}")
    if not fields.get("upstream"):
        raise errors.missing_field(f"upstream{where}")
    config = ProxyConfig(
        name=fields["name"],
        upstream=fields["upstream"],
        listen=fields.get("listen", ""),
        enabled=fields.get("enabled", True),
    )
    raw_toxics = value.get("toxics")
    if raw_toxics is not None:
        if not isinstance(raw_toxics, list):
            raise errors.bad_request_body(f"toxics must be an array{where}")
        for raw in raw_toxics:
            try:
                spec = toxic_create(raw, config.toxics)
            except errors.ApiError as exc:
                raise errors.ApiError(f"{exc.message}{where}", exc.status) from exc
            config.toxics.append(spec)
    return config


def populate(value: Any) -> list[ProxyConfig]:
    """A /populate body: every entry checked before anything is created."""
    if not isinstance(value, list):
        raise errors.bad_request_body(
            f"json: cannot unmarshal {json_kind(value)} into Go value of type "
            "[]struct { toxiproxy.Proxy; Enabled *bool }"
        )
    return [proxy_create(entry, f" at proxy {i}") for i, entry in enumerate(value, 1)]


def toxic_create(value: Any, existing: list[ToxicSpec]) -> ToxicSpec:
    """POST /proxies/{p}/toxics body, checked in Toxiproxy's order."""
    obj = _object(value, "toxics.ToxicWrapper")
    name = _get(obj, "name", str, "ToxicWrapper") or ""
    type_name = _get(obj, "type", str, "ToxicWrapper") or ""
    stream = _get(obj, "stream", str, "ToxicWrapper")
    stream = "downstream" if stream is None else stream
    toxicity = _get(obj, "toxicity", float, "ToxicWrapper")
    connections = _get(obj, "connections", int, "ToxicWrapper")
    if connections is not None and connections < 1:
        raise errors.bad_request_body(f"connections must be at least 1, not {connections}")
    if stream.lower() not in ("upstream", "downstream"):
        raise errors.invalid_stream()
    name = name or f"{type_name}_{stream}"
    cls = REGISTRY.get(type_name)
    if cls is None:
        raise errors.invalid_toxic_type()
    if any(spec.name == name for spec in existing):
        raise errors.toxic_already_exists()
    try:
        attributes = cls.check(_attributes(obj))
    except ValueError as exc:
        raise errors.bad_request_body(str(exc)) from exc
    return ToxicSpec(
        name=name,
        type=type_name,
        stream=stream,
        toxicity=1.0 if toxicity is None else float(toxicity),
        toxic=cls.from_json(attributes),
        connections=connections,
    )


def toxic_update(value: Any, spec: ToxicSpec) -> tuple[dict[str, Any], float | None]:
    """POST/PATCH /proxies/{p}/toxics/{t} body: (attribute patch, toxicity or None)."""
    obj = _object(value, "struct { Attributes interface {}; Toxicity float32 }")
    toxicity = _get(obj, "toxicity", float, "Toxicity")
    try:
        patch = type(spec.toxic).check(_attributes(obj))
    except ValueError as exc:
        raise errors.bad_request_body(str(exc)) from exc
    return patch, None if toxicity is None else float(toxicity)


def _attributes(obj: dict[str, Any]) -> Any:
    for key, value in obj.items():
        if key.lower() == "attributes":
            return value
    return None


def make_toxic(
    type: str,
    *,
    name: str | None = None,
    stream: str = "downstream",
    toxicity: float = 1.0,
    attributes: dict[str, Any] | None = None,
) -> ToxicSpec:
    """A toxic built from Python values, checked exactly as the API checks it."""
    body: dict[str, Any] = {"type": type, "stream": stream, "toxicity": toxicity}
    if name is not None:
        body["name"] = name
    body["attributes"] = attributes or {}
    return toxic_create(body, [])
