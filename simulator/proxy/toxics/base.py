"""What every toxic shares: typed attributes, per-connection state and the link it acts on.

A toxic never sleeps. It stamps each chunk with the loop time at which the chunk may leave
(`Chunk.t`); the link writes chunks in order once their time has come. Timers (timeout,
reset_peer) are scheduled through the link context, so no toxic owns a task.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, TypeVar

from netfault.simulator.proxy.trace import FaultAction, FaultEvent, FaultTrace

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class Kind(enum.Enum):
    DATA = "data"
    EOF = "eof"
    CLOSE = "close"
    RESET = "reset"  # the connection is reset (RST) once the bytes before it are written


@dataclass(slots=True)
class Chunk:
    """Bytes (or an end marker) moving through a link, with the loop time it may leave at."""

    data: bytes
    t: float
    kind: Kind = Kind.DATA


class Timer(Protocol):
    """A scheduled callback (an asyncio.TimerHandle on a real link)."""

    def cancel(self) -> None: ...


class LinkContext(Protocol):
    """The side of a link a toxic may use."""

    seed: int
    proxy: str
    conn: int
    direction: str

    def now(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer: ...

    def close(self) -> None: ...

    def reset(self) -> None: ...

    def refuse(self) -> None: ...


@dataclass(slots=True)
class ToxicState:
    """Per connection and direction; lives from the toxic's addition to its removal."""

    name: str = ""  # the toxic's name, part of every random key
    offset: int = 0  # bytes this toxic has seen on this link
    count: int = 0
    free_at: float = 0.0
    triggered: bool = False
    timer: Timer | None = None
    trace: FaultTrace | None = None  # where this toxic's decisions are reported
    # False once the toxic joined or changed on a connection already carrying bytes: its
    # offsets then count from an instant that depends on timing.
    offsets_exact: bool = True

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


A = TypeVar("A", bound="DataclassInstance")

_GO_TYPES = {"int": "int64", "float": "float64", "bool": "bool", "map": "map[string]int"}


def json_kind(value: object) -> str:
    """The JSON type name Go's decoder uses in its error messages."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


@dataclass(frozen=True, slots=True)
class NoAttributes:
    """A toxic without attributes (noop)."""


class Toxic(Generic[A]):
    """A toxic type: a typed attribute dataclass plus how it changes a link's chunks.

    `Attributes` is a frozen dataclass whose fields are Toxiproxy's JSON attribute names, in
    its JSON order, each an int, float, bool or dict[str, int] defaulting to zero.
    """

    type_name: ClassVar[str] = ""
    go_name: ClassVar[str] = "Toxic"
    Attributes: ClassVar[type[Any]] = NoAttributes

    def __init__(self, attrs: A) -> None:
        self.attrs = attrs

    @classmethod
    def fields(cls) -> dict[str, str]:
        """Attribute name -> "int" | "float" | "bool" | "map", read from the dataclass."""
        return {f.name: _kind(f) for f in dataclasses.fields(cls.Attributes)}

    @classmethod
    def from_json(cls, attributes: Mapping[str, Any]) -> Self:
        """A toxic from attributes already checked by `check` (missing ones are zero)."""
        names = cls.fields()
        return cls(cls.Attributes(**{k: v for k, v in attributes.items() if k in names}))

    @classmethod
    def check(cls, raw: object) -> dict[str, Any]:
        """Validate a JSON `attributes` value; raise ValueError with Go's message if bad."""
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise ValueError(
                f"json: cannot unmarshal {json_kind(raw)} into Go struct field "
                f".attributes of type toxics.{cls.go_name}"
            )
        lowered = {k.lower(): v for k, v in raw.items()}
        out: dict[str, Any] = {}
        for name, kind in cls.fields().items():
            if name not in lowered or lowered[name] is None:
                continue
            value = lowered[name]
            if not _fits(value, kind):
                raise ValueError(
                    f"json: cannot unmarshal {json_kind(value)} into Go struct field "
                    f"{cls.go_name}.attributes.{name} of type {_GO_TYPES[kind]}"
                )
            out[name] = _normalise(value, kind)
        return out

    def merged(self, patch: Mapping[str, Any]) -> Self:
        """A toxic of the same type with `patch` (checked by `check`) laid over these."""
        return type(self)(dataclasses.replace(self.attrs, **patch))

    def attributes(self) -> dict[str, Any]:
        """The attributes as the API shows them."""
        return {f.name: getattr(self.attrs, f.name) for f in dataclasses.fields(self.attrs)}

    def passes_through(self) -> bool:
        """True if this toxic leaves every chunk and the end of stream as they are, due at
        once (so a link whose active toxics all pass through may skip the chain)."""
        return False

    def start(self, ctx: LinkContext, st: ToxicState) -> None:
        """Called when this toxic (re)starts on a link: connect, add or update."""

    def stop(self, ctx: LinkContext, st: ToxicState) -> None:
        """Called before a restart or removal; cancels the toxic's timer."""
        st.cancel_timer()

    def removed(self, ctx: LinkContext, st: ToxicState) -> None:
        """Called when the toxic is removed while the link is open."""

    def transform(self, chunk: Chunk, ctx: LinkContext, st: ToxicState) -> list[Chunk]:
        return [chunk]

    @staticmethod
    def tracing(st: ToxicState) -> bool:
        """True if someone listens for this toxic's fault events (one flag, checked first)."""
        return st.trace is not None and st.trace.active

    def report(
        self,
        ctx: LinkContext,
        st: ToxicState,
        action: FaultAction,
        offset: int,
        *,
        exact: bool = True,
        delay_ms: int | None = None,
    ) -> None:
        """Record a decision on this link, if anyone listens."""
        trace = st.trace
        if trace is not None and trace.active:
            trace.emit(self.event(ctx, st, action, offset, exact=exact, delay_ms=delay_ms))

    def event(
        self,
        ctx: LinkContext,
        st: ToxicState,
        action: FaultAction,
        offset: int,
        *,
        exact: bool = True,
        bit: int | None = None,
        value: int | None = None,
        mode: str | None = None,
        delay_ms: int | None = None,
    ) -> FaultEvent:
        """A decision of this toxic on this link, now."""
        return FaultEvent(
            action=action,
            proxy=ctx.proxy,
            toxic=st.name,
            toxic_type=self.type_name,
            direction=ctx.direction,
            connection=ctx.conn,
            offset=offset,
            offset_exact=exact and st.offsets_exact,
            time=ctx.now(),
            bit=bit,
            value=value,
            mode=mode,
            delay_ms=delay_ms,
        )

    def eof_time(self, t: float, ctx: LinkContext, st: ToxicState) -> float:
        """The time the end of stream may leave this toxic."""
        return t


def _kind(f: dataclasses.Field[Any]) -> str:
    default = f.default
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    return "map"  # dict[str, int], from a default_factory


def _fits(value: object, kind: str) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if not isinstance(value, dict):
        return False
    for key, byte in value.items():
        if not str(key).lstrip("-").isdigit():
            return False
        if not isinstance(byte, int) or isinstance(byte, bool) or not 0 <= byte <= 255:
            return False
    return True


def _normalise(value: Any, kind: str) -> Any:
    if kind == "float":
        return float(value)
    if kind == "map":
        return {str(int(k)): int(v) for k, v in value.items()}
    return value
