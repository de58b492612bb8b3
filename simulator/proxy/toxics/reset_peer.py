"""reset_peer: after the first data, waits `timeout` ms, then resets the connection (RST)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netfault.simulator.proxy.toxics.base import Chunk, LinkContext, Toxic, ToxicState
from netfault.simulator.proxy.trace import FaultAction


@dataclass(frozen=True, slots=True)
class ResetPeerAttributes:
    timeout: int = 0  # ms after the first data


class ResetPeerToxic(Toxic[ResetPeerAttributes]):
    type_name: ClassVar[str] = "reset_peer"
    go_name: ClassVar[str] = "ResetToxic"
    Attributes: ClassVar[type[ResetPeerAttributes]] = ResetPeerAttributes

    def stop(self, ctx: LinkContext, st: ToxicState) -> None:
        # Like Toxiproxy, a reset already under way is not interrupted by an update.
        if not st.triggered:
            st.cancel_timer()

    def removed(self, ctx: LinkContext, st: ToxicState) -> None:
        st.cancel_timer()

    def transform(self, chunk: Chunk, ctx: LinkContext, st: ToxicState) -> list[Chunk]:
        if not st.triggered:
            st.triggered = True
            when = max(chunk.t, ctx.now()) + self.attrs.timeout / 1000.0
            st.timer = ctx.call_at(when, lambda: self._fire(ctx, st))
            delay = self.attrs.timeout
            self.report(ctx, st, FaultAction.RESET_ARMED, st.offset, delay_ms=delay)
        return []

    def _fire(self, ctx: LinkContext, st: ToxicState) -> None:
        # The bytes seen by now depend on how fast the peer sent them: not a seeded figure.
        self.report(ctx, st, FaultAction.RESET, st.offset, exact=False)
        ctx.reset()
