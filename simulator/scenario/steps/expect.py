"""A step's ``expect:`` over an operation's result, and the pieces operations share."""

from __future__ import annotations

import random
from typing import Any

from pydantic import Field, field_validator

from netfault.engine import CANCELLED_KIND, Attempt, HttpResult, TransferResult
from netfault.simulator.scenario.fields import (
    OFF,
    AttemptName,
    Count,
    Duration,
    ErrorKind,
    Flag,
    RaceDelay,
    RouteName,
    Transport,
)
from netfault.simulator.scenario.presets import CONFIG_FIELDS, Overrides
from netfault.simulator.scenario.steps.base import StepFailed
from netfault.simulator.scenario.typed import ScenarioModel


class Timeouts(ScenarioModel):
    """``config:`` of a cluster or a step: the timeouts that differ from the preset."""

    connect_timeout: Duration | None = None
    operation_timeout: Duration | None = None
    http_timeout: Duration | None = None
    integrity_retries: Count | None = None
    race_delay: RaceDelay | None = None

    @field_validator("race_delay", mode="before")
    @classmethod
    def _null_is_off(cls, value: object) -> object:
        return OFF if value is None else value  # ``race_delay:`` with no value: no racing

    def overrides(self) -> Overrides:
        """The fields set, as TransportConfig values (``race_delay: off`` is None)."""
        values = self.model_dump(exclude_none=True, include=set(CONFIG_FIELDS))
        return {k: None if v == OFF else float(v) for k, v in values.items()}


class AttemptExpect(ScenarioModel):
    """One attempt of an operation; omitted keys are not checked."""

    transport: AttemptName | None = None
    success: Flag | None = None
    error_kind: ErrorKind | None = None
    bytes: Count | None = Field(default=None, description="bytes the attempt moved")
    resumed: Flag | None = Field(
        default=None, description="it carried on from a partial an earlier attempt left"
    )
    resumed_from: Count | None = Field(
        default=None, description="the offset it carried on from (0: it started from scratch)"
    )

    def mismatch(self, attempt: Attempt) -> str | None:
        wanted = self.model_dump(include=self.model_fields_set)
        wrong = {k: v for k, v in wanted.items() if getattr(attempt, k) != v}
        if not wrong:
            return None
        return ", ".join(
            f"{k} expected {v!r}, seen {getattr(attempt, k)!r}" for k, v in wrong.items()
        )


def attempts_mismatch(expected: list[AttemptExpect], attempts: list[Attempt]) -> str | None:
    if len(expected) != len(attempts):
        return f"attempts: expected {len(expected)}, seen {len(attempts)}"
    for i, (want, seen) in enumerate(zip(expected, attempts, strict=True)):
        wrong = want.mismatch(seen)
        if wrong:
            return f"attempts[{i}] ({seen.transport}): {wrong}"
    return None


class OperationExpect(ScenarioModel):
    """What an operation must have done; omitted keys are not checked."""

    success: Flag | None = None
    transport_used: Transport | None = None
    tried: list[Transport] | None = None
    failed: list[Transport] | None = None
    error_kind: ErrorKind | None = None
    attempts: Count | list[AttemptExpect] | None = Field(
        default=None, description="how many attempts, or each attempt in order"
    )
    status: Count | None = None
    route: RouteName | None = None
    content_equal: Flag = Field(
        default=True, description="compare the bytes on the far side after a success"
    )

    def check(self, result: TransferResult | HttpResult) -> None:
        keys = self.model_fields_set - {"content_equal"}
        per_attempt = None
        if isinstance(self.attempts, list):
            keys -= {"attempts"}
            per_attempt = attempts_mismatch(self.attempts, result.attempts)
        check_operation(result, self.model_dump(include=keys), per_attempt)


class HttpExpect(OperationExpect):
    """As for files, but an HTTP request's attempts are named ``http:ROUTE``."""

    transport_used: RouteName | None = None
    tried: list[AttemptName] | None = None
    failed: list[AttemptName] | None = None


def payload(seed: int, node: str, path: str, size: int) -> bytes:
    """The deterministic content a scenario moves for (seed, node, path)."""
    return random.Random(f"{seed}:{node}:{path}").randbytes(size)


def summarize(result: TransferResult | HttpResult) -> str:
    tried = " -> ".join(
        a.transport + ("" if a.success else f"({a.error_kind})") for a in result.attempts
    )
    if result.success:
        return f"{result.transport_used} won [{tried}]"
    return f"failed ({result.error_kind}) [{tried or 'no attempt'}]"


def check_operation(
    result: TransferResult | HttpResult, expect: dict[str, Any], extra: str | None = None
) -> None:
    """Compare an operation's result with the expected values, all problems at once."""
    seen: dict[str, Any] = {
        "success": result.success,
        "transport_used": result.transport_used,
        "route": result.transport_used,
        "tried": [a.transport for a in result.attempts],
        "failed": [  # a connection that lost a race was cancelled, not failed
            a.transport for a in result.attempts if not a.success and a.error_kind != CANCELLED_KIND
        ],
        "error_kind": result.error_kind,
        "attempts": len(result.attempts),
        "status": getattr(result, "status", None),
    }
    problems = [f"{k}: expected {v!r}, seen {seen[k]!r}" for k, v in expect.items() if seen[k] != v]
    problems += [extra] if extra else []
    if problems:
        raise StepFailed("; ".join(problems) + f" [{summarize(result)}; error: {result.error}]")
