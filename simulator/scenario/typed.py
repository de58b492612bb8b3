"""The base of every scenario model: known keys only, frozen, and an unknown key's error
listing the known ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError


class ScenarioModel(BaseModel):
    """A YAML mapping with known keys only; an unknown key's error lists the known ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(data)
        except ValidationError as exc:
            if not any(e["type"] == "extra_forbidden" and len(e["loc"]) == 1 for e in exc.errors()):
                raise
            raise ValidationError.from_exception_data(cls.__name__, _with_known(cls, exc)) from None


def _with_known(cls: type[BaseModel], exc: ValidationError) -> list[InitErrorDetails]:
    known = ", ".join(f.alias or name for name, f in cls.model_fields.items())
    details: list[InitErrorDetails] = []
    for e in exc.errors():
        if e["type"] == "extra_forbidden" and len(e["loc"]) == 1:
            error = PydanticCustomError("unknown_key", f"unknown key (known: {known})")
        else:
            error = PydanticCustomError(e["type"], e["msg"])
        details.append(InitErrorDetails(type=error, loc=e["loc"], input=e["input"]))
    return details
