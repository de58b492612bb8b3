"""The fenced writers' outcomes are classified once, in ``failures``: what kind each is and
whether the operation fails over."""

from __future__ import annotations

import pytest

from netfault.engine.config import NodeConfig
from netfault.engine.errors import IntegrityError, IsDirectoryError, TransportError
from netfault.engine.transports import remote as rc
from netfault.engine.transports.failures import Tracker, classify, http_status_error
from netfault.engine.transports.fenced import is_ready, written_error


def tracker() -> Tracker:
    return Tracker(NodeConfig(hostname="127.0.0.1", name="n"), "ssh")


def test_a_file_that_arrived_short_is_an_integrity_error_that_fails_over() -> None:
    stderr = "netfault: the node received 1000 of 4096 bytes\n"
    error = written_error(rc.SHORT_EXIT, stderr, tracker(), "upload")
    assert type(error) is IntegrityError and error.fails_over
    assert "received 1000 of 4096 bytes" in str(error)


@pytest.mark.parametrize(
    ("status", "words"),
    [
        pytest.param(130, "killed by SIGINT", id="130-ctrl-c"),
        pytest.param(131, "killed by SIGQUIT", id="131-ctrl-backslash"),
        pytest.param(rc.SHORT_EXIT, "fewer bytes than were sent", id="short"),
    ],
)
def test_a_writer_status_without_its_words_still_says_the_stream_was_damaged(
    status: int, words: str
) -> None:
    """Under a forced terminal the writer's stderr is merged into the stdout nobody reads;
    the status alone says a byte of the stream became a signal or an end of input."""
    error = written_error(status, "", tracker(), "upload")
    assert type(error) is IntegrityError and error.fails_over
    assert words in str(error) and f"exit status {status}" in str(error)


def test_an_unknown_writer_status_stays_a_plain_path_error() -> None:
    error = written_error(137, "", tracker(), "upload")
    assert type(error) is TransportError and error.fails_over


def test_a_copy_taken_over_by_another_push_is_a_path_error() -> None:
    error = written_error(rc.TAKEN_EXIT, rc.TAKEN_MARK, tracker(), "verify and rename")
    assert type(error) is TransportError and error.kind == "transport" and error.fails_over
    assert "send it again" in str(error)


def test_a_rename_onto_a_directory_is_the_is_directory_request_error() -> None:
    stderr = "mv: cannot overwrite directory 'data/adir' with non-directory\n"
    error = written_error(1, stderr, tracker(), "verify and rename")
    assert isinstance(error, IsDirectoryError) and error.kind == "is_directory"
    assert not error.fails_over


@pytest.mark.parametrize("code", rc.FENCE_EXITS)
def test_a_refusing_fence_is_not_an_error_of_the_attempt(code: int) -> None:
    mark = rc.FENCE_MARKS[code]
    with pytest.raises(rc.FenceRefused) as refused:
        written_error(code, mark, tracker(), "upload")
    assert refused.value.code == code
    again = classify(refused.value, tracker())  # refused once more: the attempt's error
    assert type(again) is TransportError and again.fails_over and "another push" in str(again)


def test_the_agents_busy_partial_fails_over_and_its_409_still_means_a_directory() -> None:
    busy = http_status_error(423, tracker(), "PUT /files/f.bin", "still being written")
    assert type(busy) is TransportError and busy.fails_over
    assert http_status_error(409, tracker(), "PUT /files/adir").kind == "is_directory"


def test_the_go_ahead_is_recognised_with_the_cr_a_forced_terminal_adds() -> None:
    mark = rc.READY_MARK.encode()
    assert is_ready(mark + b"\n") and is_ready(mark + b"\r\n")
    assert not is_ready(b"") and not is_ready(rc.BUSY_MARK.encode() + b"\n")
