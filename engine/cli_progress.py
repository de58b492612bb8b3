"""What ``netfault push``/``pull`` shows while a transfer runs.

On a terminal: a bar naming the transport in use, with bytes, speed, time spent and an ETA, then
"verifying" while the sha256 is checked; each failed attempt is printed once, as it happens,
with the transport tried next. Without a terminal (a log, CI): one line per attempt.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from netfault.engine.events import Event, EventType

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


class TransferDisplay:
    """Subscribe ``on_event`` to the transport's events and pass ``progress`` to the transfer."""

    def __init__(self, console: Console, direction: str, node: str) -> None:
        self.console = console
        self.label = f"{direction} {node}"
        self.transport: str | None = None
        self.failed = False
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> TransferDisplay:
        if self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TimeElapsedColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(f"{self.label}: connecting", total=None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def _say(self, text: str) -> None:
        self.console.print(text, soft_wrap=True, highlight=False, markup=False)

    def _describe(self, text: str, **fields: int | None) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=text, **fields)  # type: ignore[arg-type]

    def on_event(self, event: Event) -> None:
        if event.type is EventType.ATTEMPT_STARTED and event.transport:
            then = " instead" if self.failed else ""
            self.transport = event.transport
            self._describe(f"{self.label} via {event.transport}{then}", completed=0, total=None)
        elif event.type is EventType.ATTEMPT_FAILED:
            self.failed = True
            seconds = (event.duration_ms or 0.0) / 1000
            self._say(
                f"{self.label}: {event.transport} failed after {seconds:.1f} s "
                f"({event.error_kind}): {event.error}"
            )
        elif event.type is EventType.ATTEMPT_SUCCEEDED and self._bar is None:
            seconds = (event.duration_ms or 0.0) / 1000
            self._say(f"{self.label}: {event.transport} ok, {event.bytes} bytes in {seconds:.1f} s")

    def progress(self, done: int, total: int | None) -> None:
        if total is not None and done >= total:
            self._describe(f"{self.label} via {self.transport}: verifying sha256")
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=total)
