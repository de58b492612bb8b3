"""timeout: drops all data and closes the connection `timeout` ms after the toxic starts.

0 holds the connection open forever. Removing the toxic closes the affected connections.
"""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.proxy.toxics.base import Chunk, LinkContext, Toxic, ToxicState


class TimeoutToxic(Toxic):
    type_name: ClassVar[str] = "timeout"
    go_name: ClassVar[str] = "TimeoutToxic"
    fields: ClassVar[dict[str, str]] = {"timeout": "int"}

    def start(self, ctx: LinkContext, st: ToxicState) -> None:
        st.cancel_timer()
        timeout = int(self.attrs["timeout"])
        if timeout > 0:
            st.timer = ctx.call_at(ctx.now() + timeout / 1000.0, ctx.close)

    def removed(self, ctx: LinkContext, st: ToxicState) -> None:
        ctx.close()

    def transform(self, chunk: Chunk, ctx: LinkContext, st: ToxicState) -> list[Chunk]:
        return []
