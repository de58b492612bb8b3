"""limit_data: passes exactly `bytes` bytes, then closes; the count survives updates."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.proxy.toxics.base import Chunk, Kind, LinkContext, Toxic, ToxicState


class LimitDataToxic(Toxic):
    type_name: ClassVar[str] = "limit_data"
    go_name: ClassVar[str] = "LimitDataToxic"
    fields: ClassVar[dict[str, str]] = {"bytes": "int"}

    def transform(self, chunk: Chunk, ctx: LinkContext, st: ToxicState) -> list[Chunk]:
        if st.triggered:
            return []
        limit = int(self.attrs["bytes"])
        data = chunk.data[: max(0, limit - st.count)]
        out: list[Chunk] = []
        if data:
            st.count += len(data)
            out.append(Chunk(data, chunk.t))
        if limit - st.count <= 0:
            st.triggered = True
            out.append(Chunk(b"", chunk.t, Kind.CLOSE))
        return out
