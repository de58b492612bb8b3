"""Run one SSH session's command under a pseudo-terminal: the forced TTY of a field incident.

``python pty_session.py COMMAND`` (run by an OpenSSH node's session wrapper while its
``binary_mangling`` fault is on; standalone, it imports nothing from netfault). The command
runs in ``$SHELL -c`` on the slave side of a new pty in its default (cooked) mode, so its bytes
meet the real line discipline: input is echoed and line-edited, ^C/^Z/^\\ raise signals, ^D
ends input, CR becomes LF; output LF becomes CR LF. Binary data is corrupted or kills the
command; base64 text gets through.

The channel's EOF becomes ^D at the start of a line (as ``script(1)`` does), so a command
reading stdin to its end finishes. ``script`` itself is not used: fed from a pipe it dropped
the tail of its input here. The exit status is the command's (128 + N for signal N).
"""

from __future__ import annotations

import os
import pty
import select
import sys

CHUNK = 65536
EOF_CHAR = b"\x04"


def main(argv: list[str]) -> int:
    shell = os.environ.get("SHELL") or "/bin/sh"
    command = argv[1] if len(argv) > 1 else ""
    pid, master = pty.fork()
    if pid == 0:  # the child: its stdin/stdout/stderr are the pty's slave side
        args = [shell, "-c", command] if command else [shell, "-l"]
        os.execv(shell, args)
    os.set_blocking(master, False)
    relay(master)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def relay(master: int) -> None:
    """Copy stdin to the pty and the pty to stdout until the slave side is closed."""
    stdin_open, pending, last = True, b"", b"\n"
    while True:
        readers = [master] + ([0] if stdin_open and not pending else [])
        writers = [master] if pending else []
        ready_r, ready_w, _ = select.select(readers, writers, [])
        if master in ready_r:
            try:
                data: bytes | None = os.read(master, CHUNK)
            except BlockingIOError:
                data = None  # spurious wake-up: nothing to copy yet
            except OSError:  # EIO: every slave descriptor is closed
                return
            if data == b"":
                return
            if data:
                _write_all(1, data)
        if 0 in ready_r:
            data = os.read(0, CHUNK)
            if data:
                pending, last = data, data[-1:]
            else:  # ^D ends a line's input; a second one at a line start is EOF
                stdin_open = False
                pending = EOF_CHAR if last in (b"\n", b"\r") else EOF_CHAR * 2
        if master in ready_w and pending:
            try:
                pending = pending[os.write(master, pending) :]
            except BlockingIOError:
                pass


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
