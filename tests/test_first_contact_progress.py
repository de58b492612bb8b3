"""What a transfer shows while it runs: transport in use, verifying, failover as it happens."""

from __future__ import annotations

import io

from rich.console import Console

from netfault.engine.cli_progress import TransferDisplay
from netfault.engine.events import Event, EventType


def started(transport: str) -> Event:
    return Event(EventType.ATTEMPT_STARTED, node="n1", transport=transport, operation="push")


def failed(transport: str, kind: str, error: str, ms: float) -> Event:
    return Event(
        EventType.ATTEMPT_FAILED,
        node="n1",
        transport=transport,
        error_kind=kind,
        error=error,
        duration_ms=ms,
    )


def succeeded(transport: str, size: int, ms: float) -> Event:
    return Event(
        EventType.ATTEMPT_SUCCEEDED, node="n1", transport=transport, bytes=size, duration_ms=ms
    )


def description(display: TransferDisplay) -> str:
    assert display._bar is not None
    return str(display._bar.tasks[0].description)


def test_terminal_bar_names_the_transport_fails_over_and_shows_verifying() -> None:
    sink = io.StringIO()
    console = Console(file=sink, force_terminal=True, width=120)

    with TransferDisplay(console, "push", "n1") as display:
        assert description(display) == "push n1: connecting"
        display.on_event(started("tailscale"))
        assert description(display) == "push n1 via tailscale"
        display.on_event(failed("tailscale", "timeout", "tailscale@n1: timed out", 30_000))
        display.on_event(started("ssh"))
        assert description(display) == "push n1 via ssh instead"
        display.progress(512, 1024)
        assert description(display) == "push n1 via ssh instead"
        display.progress(1024, 1024)
        assert description(display) == "push n1 via ssh: verifying sha256"
        display.on_event(succeeded("ssh", 1024, 120))

    text = sink.getvalue()
    failure = "push n1: tailscale failed after 30.0 s (timeout): tailscale@n1: timed out"
    assert text.count(failure) == 1
    assert "ssh ok" not in text  # the bar shows it; the summary line follows


def test_without_a_terminal_each_attempt_is_one_line() -> None:
    sink = io.StringIO()
    console = Console(file=sink, force_terminal=False, width=80)

    with TransferDisplay(console, "pull", "n1") as display:
        display.on_event(started("ssh"))
        display.progress(100, 1000)
        display.on_event(failed("ssh", "reset", "ssh@n1: connection lost after 100 bytes " * 3, 2))
        display.on_event(started("http"))
        display.progress(1000, 1000)
        display.on_event(succeeded("http", 1000, 1500))

    lines = sink.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("pull n1: ssh failed after 0.0 s (reset): ssh@n1: connection lost")
    assert len(lines[0]) > 80  # one line, never hard-wrapped at the console width
    assert lines[1] == "pull n1: http ok, 1000 bytes in 1.5 s"
