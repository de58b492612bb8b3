"""timeout: drops all data and closes the connection `timeout` ms after the toxic starts.

0 holds the connection open forever. Removing the toxic closes the affected connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netfault.simulator.proxy.toxics.base import Chunk, LinkContext, Toxic, ToxicState
from netfault.simulator.proxy.trace import FaultAction


@dataclass(frozen=True, slots=True)
class TimeoutAttributes:
    timeout: int = 0  # ms; 0 never closes


class TimeoutToxic(Toxic[TimeoutAttributes]):
    type_name: ClassVar[str] = "timeout"
    go_name: ClassVar[str] = "TimeoutToxic"
    Attributes: ClassVar[type[TimeoutAttributes]] = TimeoutAttributes

    def start(self, ctx: LinkContext, st: ToxicState) -> None:
        st.cancel_timer()
        timeout = self.attrs.timeout
        if timeout > 0:
            st.timer = ctx.call_at(ctx.now() + timeout / 1000.0, lambda: self._close(ctx, st))
        # Armed on connect, add or update: when, relative to the data, depends on timing.
        self.report(ctx, st, FaultAction.TIMEOUT_ARMED, st.offset, exact=False, delay_ms=timeout)

    def removed(self, ctx: LinkContext, st: ToxicState) -> None:
        self._close(ctx, st)

    def transform(self, chunk: Chunk, ctx: LinkContext, st: ToxicState) -> list[Chunk]:
        return []

    def _close(self, ctx: LinkContext, st: ToxicState) -> None:
        # The bytes dropped by now depend on how fast the peer sent them.
        self.report(ctx, st, FaultAction.TIMEOUT_CLOSED, st.offset, exact=False)
        ctx.close()
