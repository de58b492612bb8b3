"""The ``fault`` step: one named fault on a node, its parameters written inline.

The fault models are built from ``FAULT_KINDS`` (one model per kind, discriminated by
``kind``), so a parameter, its type and its allowed values are declared once, in
``simulator/cluster/faults.py``, and reach validation and the JSON Schema from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from netfault.simulator.cluster.controller import AppliedFault
from netfault.simulator.cluster.faults import (
    FAULT_KINDS,
    ROUTES,
    SERVICES,
    FaultParamError,
    Param,
    check_combination,
    check_connections,
    node_level,
    node_setting,
)
from netfault.simulator.node.sshd import scope_refusal
from netfault.simulator.scenario.fields import NodeName, Positive
from netfault.simulator.scenario.steps.base import StepContext, StepModel, fault_where
from netfault.simulator.scenario.trace import FaultKind
from netfault.simulator.scenario.typed import ScenarioModel

META = ("kind", "node", "route", "service", "name", "for_operations", "for_connections")
Percent = Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?\s*%\s*$", examples=["60%"])]


class FaultBase(ScenarioModel):
    """What every fault has besides its own parameters."""

    kind: str
    node: NodeName | None = None
    route: Literal[ROUTES] | None = None  # type: ignore[valid-type]
    service: Literal[SERVICES] | None = None  # type: ignore[valid-type]
    name: str | None = Field(default=None, alias="as", description="name for a later clear:")
    for_operations: Positive | None = Field(
        default=None, description="active for the next N operations, then cleared by itself"
    )
    for_connections: Positive | None = Field(
        default=None,
        description="active for the next N connections on each proxy (route and service) it "
        "covers, or for a node fault the node's next N SSH connections (HTTP agent faults: "
        "requests), then cleared by itself; not for down, flapping, http_down",
    )

    @model_validator(mode="after")
    def _not_narrowed_inside_the_node(self, info: ValidationInfo) -> FaultBase:
        try:
            check_combination(self.kind, self.params())
        except FaultParamError as exc:
            raise PydanticCustomError("fault_combination", str(exc)) from None
        if self.for_connections is not None:
            self._counts_connections()
            self._counted_on((info.context or {}).get("openssh") or [])
        narrowed = self.route or self.service
        if narrowed and node_level(self.kind, self.params()):
            raise PydanticCustomError(
                "narrowed_node_fault",
                f"fault {self.kind} acts inside the node; it cannot be narrowed to a route or "
                "service (drop route:/service:)",
            )
        return self

    def _counts_connections(self) -> None:
        try:
            check_connections(self.kind, self.params())
        except FaultParamError as exc:
            raise PydanticCustomError("for_connections", str(exc)) from None
        if self.relative():
            raise PydanticCustomError(
                "for_connections",
                "a fault sized per operation (N%) is applied anew for each operation; "
                "scope it with for_operations, not for_connections",
            )

    def _counted_on(self, openssh: list[str]) -> None:
        """An OpenSSH node counts only what it decides itself (sshd accepts connections)."""
        setting = node_setting(self.kind, self.params())
        problem = scope_refusal(setting[0], self.kind) if setting else None
        if self.node in openssh and problem is not None:
            raise PydanticCustomError("for_connections", f"{self.node}: {problem}")

    def params(self, size: int | None = None) -> dict[str, Any]:
        """The fault's parameters; percentages resolved against ``size`` bytes."""
        values = self.model_dump(exclude=set(META))
        for key, value in values.items():
            if isinstance(value, str) and value.strip().endswith("%"):
                percent = float(value.strip().rstrip("%"))
                values[key] = round((size or 0) * percent / 100)
        return values

    def relative(self) -> bool:
        """Whether a parameter is a percentage of the operation's size."""
        return any(
            isinstance(v, str) and v.strip().endswith("%") for v in self.model_dump().values()
        )

    def describe(self) -> str:
        where = "/".join(x for x in (self.node, self.route, self.service) if x)
        return f"{self.kind} {where}".strip()


def _param_type(param: Param) -> Any:
    kind = _value_type(param)
    return kind | None if param.default is None else kind


def _value_type(param: Param) -> Any:
    if param.choices:
        return Literal[param.choices]
    if param.kind is bool:
        return StrictBool
    if param.kind is int:
        return StrictInt | Percent if param.relative else StrictInt
    if param.kind is float:
        return Annotated[float, Field(strict=False)]
    return StrictStr


def _fault_model(kind: str) -> type[FaultBase]:
    spec = FAULT_KINDS[kind]
    fields: dict[str, Any] = {"kind": (Literal[kind], ...)}
    for name, param in spec.params.items():
        fields[name] = (_param_type(param), Field(default=param.default, description=param.help))
    model: type[FaultBase] = create_model(
        f"Fault_{kind}", __base__=FaultBase, __doc__=spec.help, **fields
    )
    return model


FAULT_MODELS = tuple(_fault_model(kind) for kind in FAULT_KINDS)
if TYPE_CHECKING:
    FaultSpec = FaultBase
else:
    FaultSpec = Annotated[Union[FAULT_MODELS], Field(discriminator="kind")]  # noqa: UP007


async def apply_fault(
    ctx: StepContext, fault: FaultBase, node: str, name: str, size: int | None = None
) -> AppliedFault:
    """Switch ``fault`` on for ``node``, remembered under ``name`` for ``clear:``."""
    applied: AppliedFault = await ctx.in_thread(
        ctx.world.cluster.faults.apply,
        fault.kind,
        node,
        route=fault.route,
        service=fault.service,
        for_connections=fault.for_connections,
        **fault.params(size),
    )
    ctx.named.setdefault(name, []).append(applied)
    if ctx.watch is not None:
        ctx.watch.watch(applied, name)
    kind = FaultKind.APPLIED if size is None else FaultKind.RESIZED
    where = fault_where(applied, name)
    ctx.record(
        kind,
        fault.kind,
        node,
        params=applied.params,
        for_connections=fault.for_connections,
        **where,
    )
    return applied


async def start_fault(ctx: StepContext, fault: FaultBase, node: str, name: str) -> str:
    """Apply ``fault`` now, or arm it when it is sized per operation; scope it if asked."""
    scope = Scope(fault, node, name, fault.for_operations)
    if fault.relative() or fault.for_operations:
        ctx.scoped.setdefault(name, []).append(scope)
    if fault.relative():
        return f"{fault.describe()} armed: {scope.describe()}"
    applied = await apply_fault(ctx, fault, node, name)
    scope.applied.append(applied)
    described: str = applied.describe()
    return f"{described} ({scope.describe()})" if fault.for_operations else described


@dataclass
class Scope:
    """A fault sized to each operation (``N%``) and/or living for N operations."""

    fault: FaultBase
    node: str
    name: str
    remaining: int | None
    size: int | None = None
    applied: list[AppliedFault] = field(default_factory=list)

    async def before(self, ctx: StepContext, size: int) -> None:
        if not self.fault.relative() or size == self.size:
            return
        await self._clear_own(ctx)
        self.applied.append(await apply_fault(ctx, self.fault, self.node, self.name, size))
        self.size = size

    async def after(self, ctx: StepContext, count: int) -> None:
        if self.remaining is None:
            return
        self.remaining -= count
        if self.remaining <= 0:
            ctx.record(
                FaultKind.EXPIRED,
                self.fault.kind,
                self.node,
                name=self.name,
                route=self.fault.route,
                service=self.fault.service,
            )
            await self._clear_own(ctx)
            scopes = ctx.scoped.get(self.name, [])
            if self in scopes:
                scopes.remove(self)
            if not scopes:
                ctx.scoped.pop(self.name, None)

    def forget(self, applied: AppliedFault) -> bool:
        if applied in self.applied:
            self.applied.remove(applied)
        return not self.applied and not self.fault.relative()

    async def _clear_own(self, ctx: StepContext) -> None:
        """Clear the faults this scope applied (not the others under the same name)."""
        named = ctx.named.get(self.name, [])
        for applied in self.applied:
            await ctx.in_thread(ctx.world.cluster.faults.clear, applied)
            ctx.record(
                FaultKind.CLEARED, applied.kind, applied.node, **fault_where(applied, self.name)
            )
            if applied in named:
                named.remove(applied)
        if not named:
            ctx.named.pop(self.name, None)
        self.applied = []

    def describe(self) -> str:
        parts = []
        if self.fault.relative():
            relative = {k: v for k, v in self.fault.model_dump().items() if str(v).endswith("%")}
            parts.append(", ".join(f"{k} {v} of each operation" for k, v in relative.items()))
        if self.remaining is not None:
            parts.append(f"for the next {self.remaining} operations")
        return "; ".join(parts)


class FaultStep(StepModel):
    """``fault: {kind, node, [route], [service], [as], ...its parameters}``."""

    key: ClassVar[str] = "fault"
    fault: FaultSpec

    @model_validator(mode="after")
    def _has_node(self) -> FaultStep:
        if self.fault.node is None:
            raise PydanticCustomError("missing_node", "missing required key 'node'")
        return self

    async def run(self, ctx: StepContext) -> str:
        fault = self.fault
        assert fault.node is not None
        return await start_fault(ctx, fault, fault.node, fault.name or fault.kind)

    def describe(self) -> str:
        return f"fault {self.fault.describe()}"
