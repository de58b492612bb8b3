"""reset_peer: after the first data, waits `timeout` ms, then resets the connection (RST)."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.proxy.toxics.base import Chunk, LinkContext, Toxic, ToxicState


class ResetPeerToxic(Toxic):
    type_name: ClassVar[str] = "reset_peer"
    go_name: ClassVar[str] = "ResetToxic"
    fields: ClassVar[dict[str, str]] = {"timeout": "int"}

    def stop(self, ctx: LinkContext, st: ToxicState) -> None:
        # Like Toxiproxy, a reset already under way is not interrupted by an update.
        if not st.triggered:
            st.cancel_timer()

    def removed(self, ctx: LinkContext, st: ToxicState) -> None:
        st.cancel_timer()

    def transform(self, chunk: Chunk, ctx: LinkContext, st: ToxicState) -> list[Chunk]:
        if not st.triggered:
            st.triggered = True
            when = max(chunk.t, ctx.now()) + int(self.attrs["timeout"]) / 1000.0
            st.timer = ctx.call_at(when, ctx.reset)
        return []
