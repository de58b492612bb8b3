"""Run one SSH session's command under a pseudo-terminal and/or the disk quota's file-size
limit: the forced TTY and the full disk of a field incident, as an OpenSSH node plays them.

``python pty_session.py MODE FSIZE COMMAND`` (run by an OpenSSH node's session wrapper while its
``binary_mangling`` (MODE ``pty``) or ``disk_quota`` (FSIZE bytes, ``-`` for none) fault is
on; standalone, it imports nothing from netfault). The command runs in ``$SHELL -c`` with
RLIMIT_FSIZE at FSIZE and the default SIGPIPE and SIGXFSZ (as sshd starts it; Python ignores
both). Under ``pty`` it runs on the slave side of a new pty in its default (cooked) mode, so
its bytes meet the real line discipline: input is echoed and line-edited, ^C/^Z/^\\ raise
signals, ^D ends input, CR becomes LF; output LF becomes CR LF. Binary data is corrupted or
kills the command; base64 text gets through. Under ``plain`` its stdin and stdout are the
session's own and its stderr passes through this process.

The channel's EOF becomes ^D at the start of a line (as ``script(1)`` does), so a command
reading stdin to its end finishes. ``script`` itself is not used: fed from a pipe it dropped
the tail of its input here. The exit status is the command's (128 + N for signal N).

At the end of the session one JSON line goes to the FIFO named by ``$NETFAULT_SESSION_EVENTS``
(the node reads it as its fault report): the command, its exit status, whether a write hit
the file-size limit (``file_too_large``: exit 153 from SIGXFSZ, or EFBIG's message from a
writer that ignores SIGXFSZ, as the engine's commands do), and under ``pty`` per direction
the bytes relayed, how many of them the terminal changed and the offset of the first.
Inbound, those are the bytes the line discipline acts on instead of passing (its control
characters and, under ICRNL, CR), read from the terminal's own settings; outbound, the CRs
that ONLCR put before each LF. Both are fixed by the data; the echo of input is not counted.
"""

from __future__ import annotations

import errno
import json
import os
import pty
import re
import resource
import select
import signal
import subprocess
import sys
import termios

CHUNK = 65536
EOF_CHAR = b"\x04"
EVENTS = "NETFAULT_SESSION_EVENTS"
_CRLF = re.compile(b"\r\n")
# A report is one write to the FIFO, atomic up to PIPE_BUF bytes, so lines never interleave.
ATOMIC_LINE = select.PIPE_BUF
SIGXFSZ_EXIT = 128 + signal.SIGXFSZ
TOO_LARGE = os.strerror(errno.EFBIG).encode()  # "File too large"
# the characters a line discipline acts on, each while its mode flag is on
_SPECIALS = (
    ("lflag", termios.ISIG, (termios.VINTR, termios.VQUIT, termios.VSUSP)),
    ("lflag", termios.ICANON, (termios.VEOF, termios.VERASE, termios.VKILL)),
    ("lflag", termios.IEXTEN, (termios.VLNEXT, termios.VWERASE, termios.VREPRINT)),
    ("lflag", termios.IEXTEN, (termios.VDISCARD,)),
    ("iflag", termios.IXON, (termios.VSTART, termios.VSTOP)),
)


class Damage:
    """What the terminal did to one direction of the session: bytes relayed, bytes changed
    (acted on, or inserted), the offset of the first change."""

    def __init__(self) -> None:
        self.bytes = 0
        self.changed = 0
        self.first: int | None = None

    def add(self, offsets: list[int], size: int) -> None:
        if offsets and self.first is None:
            self.first = self.bytes + offsets[0]
        self.changed += len(offsets)
        self.bytes += size

    def record(self) -> dict[str, int | None]:
        return {"bytes": self.bytes, "changed": self.changed, "first": self.first}


def acted_on(master: int) -> re.Pattern[bytes]:
    """The input bytes the pty's line discipline acts on instead of passing them through."""
    iflag, _, _, lflag, _, _, cc = termios.tcgetattr(master)
    flags = {"iflag": iflag, "lflag": lflag}
    special = {
        cc[i][0] if isinstance(cc[i], bytes) else cc[i]
        for flag, bit, slots in _SPECIALS
        if flags[flag] & bit
        for i in slots
    }
    if iflag & termios.ICRNL:
        special.add(0x0D)
    special.discard(0)  # 0: the slot is disabled
    escaped = b"".join(re.escape(bytes([b])) for b in sorted(special))
    return re.compile(b"[" + escaped + b"]" if escaped else b"(?!)")


class TooLarge:
    """Watches a stream for EFBIG's message, also when a chunk boundary splits it."""

    def __init__(self) -> None:
        self.seen = False
        self._tail = b""

    def feed(self, data: bytes) -> None:
        if not self.seen:
            joined = self._tail + data
            self.seen = TOO_LARGE in joined
            self._tail = joined[-len(TOO_LARGE) :]


def encoded(line: dict[str, object]) -> bytes:
    """``line`` as one JSON line of at most ``ATOMIC_LINE`` bytes: a command too long for
    that keeps its start and its end (where the transport's writer usually is), shortened
    until the line fits."""
    command = str(line.get("command") or "")
    keep = len(command)
    while True:
        head, tail = keep // 3, keep - keep // 3
        cut = (
            command
            if keep == len(command)
            else f"{command[:head]} ... {command[len(command) - tail :]}"
        )
        data = json.dumps(line | {"command": cut}).encode() + b"\n"
        if len(data) <= ATOMIC_LINE or keep == 0:
            return data
        keep //= 2


def report(line: dict[str, object]) -> None:
    """One JSON line to the node's events FIFO, if it has one and is reading it."""
    path = os.environ.get(EVENTS)
    if not path:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # no reader: the node is gone
        return
    try:
        os.write(fd, encoded(line))
    except OSError:
        pass
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    mode, fsize = argv[1], argv[2]
    command = argv[3] if len(argv) > 3 else ""
    shell = os.environ.get("SHELL") or "/bin/sh"
    args = [shell, "-c", command] if command else [shell, "-l"]
    limit = None if fsize == "-" else int(fsize)
    too_large = TooLarge()
    line: dict[str, object] = {"session": mode, "command": command}
    if mode == "pty":
        inbound, outbound = Damage(), Damage()
        code = _under_pty(args, limit, inbound, outbound, too_large)
        line |= {"inbound": inbound.record(), "outbound": outbound.record()}
    else:
        code = _plain(args, limit, too_large)
    too_large.seen = too_large.seen or (limit is not None and code == SIGXFSZ_EXIT)
    report(line | {"exit": code, "file_too_large": too_large.seen})
    return code


def _limit(limit: int | None) -> None:
    """In the command's process: the file-size limit (what ``prlimit --fsize`` sets)."""
    if limit is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _under_pty(
    args: list[str], limit: int | None, inbound: Damage, outbound: Damage, too_large: TooLarge
) -> int:
    pid, master = pty.fork()
    if pid == 0:  # the child: its stdin/stdout/stderr are the pty's slave side
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)
        _limit(limit)
        os.execv(args[0], args)
    os.set_blocking(master, False)
    relay(master, inbound, outbound, too_large)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _plain(args: list[str], limit: int | None, too_large: TooLarge) -> int:
    """The command on the session's stdin and stdout; its stderr copied through, watched."""
    # restore_signals (the default) gives the command the default SIGPIPE and SIGXFSZ
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, preexec_fn=lambda: _limit(limit))
    assert proc.stderr is not None
    forwarding = True
    while data := os.read(proc.stderr.fileno(), CHUNK):
        too_large.feed(data)
        if forwarding:
            try:
                _write_all(2, data)
            except OSError:  # the client went away: keep draining, stop copying
                forwarding = False
    code = proc.wait()
    return 128 - code if code < 0 else code


def relay(master: int, inbound: Damage, outbound: Damage, too_large: TooLarge) -> None:
    """Copy stdin to the pty and the pty to stdout until the slave side is closed,
    counting what the terminal changes in each direction."""
    special = acted_on(master)
    stdin_open, pending, last, last_out = True, b"", b"\n", 0
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
                # ONLCR put a CR before each LF: that CR is the change (offset of the CR)
                crs = [m.start() for m in _CRLF.finditer(data)]
                if data[0] == 0x0A and last_out == 0x0D:
                    crs.insert(0, -1)  # the last byte of the chunk before
                outbound.add(crs, len(data))
                too_large.feed(data)
                last_out = data[-1]
                _write_all(1, data)
        if 0 in ready_r:
            data = os.read(0, CHUNK)
            if data:
                inbound.add([m.start() for m in special.finditer(data)], len(data))
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
