"""The one exception map (``transports.failures``): what each library, OS, exit-status and
HTTP-status failure becomes, and whether that kind fails over and counts."""

from __future__ import annotations

import binascii
import errno

import aiohttp
import asyncssh
import pytest

from netfault.engine.config import NodeConfig
from netfault.engine.errors import ERROR_KINDS, REQUEST_KINDS, AttemptError
from netfault.engine.transports.failures import (
    Tracker,
    classify,
    classify_stderr,
    exit_error,
    http_status_error,
    rsync_error,
    scp_error,
    ssh_client_error,
    timed_out,
)

NODE = NodeConfig(hostname="n1")


def tracker() -> Tracker:
    return Tracker(NODE, "ssh")


def _bad_utf8() -> UnicodeDecodeError:
    try:
        b"\xff\xfe".decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("exc", "connecting", "kind"),
    [
        pytest.param(_bad_utf8(), False, "integrity", id="garbled-control-line"),
        pytest.param(binascii.Error("Incorrect padding"), False, "integrity", id="base64-decode"),
        pytest.param(asyncssh.MACError(5, "MAC verification failed"), False, "integrity", id="mac"),
        pytest.param(
            asyncssh.ProtocolError("Packet decode error"), False, "integrity", id="packet"
        ),
        pytest.param(asyncssh.ConnectionLost("gone"), False, "reset", id="ssh-lost"),
        pytest.param(asyncssh.PermissionDenied("no"), False, "auth", id="ssh-key-refused"),
        pytest.param(asyncssh.HostKeyNotVerifiable("x"), True, "auth", id="host-key"),
        pytest.param(
            ConnectionRefusedError(errno.ECONNREFUSED, "refused"), True, "connect", id="refused"
        ),
        pytest.param(OSError(errno.EHOSTUNREACH, "no route"), True, "connect", id="unreachable"),
        pytest.param(
            ConnectionResetError(errno.ECONNRESET, "reset"), False, "reset", id="tcp-reset"
        ),
        pytest.param(aiohttp.ServerDisconnectedError(), False, "reset", id="http-disconnected"),
        pytest.param(TimeoutError(), False, "timeout", id="timeout"),
        pytest.param(OSError(errno.ENOSPC, "No space left"), False, "storage", id="enospc"),
        pytest.param(FileNotFoundError(2, "No such file"), False, "not_found", id="local-missing"),
        pytest.param(
            IsADirectoryError(21, "Is a directory"), False, "is_directory", id="local-dir"
        ),
        pytest.param(PermissionError(13, "denied"), False, "local_permission", id="local-perm"),
        pytest.param(FileNotFoundError(2, "id_ed25519"), True, "missing_key", id="key-file"),
        pytest.param(RuntimeError("odd"), False, "transport", id="anything-else"),
    ],
)
def test_library_and_os_errors_map_to_one_kind(
    exc: BaseException, connecting: bool, kind: str
) -> None:
    error = classify(exc, tracker(), connecting=connecting)
    assert error.kind == kind
    assert error.fails_over is (kind not in REQUEST_KINDS)
    assert error.message.startswith("ssh@n1: ")


def test_a_garbled_http_status_line_is_integrity() -> None:
    exc = aiohttp.ClientResponseError(None, (), status=400, message="Expected HTTP/")  # type: ignore[arg-type]
    assert classify(exc, tracker()).kind == "integrity"


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        pytest.param("Corrupted MAC on input.", "integrity", id="openssh-mac"),
        pytest.param(
            "ssh_dispatch_run_fatal: message authentication code incorrect",
            "integrity",
            id="mac-fatal",
        ),
        pytest.param("Bad packet length 2857218.", "integrity", id="packet-length"),
        pytest.param(
            "Received disconnect from x: 2: Packet corrupt", "integrity", id="peer-saw-corruption"
        ),
        pytest.param("Permission denied (publickey).", "auth", id="auth"),
        pytest.param("Host key verification failed.", "auth", id="host-key"),
        pytest.param("ssh: connect to host x port 22: Connection refused", "connect", id="refused"),
        pytest.param("Connection timed out during banner exchange", "timeout", id="timeout"),
        pytest.param("netfault: no such file: ./data/x", "not_found", id="stat-missing"),
        pytest.param("netfault: is a directory: ./data/x", "is_directory", id="remote-dir"),
        pytest.param(
            "mv: cannot overwrite directory './x' with non-directory", "is_directory", id="mv"
        ),
        pytest.param("cat: write error: No space left on device", "storage", id="disk-full"),
        pytest.param("exit status 153", "storage", id="sigxfsz"),
        pytest.param("client_loop: send disconnect: Broken pipe", "reset", id="broken-pipe"),
        pytest.param("Connection reset by peer", "reset", id="reset"),
        pytest.param("something unheard of", "transport", id="unknown"),
    ],
)
def test_stderr_maps_to_one_kind(stderr: str, kind: str) -> None:
    assert classify_stderr(stderr, tracker(), "upload").kind == kind


@pytest.mark.parametrize(
    ("stderr", "connecting", "kind"),
    [
        pytest.param(
            "kex_exchange_identification: read: Connection reset by peer",
            True,
            "connect",
            id="reset-in-handshake-is-connect",
        ),
        pytest.param("", True, "connect", id="silent-exit-in-handshake-is-connect"),
        pytest.param("Connection reset by peer", False, "reset", id="reset-in-session"),
        pytest.param("", False, "reset", id="silent-exit-in-session-is-reset"),
        pytest.param("Corrupted MAC on input.", False, "integrity", id="mac"),
        pytest.param("Permission denied (publickey).", True, "auth", id="key-refused"),
    ],
)
def test_ssh_client_failure_maps_to_one_kind(stderr: str, connecting: bool, kind: str) -> None:
    error = ssh_client_error(stderr, tracker(), "connect", connecting=connecting)
    assert error.kind == kind
    assert error.connecting is connecting


def test_a_channel_closed_without_status_is_a_reset() -> None:
    assert exit_error("", None, tracker(), "upload").kind == "reset"


@pytest.mark.parametrize(
    ("code", "stderr", "kind"),
    [
        pytest.param(1, "rsync error: syntax or usage error (code 1)", "integrity", id="1-damaged"),
        pytest.param(2, "rsync error: protocol incompatibility (code 2)", "integrity", id="2"),
        pytest.param(11, "rsync error: error in file IO (code 11)", "storage", id="11-disk-full"),
        pytest.param(12, "rsync: connection unexpectedly closed", "reset", id="12"),
        pytest.param(
            12,
            "unexpected tag 57 [Receiver]\nrsync error: error in rsync protocol data stream "
            "(code 12) at io.c(1896) [Receiver=3.5.0]",
            "integrity",
            id="12-garbled-stream",
        ),
        pytest.param(30, "rsync error: timeout in data send/receive (code 30)", "timeout", id="30"),
        pytest.param(
            23,
            'rsync: link_stat "x" failed: No such file or directory (2)',
            "not_found",
            id="23-missing",
        ),
        pytest.param(11, "write failed: No space left on device (28)", "storage", id="11-enospc"),
    ],
)
def test_rsync_exit_codes_map_to_what_happened_on_the_path(
    code: int, stderr: str, kind: str
) -> None:
    assert rsync_error(code, stderr, tracker()).kind == kind


@pytest.mark.parametrize(
    ("code", "stderr", "kind"),
    [
        pytest.param(1, "lost connection\n", "reset", id="lost-master-silent"),
        pytest.param(
            1,
            "lost connection\nConnection reset by 127.0.0.45 port 22\r\n",
            "reset",
            id="lost-master-reset",
        ),
        pytest.param(
            1,
            "lost connection\nCorrupted MAC on input.\r\nssh_dispatch_run_fatal: message "
            "authentication code incorrect\r\n",
            "integrity",
            id="lost-master-corrupted",
        ),
        pytest.param(
            255,
            "netfault: the connection to the node is closed\nscp: Connection closed\r\n",
            "reset",
            id="255-master-gone",
        ),
        pytest.param(1, "", "reset", id="no-words"),
        pytest.param(1, "scp: data/x: No such file or directory\r\n", "not_found", id="missing"),
        pytest.param(1, 'scp: dest open "x": Permission denied\r\n', "storage", id="denied"),
    ],
)
def test_scp_failures_map_to_what_happened_on_the_path(code: int, stderr: str, kind: str) -> None:
    """scp exits 1 for nearly everything: its words (and its master's, once it lost the
    connection) decide."""
    assert scp_error(code, stderr, tracker()).kind == kind


@pytest.mark.parametrize(
    ("status", "kind", "fails_over", "counts"),
    [
        pytest.param(400, "integrity", True, True, id="400-damaged-request"),
        pytest.param(401, "auth", True, True, id="401"),
        pytest.param(404, "not_found", False, False, id="404"),
        pytest.param(409, "is_directory", False, False, id="409"),
        pytest.param(422, "integrity", True, True, id="422-hash-mismatch"),
        pytest.param(500, "http_5xx", True, True, id="500"),
        pytest.param(503, "http_5xx", True, True, id="503-not-connect"),
        pytest.param(507, "storage", True, True, id="507"),
    ],
)
def test_http_statuses_map_to_one_kind(
    status: int, kind: str, fails_over: bool, counts: bool
) -> None:
    error: AttemptError = http_status_error(status, tracker(), "PUT /files/x")
    assert (error.kind, error.fails_over, error.counts) == (kind, fails_over, counts)
    assert f"HTTP {status}" in error.message


def test_the_kind_vocabulary_holds_every_request_and_path_kind() -> None:
    path_kinds = {"connect", "timeout", "reset", "integrity", "auth", "storage", "http_5xx"}
    assert REQUEST_KINDS == {
        "not_found",
        "is_directory",
        "local_permission",
        "missing_key",
        "bad_remote_path",
    }
    assert REQUEST_KINDS | path_kinds | {"breaker_open", "node_disabled"} <= ERROR_KINDS


def test_a_timeout_with_nothing_moved_points_at_a_silent_node_before_a_longer_timeout() -> None:
    error = classify(TimeoutError(), tracker())
    assert error.kind == "timeout"
    assert error.message == (
        "ssh@n1: timed out with no answer: the node may be down or its route dropping packets "
        "(netfault probe n1 shows which routes answer); a longer timeout helps only if the "
        "node is merely slow"
    )


def test_a_timeout_after_some_bytes_says_a_rerun_resumes() -> None:
    attempt = tracker()
    attempt.advance(4_194_304)
    error = timed_out(attempt, 30.0)
    assert error.kind == "timeout" and error.bytes_done == 4_194_304
    assert error.message == (
        "ssh@n1: timed out after 30 s, 4,194,304 bytes in: the connection stopped carrying "
        "data; run again to resume, or use a longer timeout if the link is only slow"
    )
