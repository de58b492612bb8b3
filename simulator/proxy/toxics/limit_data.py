"""limit_data: passes exactly `bytes` bytes, then closes; the count survives updates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netfault.simulator.proxy.toxics.base import Chunk, Kind, LinkContext, Toxic, ToxicState
from netfault.simulator.proxy.trace import FaultAction


@dataclass(frozen=True, slots=True)
class LimitDataAttributes:
    bytes: int = 0


class LimitDataToxic(Toxic[LimitDataAttributes]):
    type_name: ClassVar[str] = "limit_data"
    go_name: ClassVar[str] = "LimitDataToxic"
    Attributes: ClassVar[type[LimitDataAttributes]] = LimitDataAttributes

    def transform(self, chunk: Chunk, ctx: LinkContext, st: ToxicState) -> list[Chunk]:
        if st.triggered:
            return []
        limit = self.attrs.bytes
        data = chunk.data[: max(0, limit - st.count)]
        out: list[Chunk] = []
        if data:
            st.count += len(data)
            out.append(Chunk(data, chunk.t))
        if limit - st.count <= 0:
            st.triggered = True
            # Past the limit only if an update lowered it while bytes flowed: timing-dependent.
            exact = st.count == limit
            self.report(ctx, st, FaultAction.LIMIT_REACHED, st.count, exact=exact)
            out.append(Chunk(b"", chunk.t, Kind.CLOSE))
        return out
